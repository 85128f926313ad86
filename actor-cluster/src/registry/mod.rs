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
//! Remote actor refs travel through ractor_cluster's process groups: a registered actor joins a
//! pg group unique to (registry, owner incarnation, name), where the other nodes find its
//! proxy. Actors whose message type cannot cross nodes are registered too, but other nodes get
//! no ref for them.

pub mod core;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actor_core::{LocalMessage, RemoteMessage};
use parking_lot::RwLock;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, Message, RpcReplyPort,
    SupervisionEvent,
};
use tokio::sync::broadcast;

use self::core::{Change, Gap, Op, Owner, Registration, RegistryCore};
use crate::endpoint::{forward_member_events, remote_members, Endpoint};
use crate::membership::{MemberEvent, SCOPE};
use crate::Node;

/// pg scope of registered actors.
const NAMES_SCOPE: &str = "actor_cluster.names";
/// Reason given to an actor stopped because it lost a name conflict.
pub const NAME_CONFLICT: &str = "NameConflict";
/// How many removed names' metadata are kept for [`Registry::take_removed_meta`].
const MAX_REMOVED_META: usize = 100_000;
/// How long an unresolved remote winner is retried on the replica's timer.
const UNRESOLVED_GIVE_UP: Duration = Duration::from_secs(3);
/// How often a node announces its version.
const DIGEST_INTERVAL: Duration = Duration::from_millis(500);

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
    /// Registration time (ns since the Unix epoch, owner's clock).
    pub registered_at: u64,
    /// Metadata.
    pub meta: Vec<u8>,
    /// The actor: local, or the local proxy of a remote actor; `None` if it cannot be reached
    /// from here (not yet known through pg, or its messages cannot cross nodes).
    pub cell: Option<ActorCell>,
}

/// Messages between registry replicas.
#[derive(RemoteMessage)]
pub(crate) enum RegWire {
    Delta(Owner, u64, Op),
    Digest(Owner, u64),
    /// "Owner, send your full state."
    Pull(Owner),
    Full(Owner, u64, Vec<Registration>),
    /// Answered once everything the sender sent before it has been applied (the messages of
    /// one sender to one replica arrive in order).
    Flush(RpcReplyPort<()>),
}

#[derive(LocalMessage)]
pub(crate) enum RegMsg {
    Register(
        String,
        ActorCell,
        Vec<u8>,
        RpcReplyPort<Result<(), RegistryError>>,
    ),
    Unregister(String, RpcReplyPort<Result<(), RegistryError>>),
    UpdateMeta(String, Vec<u8>, RpcReplyPort<Result<(), RegistryError>>),
    Wire(RegWire),
    Member(MemberEvent),
    Tick,
}

struct Shared {
    name: String,
    view: RwLock<HashMap<String, Entry, foldhash::fast::RandomState>>,
    /// Metadata of names removed recently (non-empty metadata only; bounded).
    removed_meta: parking_lot::Mutex<HashMap<String, Vec<u8>>>,
    /// Nodes whose state this replica has received (a full state, or a delta in sequence).
    synced: RwLock<HashSet<String>>,
    events: broadcast::Sender<RegistryEvent>,
    me: Owner,
}

struct RegState {
    core: RegistryCore,
    shared: Arc<Shared>,
    endpoints_group: String,
    /// Local registrations: name -> actor.
    local: HashMap<String, ActorCell>,
    /// Names held per local actor.
    by_actor: HashMap<ActorId, Vec<String>>,
    /// Remote winners whose proxy has not appeared in pg yet.
    /// Remote winners whose proxy has not appeared in pg yet, since when.
    unresolved: HashMap<String, std::time::Instant>,
}

fn group_key(registry: &str, owner: &Owner, name: &str) -> String {
    format!("{registry}|{}|{}|{name}", owner.node, owner.incarnation)
}

fn resolve_remote(registry: &str, owner: &Owner, name: &str) -> Option<ActorCell> {
    ractor::pg::get_scoped_members(&NAMES_SCOPE.to_string(), &group_key(registry, owner, name))
        .into_iter()
        .find(|c| !c.get_id().is_local())
}

