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
//! * [`Replica::tick`] every [`DIGEST_INTERVAL`] (anti-entropy).
//!
//! Every call that stamps takes `wall_ns`, the wall clock in nanoseconds since the Unix epoch;
//! the replica keeps a hybrid logical clock over it.
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
use serde::{Deserialize, Serialize};

use self::state::{Change, Gap, Holder, Op, Owner, Registration, RegistryCore};

/// The exit reason given to a registered actor that lost a name conflict.
pub const NAME_CONFLICT: &str = "NameConflict";

/// How often a replica announces its own version (anti-entropy).
pub const DIGEST_INTERVAL: Duration = Duration::from_millis(500);

/// Messages between replicas of one registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegPeerMsg {
    /// One change of an owner, with the owner's version after it.
    Delta(Owner, u64, Op),
    /// An owner's current version.
    Digest(Owner, u64),
    /// "Owner, send your full state."
    Pull(Owner),
    /// An owner's full state at a version.
    Full(Owner, u64, Vec<Registration>),
}

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

/// One node's replica of a registry, with its whole policy.
#[derive(Debug, Clone)]
pub struct Replica {
    core: RegistryCore,
    clock: Hlc,
    /// Nodes whose state this replica has received (a full state, or a delta in sequence)
    /// since they came up.
    synced: BTreeSet<String>,
}

impl Replica {
    /// An empty replica for the node incarnation `me`.
    pub fn new(me: Owner) -> Self {
        Self {
            clock: Hlc::new(me.node.clone()),
            core: RegistryCore::new(me),
            synced: BTreeSet::new(),
        }
    }

    /// The replicated data (winners, versions).
    pub fn state(&self) -> &RegistryCore {
        &self.core
    }

    /// This node.
    pub fn me(&self) -> &Owner {
        self.core.me()
    }

    /// Whether this replica has received the state of node `node` since it came up.
    pub fn is_synced_with(&self, node: &str) -> bool {
        node == self.core.me().node || self.synced.contains(node)
    }

    /// The nodes whose state this replica has received since they came up.
    pub fn synced(&self) -> &BTreeSet<String> {
        &self.synced
    }

    /// Registers `name` here. Fails with the current holder if the name is taken.
    pub fn register(
        &mut self,
        name: &str,
        meta: Vec<u8>,
        wall_ns: u64,
    ) -> Result<Vec<RegEffect>, Holder> {
        let stamp = self.clock.now(wall_ns);
        let (version, op, changes) = self.core.register_local(name, stamp, meta)?;
        Ok(self.local_change(version, op, changes))
    }

    /// Unregisters a name this node holds (`None`: it holds no such name).
    pub fn unregister(&mut self, name: &str) -> Option<Vec<RegEffect>> {
        let (version, op, changes) = self.core.unregister_local(name)?;
        Some(self.local_change(version, op, changes))
    }

    /// Replaces the metadata of a name this node holds (`None`: it holds no such name).
    pub fn update_meta(&mut self, name: &str, meta: Vec<u8>) -> Option<Vec<RegEffect>> {
        let (version, op, changes) = self.core.update_meta_local(name, meta)?;
        Some(self.local_change(version, op, changes))
    }

    fn local_change(&mut self, version: u64, op: Op, changes: Vec<Change>) -> Vec<RegEffect> {
        let me = self.core.me().clone();
        vec![
            RegEffect::Broadcast(RegPeerMsg::Delta(me, version, op)),
            RegEffect::Publish(changes),
        ]
    }

    fn full(&self) -> RegPeerMsg {
        let (version, regs) = self.core.own();
        RegPeerMsg::Full(self.core.me().clone(), version, regs)
    }

