//! One skeleton for every replicated service: deltas, digests and anti-entropy.
//!
//! The registry, the distributed supervisor's child table and the flag cache each keep state
//! that every node must end up agreeing on. They share one mechanism, [`Replicator`]:
//!
//! * a local change goes out at once as a **delta** to every peer ([`Replicator::delta`]);
//! * each service keeps a **summary** of its state, a hash equal on every node whose replicas
//!   agree ([`Replicated::summary`]); the shell carries every service's summary on the
//!   membership probes (one ping and one ack per node per probe interval, whatever the
//!   cluster's size), and a peer whose summary differs gets this node's **digest**
//!   ([`Replicator::on_summary`]): an idle cluster in agreement sends no service message at all;
//! * a peer's digest is compared with this node's state by the service
//!   ([`Replicated::compare`]), which says what repairs the difference: nothing, sending this
//!   node's state to that peer, pulling the peer's state, or refreshing from the service's own
//!   source of truth (the flag store);
//! * repairs are rate-limited per peer (one per `min_repair`), so a peer that stays different
//!   (a partition, a message lost for good) costs one repair per interval, not one per digest;
//! * a delta that arrives out of sequence ([`Merged::Gap`]) pulls the sender's state (one pull
//!   outstanding per peer: the next may follow its answer, or `min_repair` later);
//! * a peer that comes up gets this node's state at once ([`Replicator::on_peer_up`]);
//! * the replicator tracks which peers' state this node has received since they came up
//!   ([`Replicator::is_synced_with`]): the supervisor's join rule reads it.
//!
//! # Driving it
//!
//! The service owns its state (a type implementing [`Replicated`]) and one [`Replicator`], and
//! calls the replicator with the state for each input: a local change ([`Replicator::delta`]),
//! a message from a peer ([`Replicator::on_message`]), membership ([`Replicator::on_peer_up`],
//! [`Replicator::on_peer_down`]) and its periodic tick ([`Replicator::tick`], at least as
//! often as `digest_every`). Each call returns [`SyncOut`]s: send the message to every peer
//! ([`SyncOut::Broadcast`]) or to one ([`SyncOut::Send`]), or re-read the source of truth
//! ([`SyncOut::Refresh`]). Messages of one sender must arrive in the order it sent them (one
//! TCP connection); lost ones are repaired by digests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What applying a delta did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged<C> {
    /// Applied (or already known): these changes happened.
    Applied(Vec<C>),
    /// Out of sequence: this node missed an earlier delta of the sender.
    Gap,
}

/// What a peer's digest says this node should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing: this node has everything the peer announced.
    InSync,
    /// The peer lacks something this node has: send it this node's state.
    SendMine,
    /// This node lacks something the peer has: ask for the peer's state.
    PullTheirs,
    /// The two differ and the source of truth is elsewhere: re-read it.
    Refresh,
}

/// A replicated service's state, as the skeleton sees it.
pub trait Replicated {
    /// One change, sent to every peer as it happens.
    type Delta: Clone;
    /// A summary of a node's state.
    type Digest: Clone;
    /// A piece of a node's state, as sent to a peer that lacks it.
    type Part: Clone;
    /// A change applying a message made (for the service to publish).
    type Change;

    /// Applies a delta that node `from` sent.
    fn apply_delta(&mut self, from: &str, delta: Self::Delta, wall_ns: u64)
        -> Merged<Self::Change>;
    /// This node's digest.
    fn digest(&self) -> Self::Digest;
    /// What `from`'s digest says this node should do.
    fn compare(&self, from: &str, theirs: &Self::Digest) -> Verdict;
    /// This node's state (what a peer that lacks it gets), in messages of a bounded size.
    fn parts(&self) -> Vec<Self::Part>;
    /// Applies a piece of `from`'s state.
    fn apply_part(&mut self, from: &str, part: Self::Part, wall_ns: u64) -> Vec<Self::Change>;
    /// A hash of the state that is equal on every node whose replicas agree (use
    /// [`crate::hash::StableHash`]: the value is compared across nodes).
    fn summary(&self) -> u64;
}