struct RegActor;

impl RegActor {
    fn endpoints(st: &RegState) -> Vec<ActorRef<RegWire>> {
        remote_members(&st.endpoints_group)
    }

    fn broadcast(st: &RegState, msg: impl Fn() -> RegWire) {
        for ep in Self::endpoints(st) {
            let _ = ep.cast(msg());
        }
    }

    fn broadcast_full(st: &RegState) {
        let (version, regs) = st.core.own();
        let me = st.core.me().clone();
        Self::broadcast(st, || RegWire::Full(me.clone(), version, regs.clone()));
    }

    /// Applies winner changes to the shared view and tells listeners.
    fn publish(st: &mut RegState, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let registry = st.shared.name.clone();
        let mut view = st.shared.view.write();
        for ch in changes {
            match &ch.after {
                Some(h) => {
                    let cell = if h.owner == st.shared.me {
                        st.local.get(&ch.name).cloned()
                    } else {
                        let c = resolve_remote(&registry, &h.owner, &ch.name);
                        if c.is_none() {
                            st.unresolved
                                .insert(ch.name.clone(), std::time::Instant::now());
                        }
                        c
                    };
                    view.insert(
                        ch.name.clone(),
                        Entry {
                            owner: h.owner.clone(),
                            registered_at: h.reg.registered_at,
                            meta: h.reg.meta.clone(),
                            cell,
                        },
                    );
                }
                None => {
                    if let Some(old) = view.remove(&ch.name) {
                        if !old.meta.is_empty() {
                            let mut removed = st.shared.removed_meta.lock();
                            if removed.len() >= MAX_REMOVED_META {
                                removed.clear();
                            }
                            removed.insert(ch.name.clone(), old.meta);
                        }
                    }
                    st.unresolved.remove(&ch.name);
                }
            }
            let owner_changed =
                ch.before.as_ref().map(|h| &h.owner) != ch.after.as_ref().map(|h| &h.owner);
            if let Some(b) = &ch.before {
                if owner_changed {
                    let _ = st.shared.events.send(RegistryEvent::Unregistered {
                        name: ch.name.clone(),
                        owner: b.owner.clone(),
                    });
                }
            }
            if let Some(a) = ch.after {
                let _ = st.shared.events.send(RegistryEvent::Registered {
                    name: ch.name,
                    owner: a.owner,
                    meta: a.reg.meta,
                });
            }
        }
    }

    /// Local registrations that lost a conflict: stop their actors and unregister them.
    fn resolve_conflicts(st: &mut RegState, names: &[String]) {
        for (name, winner) in st.core.lost_locally(names) {
            tracing::warn!(registry = %st.shared.name, %name, winner = ?winner.owner, "name conflict lost; stopping the local actor");
            if let Some(cell) = st.local.remove(&name) {
                cell.stop(Some(NAME_CONFLICT.into()));
                ractor::pg::leave_scoped(
                    NAMES_SCOPE.into(),
                    group_key(&st.shared.name, &st.shared.me, &name),
                    vec![cell.clone()],
                );
                if let Some(names) = st.by_actor.get_mut(&cell.get_id()) {
                    names.retain(|n| *n != name);
                }
            }
            Self::unregister_and_send(st, &name);
        }
    }

    fn unregister_and_send(st: &mut RegState, name: &str) {
        if let Some((version, op, changes)) = st.core.unregister_local(name) {
            let me = st.core.me().clone();
            Self::broadcast(st, || RegWire::Delta(me.clone(), version, op.clone()));
            Self::publish(st, changes);
        }
    }

    fn pull(st: &RegState, owner: Owner) {
        Self::broadcast(st, || RegWire::Pull(owner.clone()));
    }
}

