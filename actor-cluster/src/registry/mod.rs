//! The cluster registry: cluster-wide unique names for actors (Horde.Registry, better).
//!
//! * Every node holds a replica; [`Registry::lookup`] is a local read (no network, no actor
//!   round trip): a read lock and a hash lookup.
//! * [`Registry::register`] returns once the name is registered locally; the change is sent at
//!   once to every connected node (a delta), each node announces its version every 500 ms so a
//!   node that missed a delta pulls the owner's full state, and a node that joins gets the full
//!   state of every other node.
//! * A taken name fails with [`RegistryError::AlreadyRegistered`] and the holder.
//! * An actor that stops loses its names; a node that goes down or leaves loses its entries.
//! * A name registered on both sides of a partition (or concurrently) keeps one deterministic
//!   winner, the older registration; the loser's actor is stopped with reason `NameConflict`.
//!
//! The policy (versions, deltas, digests, conflicts) is the sans-IO
//! [`actor_cluster_proto::registry::Replica`]; this module is its shell: a handle whose lookups
//! read a shared view, and an actor that turns messages into replica calls and effects into
//! sends, view updates and stops.
//!
//! Remote actor refs travel through ractor_cluster's process groups: a registered actor joins a
//! pg group unique to (registry, owner incarnation, name), where the other nodes find its
//! proxy. Actors whose message type cannot cross nodes are registered too, but other nodes get
//! no ref for them.

mod actor;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use ractor::{Actor, ActorCell, ActorRef, Message};
use tokio::sync::broadcast;

pub use actor_cluster_proto::registry::NAME_CONFLICT;
use actor_cluster_proto::wire::registry_group;
pub use actor_cluster_proto::Owner;
use actor_core::hlc::Stamp;

use self::actor::{resolve_remote, RegActor, RegMsg};
pub(crate) use self::actor::{wall_ns, RegWire};
use crate::endpoint::{forward_member_events, remote_members, Endpoint};
use crate::membership::MemberEvent;
use crate::Node;

/// Errors of the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is held by another registration.
    #[error("{name:?} is already registered on {holder:?}")]
    AlreadyRegistered {
        /// The name.
        name: String,
        /// Its holder.
        holder: Owner,
    },
    /// This node holds no registration of that name.
    #[error("{0:?} is not registered on this node")]
    NotRegistered(String),
    /// The registry's actor did not answer (the node is stopping).
    #[error("registry unavailable: {0}")]
    Unavailable(String),
}

/// What listeners are told (from this node's point of view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryEvent {
    /// A name now has this holder.
    Registered {
        /// The name.
        name: String,
        /// Its owner.
        owner: Owner,
        /// Its metadata.
        meta: Vec<u8>,
    },
    /// A name lost this holder (unregistered, its actor stopped, its node went down, or it lost
    /// a conflict).
    Unregistered {
        /// The name.
        name: String,
        /// The owner it had.
        owner: Owner,
    },
}

/// A registration as a lookup sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The owner node incarnation.
    pub owner: Owner,
    /// When it was registered, on the owner's hybrid logical clock.
    pub registered: Stamp,
    /// Metadata.
    pub meta: Vec<u8>,
    /// The actor: local, or the local proxy of a remote actor; `None` if it cannot be reached
    /// from here (not yet known through pg, or its messages cannot cross nodes).
    pub cell: Option<ActorCell>,
}

pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) view: RwLock<HashMap<String, Entry, foldhash::fast::RandomState>>,
    /// Metadata of names removed recently (non-empty metadata only; bounded).
    pub(crate) removed_meta: parking_lot::Mutex<HashMap<String, Vec<u8>>>,
    /// Nodes whose state this replica has received (a mirror of the core's).
    pub(crate) synced: RwLock<BTreeSet<String>>,
    pub(crate) events: broadcast::Sender<RegistryEvent>,
    pub(crate) me: Owner,
    /// The node's sessions: which node a replica endpoint lives on.
    pub(crate) remote: crate::Remote,
    /// Where the replica's summary goes on the membership probes.
    pub(crate) summaries: Arc<crate::Summaries>,
}

/// A handle to this node's replica of a named registry.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
    actor: ActorRef<RegMsg>,
    endpoint: ActorRef<RegWire>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("name", &self.shared.name)
            .field("me", &self.shared.me)
            .finish_non_exhaustive()
    }
}

const CALL: Option<Duration> = Some(Duration::from_secs(10));

fn unavailable(e: impl std::fmt::Debug) -> RegistryError {
    RegistryError::Unavailable(format!("{e:?}"))
}