/// The skeleton's messages, each naming its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMsg<D, G, P> {
    /// A change, as it happened.
    Delta {
        /// The sender.
        from: String,
        /// The change.
        delta: D,
    },
    /// The sender's digest.
    Digest {
        /// The sender.
        from: String,
        /// Its digest.
        digest: G,
    },
    /// "Send me your state."
    Pull {
        /// The sender.
        from: String,
    },
    /// A piece of the sender's state.
    Part {
        /// The sender.
        from: String,
        /// The piece.
        part: P,
    },
}

/// The message type of a service `S`.
pub type MsgOf<S> =
    SyncMsg<<S as Replicated>::Delta, <S as Replicated>::Digest, <S as Replicated>::Part>;

/// What the caller must do after a call (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOut<M> {
    /// Send to every peer reachable now.
    Broadcast(M),
    /// Send to this node's peer.
    Send(String, M),
    /// Re-read the service's source of truth (for services whose [`Replicated::compare`]
    /// says [`Verdict::Refresh`]).
    Refresh,
}

/// The outcome of a peer's message: the state's changes and what to send.
#[derive(Debug)]
pub struct Synced<C, M> {
    /// Changes to publish.
    pub changes: Vec<C>,
    /// What to do.
    pub out: Vec<SyncOut<M>>,
}

/// The anti-entropy policy and bookkeeping of one node's replica of one service.
#[derive(Debug, Clone)]
pub struct Replicator {
    me: String,
    min_repair: Duration,
    /// When this node's digest was last sent to each peer.
    digested: BTreeMap<String, Instant>,
    /// When a repair was last sent to (or pulled from) each peer.
    repaired: BTreeMap<String, Instant>,
    pulled: BTreeMap<String, Instant>,
    refreshed: Option<Instant>,
    synced: BTreeSet<String>,
}

impl Replicator {
    /// A replicator for node `me` that sends a peer its digest, and repairs a peer, at most
    /// once per `min_repair`.
    pub fn new(me: impl Into<String>, min_repair: Duration) -> Self {
        Self {
            me: me.into(),
            min_repair,
            digested: BTreeMap::new(),
            repaired: BTreeMap::new(),
            pulled: BTreeMap::new(),
            refreshed: None,
            synced: BTreeSet::new(),
        }
    }

    /// This node.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Whether this node has received `peer`'s state since it came up (always true of itself).
    pub fn is_synced_with(&self, peer: &str) -> bool {
        peer == self.me || self.synced.contains(peer)
    }

    /// The peers whose state this node has received since they came up.
    pub fn synced(&self) -> &BTreeSet<String> {
        &self.synced
    }

    /// A local change: send it to every peer.
    pub fn delta<S: Replicated>(&self, delta: S::Delta) -> SyncOut<MsgOf<S>> {
        SyncOut::Broadcast(SyncMsg::Delta {
            from: self.me.clone(),
            delta,
        })
    }

    fn parts<S: Replicated>(&self, state: &S, to: &str, out: &mut Vec<SyncOut<MsgOf<S>>>) {
        for part in state.parts() {
            out.push(SyncOut::Send(
                to.to_owned(),
                SyncMsg::Part {
                    from: self.me.clone(),
                    part,
                },
            ));
        }
    }

    fn due(last: Option<&Instant>, now: Instant, every: Duration) -> bool {
        last.is_none_or(|t| now.saturating_duration_since(*t) >= every)
    }

    fn repair<S: Replicated>(
        &mut self,
        state: &S,
        peer: &str,
        now: Instant,
        out: &mut Vec<SyncOut<MsgOf<S>>>,
    ) {
        if Self::due(self.repaired.get(peer), now, self.min_repair) {
            self.repaired.insert(peer.to_owned(), now);
            self.parts(state, peer, out);
        }
    }