    /// A message from another node's replica.
    pub fn on_peer(&mut self, msg: RegPeerMsg, wall_ns: u64) -> Vec<RegEffect> {
        let mut out = Vec::new();
        match msg {
            RegPeerMsg::Delta(owner, version, op) => {
                if let Op::Put(r) = &op {
                    self.clock.observe(&r.stamp, wall_ns);
                }
                match self.core.apply_delta(&owner, version, op) {
                    Ok(changes) => {
                        if owner != *self.core.me() {
                            self.synced.insert(owner.node.clone());
                        }
                        self.changed(changes, &mut out);
                    }
                    Err(Gap) => out.push(RegEffect::Broadcast(RegPeerMsg::Pull(owner))),
                }
            }
            RegPeerMsg::Digest(owner, version) => {
                if self.core.is_behind(&owner, version) {
                    out.push(RegEffect::Send(owner.node.clone(), RegPeerMsg::Pull(owner)));
                } else if owner.node != self.core.me().node {
                    // Everything the owner has, this replica has (its full state may have been
                    // lost on the way, and an owner with nothing registered sends no delta).
                    self.synced.insert(owner.node.clone());
                }
            }
            RegPeerMsg::Pull(owner) => {
                if owner == *self.core.me() {
                    out.push(RegEffect::Broadcast(self.full()));
                }
            }
            RegPeerMsg::Full(owner, version, regs) => {
                for r in &regs {
                    self.clock.observe(&r.stamp, wall_ns);
                }
                let changes = self.core.apply_full(&owner, version, regs);
                if owner.node != self.core.me().node {
                    self.synced.insert(owner.node.clone());
                }
                self.changed(changes, &mut out);
            }
        }
        out
    }

    /// Publishes changes, then unregisters the local names that lost a conflict in them.
    fn changed(&mut self, changes: Vec<Change>, out: &mut Vec<RegEffect>) {
        let names: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
        if !changes.is_empty() {
            out.push(RegEffect::Publish(changes));
        }
        for (name, winner) in self.core.lost_locally(&names) {
            out.push(RegEffect::StopLost {
                name: name.clone(),
                winner: winner.owner,
            });
            if let Some(effects) = self.unregister(&name) {
                out.extend(effects);
            }
        }
    }

    /// A member came up: it gets this node's full state.
    pub fn on_member_up(&mut self, _node: &str) -> Vec<RegEffect> {
        vec![RegEffect::Broadcast(self.full())]
    }

    /// Another node's replica became reachable: it gets this node's full state.
    pub fn on_peer_joined(&mut self, node: &str) -> Vec<RegEffect> {
        vec![RegEffect::Send(node.to_owned(), self.full())]
    }

    /// A member went down or left: its registrations go with it.
    pub fn on_member_down(&mut self, node: &str) -> Vec<RegEffect> {
        self.synced.remove(node);
        let changes = self.core.drop_node(node);
        if changes.is_empty() {
            Vec::new()
        } else {
            vec![RegEffect::Publish(changes)]
        }
    }

    /// Anti-entropy: announce this node's version (call every [`DIGEST_INTERVAL`]).
    pub fn tick(&mut self) -> Vec<RegEffect> {
        let (version, _) = self.core.own();
        vec![RegEffect::Broadcast(RegPeerMsg::Digest(
            self.core.me().clone(),
            version,
        ))]
    }

    /// The latest stamp of this replica's clock.
    pub fn clock(&self) -> Stamp {
        self.clock.current()
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

    /// Delivers every broadcast and send of `from`'s effects to `to`.
    fn deliver(effects: Vec<RegEffect>, to: &mut Replica) -> Vec<RegEffect> {
        let mut out = Vec::new();
        for e in effects {
            match e {
                RegEffect::Broadcast(m) => out.extend(to.on_peer(m, 0)),
                RegEffect::Send(n, m) if n == to.me().node => out.extend(to.on_peer(m, 0)),
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
            RegEffect::Broadcast(RegPeerMsg::Delta(_, _, Op::Put(r))) => Some(r.stamp.clone()),
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
            [RegEffect::Broadcast(RegPeerMsg::Pull(o))] if *o == owner("a")
        ));
        let full = deliver(pulls, &mut a);
        deliver(full, &mut b);
        assert!(b.is_synced_with("a"));
        assert_eq!(b.state().winners().len(), 2);
        // A digest of an owner b is behind on asks that owner.
        let _lost = a.register("z", vec![], 3).unwrap();
        let asks = deliver(a.tick(), &mut b);
        assert!(matches!(asks.as_slice(), [RegEffect::Send(n, RegPeerMsg::Pull(_))] if n == "a"));
    }
}
