//! The distributed supervisor's protocol core: the replicated child table, placement, holds and
//! grace periods, quorum, restart windows, join synchronisation and anti-entropy, as one state
//! machine per node and supervisor.
//!
//! # Driving it
//!
//! The shell owns one [`SupervisorCore`] and, beside it, the supervisor's registry replica
//! (children are registered under their ids there). Each input is one call with one [`Now`];
//! the shell carries out the returned [`SupEffect`]s in order before the next call:
//!
//! * API requests: [`SupervisorCore::put`] (with one random sample, for random placement),
//!   [`SupervisorCore::terminate`], [`SupervisorCore::drain`];
//! * a message from another node's supervisor: [`SupervisorCore::on_peer`];
//! * membership events: [`SupervisorCore::on_member_up`], [`SupervisorCore::on_member_down`];
//! * registry events: [`SupervisorCore::on_unregistered`] when a child's registration went away;
//! * outcomes of the shell's work: [`SupervisorCore::on_started`] after each
//!   [`SupEffect::Start`], [`SupervisorCore::on_child_exit`] when a local child stops;
//! * [`SupervisorCore::tick`] every [`TICK_INTERVAL`].
//!
//! Most inputs change what this node should run without deciding it at once: they mark the core
//! dirty. After any call, when [`SupervisorCore::wants_reconcile`] is true, the shell calls
//! [`SupervisorCore::reconcile`] with a view of the registry (it may coalesce several inputs into
//! one reconciliation). [`SupervisorCore::next_wake`] is the instant at which a hold ends: call
//! `reconcile` then too.
//!
//! # Effects
//!
//! * [`SupEffect::Broadcast`]: send to every other node's supervisor that is reachable now;
//!   [`SupEffect::Send`]: to one node's (the child table's copies and pulls, through the
//!   replication skeleton of [`crate::replication`]).
//! * [`SupEffect::Start`]: start a child of the spec's kind (with its handed-off state, if its
//!   last registration carried one), register it under its id, then report
//!   [`SupervisorCore::on_started`]: [`StartOutcome::Taken`] if the registry refused the name
//!   (the copy must be stopped), [`StartOutcome::Failed`] if the kind could not start it.
//! * [`SupEffect::Stop`]: stop the local child and unregister it; its exit is expected.
//! * [`SupEffect::Move`]: export the child's state into its registration (so it reaches the next
//!   node), then as `Stop`.
//! * [`SupEffect::Unregister`]: unregister the id of a local child that exited.
//! * [`SupEffect::Collected`]: these children are gone for good (their tombstones were
//!   collected): drop what the shell keeps of them.
//! * [`SupEffect::Event`]: for logs and metrics only.
//!
//! # Join synchronisation
//!
//! A node that cannot yet tell which children run elsewhere starts nothing: while a member's
//! kinds are unknown (up to [`PENDING_GRACE`]), while the registry has not received the state of
//! a member it knows, and while a member that a peer reported (in its `Hello`) is not yet a
//! synced member here (up to [`JOIN_SYNC_GRACE`]). The last rule is what keeps a node that joined
//! through one seed from starting copies of children running on members it has not met yet.

pub mod gc;
pub mod lease;
mod machine;
mod peers;
pub mod placement;
mod sync;
pub mod table;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core_base::hlc::Hlc;
use actor_core_base::supervision::RestartWindow;
use serde::{Deserialize, Serialize};

pub use self::gc::{SeenEntry, TablePart};
pub use self::lease::LeaseCore;
pub use self::placement::{
    candidates, reconcile, Decision, Placement, Quorum, RandomPlacement, Uniform, View,
};
pub use self::sync::{TableDigest, TableMsg};
pub use self::table::{ChildStatus, ChildTable, DistChildSpec, RestartType, Row};
use crate::registry::Replica;
use crate::replication::Replicator;

/// How long a member that came up may take to introduce its supervisor before it is taken not to
/// run one (starts wait for it meanwhile).
pub const PENDING_GRACE: Duration = Duration::from_secs(2);