    fn pull_from<S: Replicated>(
        &mut self,
        peer: &str,
        now: Instant,
        out: &mut Vec<SyncOut<MsgOf<S>>>,
    ) {
        if Self::due(self.pulled.get(peer), now, self.min_repair) {
            self.pulled.insert(peer.to_owned(), now);
            out.push(SyncOut::Send(
                peer.to_owned(),
                SyncMsg::Pull {
                    from: self.me.clone(),
                },
            ));
        }
    }

    /// A message from a peer's replica.
    pub fn on_message<S: Replicated>(
        &mut self,
        state: &mut S,
        now: Instant,
        wall_ns: u64,
        msg: MsgOf<S>,
    ) -> Synced<S::Change, MsgOf<S>> {
        let mut out = Vec::new();
        let mut changes = Vec::new();
        match msg {
            SyncMsg::Delta { from, delta } => match state.apply_delta(&from, delta, wall_ns) {
                Merged::Applied(c) => {
                    if from != self.me {
                        self.synced.insert(from);
                    }
                    changes = c;
                }
                // Pulled at once (a gap is certain, not a guess from a digest), but one pull
                // at a time: the deltas that follow a gap gap too until the copy arrives, and
                // the copy has them all.
                Merged::Gap => self.pull_from::<S>(&from, now, &mut out),
            },
            SyncMsg::Digest { from, digest } => {
                if from == self.me {
                    return Synced { changes, out };
                }
                match state.compare(&from, &digest) {
                    Verdict::InSync => {
                        self.synced.insert(from);
                    }
                    Verdict::SendMine => self.repair(state, &from, now, &mut out),
                    Verdict::PullTheirs => self.pull_from::<S>(&from, now, &mut out),
                    Verdict::Refresh => {
                        if Self::due(self.refreshed.as_ref(), now, self.min_repair) {
                            self.refreshed = Some(now);
                            out.push(SyncOut::Refresh);
                        }
                    }
                }
            }
            // Always answered: the asker limits its own pulls.
            SyncMsg::Pull { from } => self.parts(state, &from, &mut out),
            SyncMsg::Part { from, part } => {
                changes = state.apply_part(&from, part, wall_ns);
                if from != self.me {
                    self.pulled.remove(&from);
                    self.synced.insert(from);
                }
            }
        }
        Synced { changes, out }
    }

    /// A peer's replica became reachable: it gets this node's state, and this node counts as
    /// not having the peer's until it arrives.
    pub fn on_peer_up<S: Replicated>(&mut self, state: &S, peer: &str) -> Vec<SyncOut<MsgOf<S>>> {
        self.synced.remove(peer);
        self.pulled.remove(peer);
        self.repaired.remove(peer);
        self.digested.remove(peer);
        let mut out = Vec::new();
        self.parts(state, peer, &mut out);
        out
    }

    /// A peer went down or left.
    pub fn on_peer_down(&mut self, peer: &str) {
        self.synced.remove(peer);
        self.pulled.remove(peer);
        self.repaired.remove(peer);
        self.digested.remove(peer);
    }