impl Registry {
    /// Starts this node's replica of the registry `name` (the same name on every node).
    pub async fn start(node: &Node, name: &str) -> Result<Registry, crate::ClusterError> {
        let me = Owner {
            node: node.identity().name.clone(),
            incarnation: node.identity().incarnation,
        };
        let (events, _) = broadcast::channel(8192);
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            view: RwLock::new(HashMap::default()),
            removed_meta: parking_lot::Mutex::new(HashMap::new()),
            synced: RwLock::new(BTreeSet::new()),
            events,
            me,
            remote: node.remote().clone(),
            summaries: node.summaries().clone(),
        });
        let err = |e: ractor::SpawnErr| crate::ClusterError::NodeServer(e.to_string());
        let (actor, _) = Actor::spawn(None, RegActor, shared.clone())
            .await
            .map_err(err)?;
        let (endpoint, _) = Actor::spawn(
            None,
            Endpoint::new(RegMsg::Wire),
            (registry_group(name), actor.clone()),
        )
        .await
        .map_err(err)?;
        forward_member_events(node.subscribe(), actor.clone(), RegMsg::Member);
        // Members already up when the registry starts get our (empty) state via their digests;
        // ask them for theirs.
        for m in node.members().await.unwrap_or_default() {
            if matches!(
                m.state,
                crate::MemberState::Up | crate::MemberState::Suspect
            ) {
                let _ = actor.cast(RegMsg::Member(MemberEvent::MemberUp(m.node)));
            }
        }
        Ok(Registry {
            shared,
            actor,
            endpoint,
        })
    }

    /// The registry's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Registers `actor` under `name` with `meta`. Returns once registered on this node; other
    /// nodes see it within milliseconds.
    pub async fn register(
        &self,
        name: &str,
        actor: ActorCell,
        meta: Vec<u8>,
    ) -> Result<(), RegistryError> {
        let name = name.to_owned();
        match self
            .actor
            .call(|r| RegMsg::Register(name, actor, meta, r), CALL)
            .await
        {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            Ok(other) => Err(unavailable(other)),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Unregisters a name this node holds.
    pub async fn unregister(&self, name: &str) -> Result<(), RegistryError> {
        let name = name.to_owned();
        match self.actor.call(|r| RegMsg::Unregister(name, r), CALL).await {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            Ok(other) => Err(unavailable(other)),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Replaces the metadata of a name this node holds.
    pub async fn update_meta(&self, name: &str, meta: Vec<u8>) -> Result<(), RegistryError> {
        let name = name.to_owned();
        match self
            .actor
            .call(|r| RegMsg::UpdateMeta(name, meta, r), CALL)
            .await
        {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            Ok(other) => Err(unavailable(other)),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The actor registered under `name` (a local read, no network).
    pub fn lookup(&self, name: &str) -> Option<ActorCell> {
        let view = self.shared.view.read();
        let e = view.get(name)?;
        match &e.cell {
            Some(c) => Some(c.clone()),
            None if e.owner != self.shared.me => resolve_remote(&self.shared.name, &e.owner, name),
            None => None,
        }
    }

    /// The actor registered under `name`, as a typed ref. A local actor is checked against the
    /// message type; a remote one cannot be (ractor does not know remote types).
    pub fn lookup_typed<M: Message>(&self, name: &str) -> Option<ActorRef<M>> {
        let cell = self.lookup(name)?;
        (cell.is_message_type_of::<M>() != Some(false)).then(|| ActorRef::from(cell))
    }

    /// Whether `name` is registered (a local read).
    pub fn contains(&self, name: &str) -> bool {
        self.shared.view.read().contains_key(name)
    }

    /// The registration of `name`, with owner and metadata.
    pub fn entry(&self, name: &str) -> Option<Entry> {
        self.shared.view.read().get(name).cloned()
    }

    /// The last metadata of a name that was removed since (if it was not empty), taken out.
    /// The distributed supervisor uses it to carry a child's handed-off state: the old node
    /// writes the state into the metadata, then unregisters, and both reach every node in that
    /// order.
    pub fn take_removed_meta(&self, name: &str) -> Option<Vec<u8>> {
        self.shared.removed_meta.lock().remove(name)
    }

    /// Drops the metadata kept of these removed names (children that are gone for good).
    pub(crate) fn forget_removed_meta(&self, names: &[String]) {
        let mut removed = self.shared.removed_meta.lock();
        for n in names {
            removed.remove(n);
        }
    }

    /// Waits (at most `timeout`) until every other replica has applied everything this replica
    /// sent it so far: call before a node shuts down, so its last changes are not lost with its
    /// connections.
    pub async fn flush(&self, timeout: Duration) {
        let calls: Vec<_> = remote_members::<RegWire>(&registry_group(&self.shared.name))
            .into_iter()
            .map(|ep| async move {
                let _ = ep.call(RegWire::Flush, Some(timeout)).await;
            })
            .collect();
        let _ = tokio::time::timeout(timeout, futures::future::join_all(calls)).await;
    }

    /// Whether this replica has received the state of node `node` since it came up.
    pub fn is_synced_with(&self, node: &str) -> bool {
        node == self.shared.me.node || self.shared.synced.read().contains(node)
    }

    /// The node's sessions, for sends to one peer.
    pub(crate) fn remote(&self) -> &crate::Remote {
        &self.shared.remote
    }

    /// Every registered name.
    pub fn names(&self) -> Vec<String> {
        self.shared.view.read().keys().cloned().collect()
    }

    /// Every registered name with its owner node.
    pub fn owners(&self) -> HashMap<String, String> {
        self.shared
            .view
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.owner.node.clone()))
            .collect()
    }

    /// Every registration.
    pub fn entries(&self) -> Vec<(String, Entry)> {
        self.shared
            .view
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// How many names are registered.
    pub fn count(&self) -> usize {
        self.shared.view.read().len()
    }

    /// Registration events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RegistryEvent> {
        self.shared.events.subscribe()
    }

    /// Stops this node's replica (its registrations are dropped by the others when the node goes
    /// down or leaves).
    pub fn stop(&self) {
        self.endpoint.stop(None);
        self.actor.stop(None);
    }
}