/// How long a member that a peer reported may take to become a synced member here before this
/// node stops waiting for it (it may be unreachable from here).
pub const JOIN_SYNC_GRACE: Duration = Duration::from_secs(5);

/// How often the shell calls [`SupervisorCore::tick`].
pub const TICK_INTERVAL: Duration = Duration::from_millis(500);

/// Rows per table message.
const ROWS_PER_MESSAGE: usize = 2000;

/// What the core reads of the supervisor's registry.
pub trait RegistryView {
    /// The node a child is registered on.
    fn node_of(&self, id: &str) -> Option<String>;
    /// Whether a child is registered anywhere (what a reconciliation asks of every child).
    fn is_located(&self, id: &str) -> bool {
        self.node_of(id).is_some()
    }
    /// Whether the registry has received `node`'s registrations since it came up.
    fn is_synced_with(&self, node: &str) -> bool;
    /// Whether the registry has received the registrations of every node of `nodes` (in
    /// name order, for a replica that can walk its own set beside them).
    fn synced_all(&self, nodes: &[String]) -> bool {
        nodes.iter().all(|n| self.is_synced_with(n))
    }
}

impl RegistryView for BTreeMap<String, String> {
    fn node_of(&self, id: &str) -> Option<String> {
        self.get(id).cloned()
    }
    fn is_located(&self, id: &str) -> bool {
        self.contains_key(id)
    }
    fn is_synced_with(&self, _: &str) -> bool {
        true
    }
}

impl RegistryView for Replica {
    fn node_of(&self, id: &str) -> Option<String> {
        self.state().winner(id).map(|h| h.owner.node)
    }
    fn is_located(&self, id: &str) -> bool {
        self.state().is_held(id)
    }
    fn is_synced_with(&self, node: &str) -> bool {
        Replica::is_synced_with(self, node)
    }
    fn synced_all(&self, nodes: &[String]) -> bool {
        // One walk over both sets in name order; a lookup only where the walk missed.
        let mut synced = self.synced().iter().peekable();
        nodes.iter().all(|n| {
            while synced.next_if(|s| *s < n).is_some() {}
            synced.peek().is_some_and(|s| *s == n) || Replica::is_synced_with(self, n)
        })
    }
}

/// Messages between nodes' parts of one supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SupPeerMsg {
    /// The child table's replication: rows, digests, copies.
    Table(TableMsg),
    /// A node's kinds and the members whose supervisors it knows; `ask`: answer with yours.
    Hello {
        /// The sender.
        node: String,
        /// The kinds it runs.
        kinds: Vec<String>,
        /// Answer with your own hello.
        ask: bool,
        /// The members (the sender included) whose supervisors it knows.
        members: Vec<String>,
    },
    /// The sender drains: it hands its children off and runs no new ones.
    Leaving(String),
    /// What the sender has seen of each writer's table writes (see [`gc`]): all of it, or
    /// the entries that changed since its last one.
    Seen {
        /// The sender.
        from: String,
        /// Its seen vector's entries.
        seen: Vec<SeenEntry>,
        /// Answer with your whole vector.
        ask: bool,
    },
    /// "Renew my lease" (see [`lease`]).
    LeaseAsk {
        /// The sender.
        from: String,
        /// The ask's number, echoed in the grant.
        seq: u64,
    },
    /// The answer to a [`SupPeerMsg::LeaseAsk`]: renewed.
    LeaseGrant {
        /// The sender.
        from: String,
        /// The ask's number.
        seq: u64,
    },
}

/// Notable events, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupEvent {
    /// A child runs here now; `failover`: its previous node is no longer a member.
    Started {
        /// The child.
        id: String,
        /// Whether this start replaces a copy on a node that went away.
        failover: bool,
    },
    /// A child exited and is restarted here (within its intensity).
    Restarted {
        /// The child.
        id: String,
    },
    /// A child exceeded its intensity or could not start: marked failed on every node.
    Failed {
        /// The child.
        id: String,
        /// Why.
        reason: String,
    },
    /// A `Temporary` child's node went away: removed from the table, not restarted (OTP).
    Dropped {
        /// The child.
        id: String,
        /// The node it ran on.
        node: String,
    },
}