    /// `peer` announced the summary of its state (on a membership probe). Equal to this
    /// node's: in sync. Different: the peer gets this node's digest (at most once per
    /// `min_repair`), and its verdict on it repairs the difference.
    pub fn on_summary<S: Replicated>(
        &mut self,
        state: &S,
        peer: &str,
        theirs: u64,
        now: Instant,
    ) -> Vec<SyncOut<MsgOf<S>>> {
        if peer == self.me {
            return Vec::new();
        }
        if theirs == state.summary() {
            self.synced.insert(peer.to_owned());
            return Vec::new();
        }
        if !Self::due(self.digested.get(peer), now, self.min_repair) {
            return Vec::new();
        }
        self.digested.insert(peer.to_owned(), now);
        vec![SyncOut::Send(
            peer.to_owned(),
            SyncMsg::Digest {
                from: self.me.clone(),
                digest: state.digest(),
            },
        )]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A last-writer-wins map: enough of a service to test the skeleton.
    #[derive(Default)]
    struct Lww(BTreeMap<String, u64>);

    impl Replicated for Lww {
        type Delta = (String, u64);
        type Digest = Vec<(String, u64)>;
        type Part = Vec<(String, u64)>;
        type Change = String;

        fn apply_delta(&mut self, _: &str, (k, v): (String, u64), _: u64) -> Merged<String> {
            let old = self.0.get(&k).copied().unwrap_or(0);
            if v > old {
                self.0.insert(k.clone(), v);
                Merged::Applied(vec![k])
            } else {
                Merged::Applied(Vec::new())
            }
        }
        fn digest(&self) -> Self::Digest {
            self.0.iter().map(|(k, v)| (k.clone(), *v)).collect()
        }
        fn compare(&self, _: &str, theirs: &Self::Digest) -> Verdict {
            if *theirs == self.digest() {
                Verdict::InSync
            } else {
                Verdict::SendMine
            }
        }
        fn parts(&self) -> Vec<Self::Part> {
            vec![self.digest()]
        }
        fn summary(&self) -> u64 {
            let mut h = crate::hash::StableHash::default();
            for (k, v) in &self.0 {
                h.str(k).u64(*v);
            }
            h.finish()
        }
        fn apply_part(&mut self, from: &str, part: Self::Part, w: u64) -> Vec<String> {
            let mut c = Vec::new();
            for d in part {
                if let Merged::Applied(x) = self.apply_delta(from, d, w) {
                    c.extend(x);
                }
            }
            c
        }
    }

    type Out = SyncOut<MsgOf<Lww>>;

    fn deliver(to: &mut (Replicator, Lww), now: Instant, out: Vec<Out>) -> Vec<Out> {
        let mut back = Vec::new();
        for o in out {
            let m = match o {
                SyncOut::Broadcast(m) => m,
                SyncOut::Send(n, m) if n == to.0.me() => m,
                _ => continue,
            };
            back.extend(to.0.on_message(&mut to.1, now, 0, m).out);
        }
        back
    }

    #[test]
    fn a_lost_delta_is_repaired_through_summaries_and_repairs_are_rate_limited() {
        let t0 = Instant::now();
        let every = Duration::from_millis(500);
        let mut a = (Replicator::new("a", every), Lww::default());
        let mut b = (Replicator::new("b", every), Lww::default());
        a.1 .0.insert("x".into(), 1);
        // The delta is lost; a's summary (on a probe) tells b that they differ.
        let digest = b.0.on_summary(&b.1, "a", a.1.summary(), t0);
        assert_eq!(digest.len(), 1, "{digest:?}");
        // Within `min_repair`, another probe sends nothing more.
        assert!(b.0.on_summary(&b.1, "a", a.1.summary(), t0).is_empty());
        // a's verdict on b's digest: b lacks something, send it a's state.
        let repair = deliver(&mut a, t0, digest);
        assert_eq!(repair.len(), 1, "{repair:?}");
        assert!(deliver(&mut b, t0, repair).is_empty());
        assert_eq!(b.1 .0.get("x"), Some(&1));
        assert!(b.0.is_synced_with("a"));
        // Equal summaries: in sync, nothing sent.
        let later = t0 + every;
        assert!(a.0.on_summary(&a.1, "b", b.1.summary(), later).is_empty());
        assert!(a.0.is_synced_with("b"));
    }

    #[test]
    fn a_peer_that_comes_up_gets_the_state_and_counts_as_unsynced_until_it_answers() {
        let every = Duration::from_millis(500);
        let mut a = (Replicator::new("a", every), Lww::default());
        let mut b = (Replicator::new("b", every), Lww::default());
        b.1 .0.insert("y".into(), 7);
        let to_b = a.0.on_peer_up(&a.1, "b");
        assert!(!a.0.is_synced_with("b"));
        let back = deliver(&mut b, Instant::now(), to_b);
        assert!(back.is_empty());
        let to_a = b.0.on_peer_up(&b.1, "a");
        assert!(deliver(&mut a, Instant::now(), to_a).is_empty());
        assert_eq!(a.1 .0.get("y"), Some(&7));
        assert!(a.0.is_synced_with("b"));
        a.0.on_peer_down("b");
        assert!(!a.0.is_synced_with("b"));
    }
}