impl Actor for RegActor {
    type Msg = RegMsg;
    type State = RegState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<RegMsg>,
        shared: Arc<Shared>,
    ) -> Result<RegState, ActorProcessingErr> {
        ractor::pg::monitor_scope(NAMES_SCOPE.into(), myself.get_cell());
        // Replica endpoints appearing on other nodes get this node's full state at once.
        ractor::pg::monitor_scope(SCOPE.into(), myself.get_cell());
        myself.send_interval(DIGEST_INTERVAL, || RegMsg::Tick);
        Ok(RegState {
            core: RegistryCore::new(shared.me.clone()),
            endpoints_group: format!("registry:{}", shared.name),
            shared,
            local: HashMap::new(),
            by_actor: HashMap::new(),
            unresolved: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RegMsg>,
        msg: RegMsg,
        st: &mut RegState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RegMsg::Register(name, cell, meta, reply) => {
                let now = crate::testkit::unix_ns();
                match st.core.register_local(&name, now, meta) {
                    Err(holder) => {
                        let _ = reply.send(Err(RegistryError::AlreadyRegistered {
                            name,
                            holder: holder.owner,
                        }));
                    }
                    Ok((version, op, changes)) => {
                        ractor::pg::join_scoped(
                            NAMES_SCOPE.into(),
                            group_key(&st.shared.name, &st.shared.me, &name),
                            vec![cell.clone()],
                        );
                        let id = cell.get_id();
                        if !st.by_actor.contains_key(&id) {
                            myself.monitor(cell.clone());
                        }
                        st.by_actor.entry(id).or_default().push(name.clone());
                        st.local.insert(name, cell);
                        let me = st.core.me().clone();
                        Self::broadcast(st, || RegWire::Delta(me.clone(), version, op.clone()));
                        Self::publish(st, changes);
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            RegMsg::Unregister(name, reply) => {
                let result = match st.local.remove(&name) {
                    Some(cell) => {
                        ractor::pg::leave_scoped(
                            NAMES_SCOPE.into(),
                            group_key(&st.shared.name, &st.shared.me, &name),
                            vec![cell.clone()],
                        );
                        if let Some(names) = st.by_actor.get_mut(&cell.get_id()) {
                            names.retain(|n| *n != name);
                        }
                        Self::unregister_and_send(st, &name);
                        Ok(())
                    }
                    None => Err(RegistryError::NotRegistered(name)),
                };
                let _ = reply.send(result);
            }
            RegMsg::UpdateMeta(name, meta, reply) => {
                let result = match st.core.update_meta_local(&name, meta) {
                    Some((version, op, changes)) => {
                        let me = st.core.me().clone();
                        Self::broadcast(st, || RegWire::Delta(me.clone(), version, op.clone()));
                        Self::publish(st, changes);
                        Ok(())
                    }
                    None => Err(RegistryError::NotRegistered(name)),
                };
                let _ = reply.send(result);
            }
            RegMsg::Wire(RegWire::Delta(owner, version, op)) => {
                tracing::trace!(registry = %st.shared.name, ?owner, version, ?op, "delta");
                match st.core.apply_delta(&owner, version, op) {
                    Ok(changes) => {
                        st.shared.synced.write().insert(owner.node.clone());
                        let names: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
                        Self::publish(st, changes);
                        Self::resolve_conflicts(st, &names);
                    }
                    Err(Gap) => Self::pull(st, owner),
                }
            }
            RegMsg::Wire(RegWire::Digest(owner, version)) => {
                if st.core.is_behind(&owner, version) {
                    Self::pull(st, owner);
                }
            }
            RegMsg::Wire(RegWire::Pull(owner)) => {
                if owner == *st.core.me() {
                    Self::broadcast_full(st);
                }
            }
            RegMsg::Wire(RegWire::Flush(reply)) => {
                let _ = reply.send(());
            }
            RegMsg::Wire(RegWire::Full(owner, version, regs)) => {
                let changes = st.core.apply_full(&owner, version, regs);
                if owner.node != st.shared.me.node {
                    st.shared.synced.write().insert(owner.node.clone());
                }
                let names: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
                Self::publish(st, changes);
                Self::resolve_conflicts(st, &names);
            }
            RegMsg::Member(MemberEvent::MemberUp(_)) => Self::broadcast_full(st),
            RegMsg::Member(MemberEvent::MemberDown { node, .. })
            | RegMsg::Member(MemberEvent::MemberLeft(node)) => {
                st.shared.synced.write().remove(&node.name);
                let changes = st.core.drop_node(&node.name);
                Self::publish(st, changes);
            }
            RegMsg::Tick => {
                let (version, _) = st.core.own();
                let me = st.core.me().clone();
                Self::broadcast(st, || RegWire::Digest(me.clone(), version));
                if !st.unresolved.is_empty() {
                    Self::retry_unresolved(st);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<RegMsg>,
        evt: SupervisionEvent,
        st: &mut RegState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorTerminated(cell, _, _)
            | SupervisionEvent::ActorFailed(cell, _) => {
                if let Some(names) = st.by_actor.remove(&cell.get_id()) {
                    for name in names {
                        if st
                            .local
                            .get(&name)
                            .is_some_and(|c| c.get_id() == cell.get_id())
                        {
                            st.local.remove(&name);
                            Self::unregister_and_send(st, &name);
                        }
                    }
                }
            }
            SupervisionEvent::ProcessGroupChanged(ractor::pg::GroupChangeMessage::Join(
                scope,
                group,
                cells,
            )) => {
                if scope == SCOPE && group == st.endpoints_group {
                    // A replica appeared on another node: send it this node's full state.
                    let (version, regs) = st.core.own();
                    let me = st.core.me().clone();
                    for c in cells.iter().filter(|c| !c.get_id().is_local()) {
                        let ep: ActorRef<RegWire> = ActorRef::from(c.clone());
                        let _ = ep.cast(RegWire::Full(me.clone(), version, regs.clone()));
                    }
                } else if scope == NAMES_SCOPE {
                    Self::resolved(st, &group, &cells);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl RegActor {
    /// A registered actor's pg group gained members: if it is an unresolved winner, use them.
    fn resolved(st: &mut RegState, group: &str, cells: &[ActorCell]) {
        let mut parts = group.splitn(4, '|');
        let (Some(reg), Some(node), Some(inc), Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if reg != st.shared.name || !st.unresolved.contains_key(name) {
            return;
        }
        let Some(cell) = cells.iter().find(|c| !c.get_id().is_local()) else {
            return;
        };
        let mut view = st.shared.view.write();
        if let Some(e) = view.get_mut(name) {
            if e.owner.node == node && e.owner.incarnation.to_string() == inc {
                e.cell = Some(cell.clone());
                st.unresolved.remove(name);
            }
        }
    }

    /// Retries resolving recent unresolved winners through pg. A proxy appears within
    /// milliseconds when the actor can cross nodes at all; after `UNRESOLVED_GIVE_UP` the name
    /// is left to the lookup's slow path (an actor whose messages cannot cross nodes never
    /// resolves, and retrying thousands of them would stall the replica).
    fn retry_unresolved(st: &mut RegState) {
        let registry = st.shared.name.clone();
        let now = std::time::Instant::now();
        let mut view = st.shared.view.write();
        st.unresolved.retain(|name, since| {
            if now.duration_since(*since) > UNRESOLVED_GIVE_UP {
                return false;
            }
            match view.get_mut(name) {
                Some(e) if e.cell.is_none() => match resolve_remote(&registry, &e.owner, name) {
                    Some(c) => {
                        e.cell = Some(c);
                        false
                    }
                    None => true,
                },
                _ => false,
            }
        });
    }
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
            synced: RwLock::new(HashSet::new()),
            events,
            me,
        });
        let err = |e: ractor::SpawnErr| crate::ClusterError::NodeServer(e.to_string());
        let (actor, _) = Actor::spawn(None, RegActor, shared.clone())
            .await
            .map_err(err)?;
        let (endpoint, _) = Actor::spawn(
            None,
            Endpoint::new(RegMsg::Wire),
            (format!("registry:{name}"), actor.clone()),
        )
        .await
        .map_err(err)?;
        forward_member_events(node, actor.clone(), RegMsg::Member);
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

    /// Waits (at most `timeout`) until every other replica has applied everything this replica
    /// sent it so far: call before a node shuts down, so its last changes are not lost with its
    /// connections.
    pub async fn flush(&self, timeout: Duration) {
        let calls: Vec<_> = remote_members::<RegWire>(&format!("registry:{}", self.shared.name))
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
