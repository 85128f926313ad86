//! The registry's protocol core: cluster-wide unique names, as one node's replica.
//!
//! # Driving it
//!
//! One [`Replica`] per node and registry. The shell (an actor) turns each message into one call
//! and carries out the returned [`RegEffect`]s in order, before the next call:
//!
//! * local requests: [`Replica::register`], [`Replica::unregister`], [`Replica::update_meta`];
//! * a message from another node's replica: [`Replica::on_peer`] (messages of one sender must
//!   arrive in the order it sent them, as over one TCP connection);
//! * membership: [`Replica::on_member_up`], [`Replica::on_member_down`] (down or left), and
//!   [`Replica::on_peer_joined`] when another node's replica becomes reachable (its endpoint
//!   appeared);
//! * anti-entropy: [`Replica::summary`] goes out on the membership probes, and a peer's
//!   summary comes in through [`Replica::on_summary`].
//!
//! Every call that stamps takes the wall clock in nanoseconds since the Unix epoch (`wall_ns`,
//! or [`Now::wall_ns`]); the replica keeps a hybrid logical clock over it. Deltas, digests,
//! pulls and full states are the replication skeleton's ([`crate::replication`]): [`Names`] is
//! the service it keeps in step.
//!
//! # Effects
//!
//! * [`RegEffect::Broadcast`]: send to every other node's replica that is reachable now;
//!   [`RegEffect::Send`]: to one node's replica. Lost messages are repaired by digests.
//! * [`RegEffect::Publish`]: the winners of these names changed: update the local view that
//!   lookups read, and tell subscribers.
//! * [`RegEffect::StopLost`]: a local registration lost a conflict and is already unregistered:
//!   stop its actor with the reason [`NAME_CONFLICT`].

pub mod state;

use std::collections::BTreeSet;
use std::time::Duration;

use actor_core_base::hlc::{Hlc, Stamp};

use self::state::{Change, Gap, Holder, Op, Owner, Registration, RegistryCore};
use crate::replication::{Merged, MsgOf, Replicated, Replicator, SyncMsg, SyncOut, Verdict};
use crate::Now;

/// The exit reason given to a registered actor that lost a name conflict.
pub const NAME_CONFLICT: &str = "NameConflict";

/// The least time between two digests (or two repairs) a replica sends one peer.
pub const DIGEST_INTERVAL: Duration = Duration::from_millis(500);

/// One owner's change, with the owner's version after it.
pub type RegDelta = (Owner, u64, Op);

/// An owner's current version.
pub type RegDigest = (Owner, u64);

/// An owner's full state at a version.
pub type RegPart = (Owner, u64, Vec<Registration>);

/// Messages between replicas of one registry (the replication skeleton's, see
/// [`crate::replication`]).
pub type RegPeerMsg = MsgOf<Names>;

/// What the shell must do after a call (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegEffect {
    /// Send to every reachable replica.
    Broadcast(RegPeerMsg),
    /// Send to the replica on this node.
    Send(String, RegPeerMsg),
    /// Update the lookup view and tell subscribers.
    Publish(Vec<Change>),
    /// Stop the local actor of this name (it lost a conflict to `winner`).
    StopLost {
        /// The name.
        name: String,
        /// Who holds it now.
        winner: Owner,
    },
}

/// The registry's replicated data and the clock that stamps it: the service the replication
/// skeleton keeps in step. Each node owns its own registrations (versioned per owner): a delta
/// out of sequence is a gap, a digest is an owner's version, and a node that is behind on an
/// owner pulls that owner's full state.
#[derive(Debug, Clone)]
pub struct Names {
    core: RegistryCore,
    clock: Hlc,
}

impl Replicated for Names {
    type Delta = RegDelta;
    type Digest = RegDigest;
    type Part = RegPart;
    type Change = Change;

    fn apply_delta(
        &mut self,
        _: &str,
        (owner, version, op): RegDelta,
        wall_ns: u64,
    ) -> Merged<Change> {
        if let Op::Put(r) = &op {
            self.clock.observe(&r.stamp, wall_ns);
        }
        match self.core.apply_delta(&owner, version, op) {
            Ok(changes) => Merged::Applied(changes),
            Err(Gap) => Merged::Gap,
        }
    }

    fn digest(&self) -> RegDigest {
        (self.core.me().clone(), self.core.own().0)
    }

    fn compare(&self, _: &str, (owner, version): &RegDigest) -> Verdict {
        if self.core.is_behind(owner, *version) {
            Verdict::PullTheirs
        } else {
            // Everything the owner has, this replica has (its full state may have been lost on
            // the way, and an owner with nothing registered sends no delta).
            Verdict::InSync
        }
    }