/// What the shell must do (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupEffect {
    /// Send to every reachable supervisor peer.
    Broadcast(SupPeerMsg),
    /// Send to this node's supervisor peer (to every one, if the shell cannot tell which).
    Send(String, SupPeerMsg),
    /// Start this child here, register it, and report [`SupervisorCore::on_started`].
    Start {
        /// The child.
        id: String,
        /// Its spec.
        spec: DistChildSpec,
    },
    /// Stop this local child and unregister it.
    Stop {
        /// The child.
        id: String,
        /// The exit reason to give it.
        reason: &'static str,
    },
    /// Export this local child's state for its next node, then stop and unregister it.
    Move {
        /// The child.
        id: String,
        /// The node it moves to.
        to: String,
    },
    /// Unregister the id of a local child that exited.
    Unregister(String),
    /// These children's tombstones were collected: forget what the shell keeps of them (the
    /// metadata of their last registrations, their last exit reasons).
    Collected(Vec<String>),
    /// Log or count.
    Event(SupEvent),
}

/// How a [`SupEffect::Start`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// It runs and is registered.
    Running,
    /// The registry refused the name (it runs elsewhere); the copy was stopped.
    Taken,
    /// The kind could not start it.
    Failed(String),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupRefusal {
    /// No live member knows this kind.
    NoEligibleNode(String),
    /// This node does not see a majority of the configured members.
    QuorumNotMet,
    /// No child has this id.
    NotFound(String),
    /// Fewer eligible members than the supervisor's `min_members` (it starts nothing then).
    TooFewMembers {
        /// Eligible members now (this node included).
        have: usize,
        /// The configured minimum.
        need: usize,
    },
}

/// What [`SupervisorCore::start_or_get`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The id was new (or terminated, or failed): the child is added.
    Created,
    /// A live child already has this id; it is left as it is (Horde's `already_started`).
    AlreadyStarted {
        /// Its arguments differ from the ones asked for (the running child keeps its own).
        args_differ: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalState {
    Starting,
    Running,
    /// Stopped by us (moved, terminated, drained): its exit is not a failure.
    Stopping,
}

#[derive(Debug, Clone)]
struct Local {
    window: RestartWindow,
    state: LocalState,
}

/// One node's part of a distributed supervisor.
pub struct SupervisorCore {
    me: String,
    kinds: BTreeSet<String>,
    placement: Arc<dyn Placement>,
    active: bool,
    table: ChildTable,
    clock: Hlc,
    /// Live members (this node included) and the kinds they run.
    members: BTreeMap<String, BTreeSet<String>>,
    /// The names of `members`, in order (kept beside it: hellos and quorum checks read them
    /// on every message).
    names: Vec<String>,
    /// Members up whose kinds are not known yet, since when.
    pending: BTreeMap<String, Instant>,
    /// Members that a peer reported and this node has not synced with yet, since when.
    heard: BTreeMap<String, Instant>,
    leaving: BTreeSet<String>,
    running: BTreeMap<String, Local>,
    hold_until: Option<Instant>,
    dirty: bool,
    ticks: u64,
    sync: Replicator,
    /// Whether this node has seen a quorum since it started, and whether it lost it since.
    had_quorum: bool,
    quorum_lost: bool,
    draining: bool,
    /// Children whose registration went away, and the node they ran on.
    lost: BTreeMap<String, String>,
    /// Below this many eligible members nothing starts.
    min_members: usize,
    /// The tombstone collector.
    gc: gc::Collector,
    /// This node's lease, with quorum placement.
    lease: Option<LeaseCore>,
}

impl std::fmt::Debug for SupervisorCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorCore")
            .field("me", &self.me)
            .field("members", &self.members)
            .field("running", &self.running.len())
            .finish_non_exhaustive()
    }
}

const MAX_LOST: usize = 100_000;