    fn summary(&self) -> u64 {
        // Every replica that has every owner's latest version agrees on this.
        let mut h = crate::hash::StableHash::default();
        for (owner, version) in self.core.versions_iter() {
            if version > 0 {
                h.str(&owner.node).u64(owner.incarnation).u64(version);
            }
        }
        h.finish()
    }

    fn parts(&self) -> Vec<RegPart> {
        let (version, regs) = self.core.own();
        vec![(self.core.me().clone(), version, regs)]
    }

    fn apply_part(
        &mut self,
        _: &str,
        (owner, version, regs): RegPart,
        wall_ns: u64,
    ) -> Vec<Change> {
        for r in &regs {
            self.clock.observe(&r.stamp, wall_ns);
        }
        self.core.apply_full(&owner, version, regs)
    }
}

/// One node's replica of a registry, with its whole policy.
#[derive(Debug, Clone)]
pub struct Replica {
    names: Names,
    sync: Replicator,
}

impl Replica {
    /// An empty replica for the node incarnation `me`.
    pub fn new(me: Owner) -> Self {
        Self {
            sync: Replicator::new(me.node.clone(), DIGEST_INTERVAL),
            names: Names {
                clock: Hlc::new(me.node.clone()),
                core: RegistryCore::new(me),
            },
        }
    }

    /// The replicated data (winners, versions).
    pub fn state(&self) -> &RegistryCore {
        &self.names.core
    }

    /// This node.
    pub fn me(&self) -> &Owner {
        self.names.core.me()
    }

    /// Whether this replica has received the state of node `node` since it came up.
    pub fn is_synced_with(&self, node: &str) -> bool {
        self.sync.is_synced_with(node)
    }

    /// The nodes whose state this replica has received since they came up.
    pub fn synced(&self) -> &BTreeSet<String> {
        self.sync.synced()
    }

    /// Registers `name` here. Fails with the current holder if the name is taken.
    pub fn register(
        &mut self,
        name: &str,
        meta: Vec<u8>,
        wall_ns: u64,
    ) -> Result<Vec<RegEffect>, Holder> {
        let stamp = self.names.clock.now(wall_ns);
        let (version, op, changes) = self.names.core.register_local(name, stamp, meta)?;
        Ok(self.local_change(version, op, changes))
    }

    /// Unregisters a name this node holds (`None`: it holds no such name).
    pub fn unregister(&mut self, name: &str) -> Option<Vec<RegEffect>> {
        let (version, op, changes) = self.names.core.unregister_local(name)?;
        Some(self.local_change(version, op, changes))
    }

    /// Replaces the metadata of a name this node holds (`None`: it holds no such name).
    pub fn update_meta(&mut self, name: &str, meta: Vec<u8>) -> Option<Vec<RegEffect>> {
        let (version, op, changes) = self.names.core.update_meta_local(name, meta)?;
        Some(self.local_change(version, op, changes))
    }

    fn local_change(&mut self, version: u64, op: Op, changes: Vec<Change>) -> Vec<RegEffect> {
        let me = self.me().clone();
        let mut out = Vec::new();
        Self::sync_effects(vec![self.sync.delta::<Names>((me, version, op))], &mut out);
        out.push(RegEffect::Publish(changes));
        out
    }

    fn sync_effects(sync: Vec<SyncOut<RegPeerMsg>>, out: &mut Vec<RegEffect>) {
        for o in sync {
            match o {
                SyncOut::Broadcast(m) => out.push(RegEffect::Broadcast(m)),
                SyncOut::Send(n, m) => out.push(RegEffect::Send(n, m)),
                // The registry's truth is its replicas: its digests never ask for a refresh.
                SyncOut::Refresh => {}
            }
        }
    }

    /// A message from another node's replica.
    pub fn on_peer(&mut self, now: Now, msg: RegPeerMsg) -> Vec<RegEffect> {
        let synced = self
            .sync
            .on_message(&mut self.names, now.mono, now.wall_ns, msg);
        let mut out = Vec::new();
        Self::sync_effects(synced.out, &mut out);
        self.changed(synced.changes, &mut out);
        out
    }

    /// Publishes changes, then unregisters the local names that lost a conflict in them.
    fn changed(&mut self, changes: Vec<Change>, out: &mut Vec<RegEffect>) {
        let names: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
        if !changes.is_empty() {
            out.push(RegEffect::Publish(changes));
        }
        for (name, winner) in self.names.core.lost_locally(&names) {
            out.push(RegEffect::StopLost {
                name: name.clone(),
                winner: winner.owner,
            });
            if let Some(effects) = self.unregister(&name) {
                out.extend(effects);
            }
        }
    }

    /// A member came up, or its replica became reachable: it gets this node's full state.
    pub fn on_member_up(&mut self, node: &str) -> Vec<RegEffect> {
        let mut out = Vec::new();
        Self::sync_effects(self.sync.on_peer_up(&self.names, node), &mut out);
        out
    }

    /// Another node's replica became reachable: it gets this node's full state.
    pub fn on_peer_joined(&mut self, node: &str) -> Vec<RegEffect> {
        let mut out = Vec::new();
        for part in self.names.parts() {
            out.push(RegEffect::Send(
                node.to_owned(),
                SyncMsg::Part {
                    from: self.me().node.clone(),
                    part,
                },
            ));
        }
        out
    }

    /// A member went down or left: its registrations go with it.
    pub fn on_member_down(&mut self, node: &str) -> Vec<RegEffect> {
        self.sync.on_peer_down(node);
        let changes = self.names.core.drop_node(node);
        if changes.is_empty() {
            Vec::new()
        } else {
            vec![RegEffect::Publish(changes)]
        }
    }

    /// The summary this node announces on its membership probes.
    pub fn summary(&self) -> u64 {
        self.names.summary()
    }

    /// Anti-entropy: `peer` announced its summary. A difference sends it this node's version
    /// (at most once per [`DIGEST_INTERVAL`]); the peer pulls what it lacks.
    pub fn on_summary(&mut self, now: Now, peer: &str, theirs: u64) -> Vec<RegEffect> {
        let mut out = Vec::new();
        Self::sync_effects(
            self.sync.on_summary(&self.names, peer, theirs, now.mono),
            &mut out,
        );
        out
    }

    /// The latest stamp of this replica's clock.
    pub fn clock(&self) -> Stamp {
        self.names.clock.current()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn owner(n: &str) -> Owner {
        Owner {
            node: n.into(),
            incarnation: 1,
        }
    }

    fn now() -> Now {
        Now {
            mono: std::time::Instant::now(),
            wall_ns: 0,
        }
    }

    /// Delivers every broadcast and send of `from`'s effects to `to`.
    fn deliver(effects: Vec<RegEffect>, to: &mut Replica) -> Vec<RegEffect> {
        let mut out = Vec::new();
        for e in effects {
            match e {
                RegEffect::Broadcast(m) => out.extend(to.on_peer(now(), m)),
                RegEffect::Send(n, m) if n == to.me().node => out.extend(to.on_peer(now(), m)),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn a_conflict_stops_the_younger_registration_even_with_a_slow_clock() {
        let mut a = Replica::new(owner("a"));
        let mut b = Replica::new(owner("b"));
        // a registers first, with a clock far ahead; b's wall clock is behind.
        let ea = a.register("x", vec![], 1_000_000).unwrap();
        let eb = b.register("x", vec![], 10).unwrap();
        let back_to_a = deliver(eb, &mut a);
        let from_b = deliver(ea, &mut b);
        // b's registration is older by its stamp: a loses and stops its actor.
        assert!(back_to_a
            .iter()
            .any(|e| matches!(e, RegEffect::StopLost { name, winner } if name == "x" && winner.node == "b")));
        assert!(!from_b
            .iter()
            .any(|e| matches!(e, RegEffect::StopLost { .. })));
        deliver(back_to_a, &mut b);
        assert_eq!(a.state().winner("x").map(|h| h.owner), Some(owner("b")));
        assert_eq!(b.state().winner("x").map(|h| h.owner), Some(owner("b")));
        // After seeing a's stamp, b's next registration is stamped after it.
        let later = b.register("y", vec![], 20).unwrap();
        let stamp = later.iter().find_map(|e| match e {
            RegEffect::Broadcast(SyncMsg::Delta {
                delta: (_, _, Op::Put(r)),
                ..
            }) => Some(r.stamp.clone()),
            _ => None,
        });
        assert!(stamp.is_some_and(|s| s.wall_ns >= 1_000_000));
    }

    #[test]
    fn a_gap_pulls_and_a_digest_repairs() {
        let mut a = Replica::new(owner("a"));
        let mut b = Replica::new(owner("b"));
        let _lost = a.register("x", vec![], 1).unwrap();
        let second = a.register("y", vec![], 2).unwrap();
        let pulls = deliver(second, &mut b);
        assert!(matches!(
            pulls.as_slice(),
            [RegEffect::Send(n, SyncMsg::Pull { from })] if n == "a" && from == "b"
        ));
        let full = deliver(pulls, &mut a);
        deliver(full, &mut b);
        assert!(b.is_synced_with("a"));
        assert_eq!(b.state().winners().len(), 2);
        // Summaries that differ: a sends its version, and b, behind on it, asks a.
        let _lost = a.register("z", vec![], 3).unwrap();
        assert_ne!(a.summary(), b.summary());
        let digest = a.on_summary(now(), "b", b.summary());
        let asks = deliver(digest, &mut b);
        assert!(matches!(asks.as_slice(), [RegEffect::Send(n, SyncMsg::Pull { .. })] if n == "a"));
    }
}
