//! The registry's actor: turns messages into [`Replica`] calls and carries out its effects
//! (sends to the other replicas, the shared lookup view, stopping actors that lost a conflict),
//! and keeps what only the shell can know: local actors and the remote proxies pg hands out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster_proto::registry::state::Change;
use actor_cluster_proto::registry::{RegEffect, RegPeerMsg, Replica, DIGEST_INTERVAL};
use actor_cluster_proto::wire::{parse_registered_group, registered_group, registry_group};
use actor_core::{LocalMessage, RemoteMessage};
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};

use super::{Entry, Owner, RegistryError, RegistryEvent, Shared, NAME_CONFLICT};
use crate::endpoint::{remote_members, Outbox, SCOPE};
use crate::membership::MemberEvent;
use crate::summaries::SummarySlot;

/// pg scope of registered actors.
const NAMES_SCOPE: &str = "actor_cluster.names";
/// How many removed names' metadata are kept for `Registry::take_removed_meta`.
const MAX_REMOVED_META: usize = 100_000;
/// How long an unresolved remote winner is retried on the replica's timer.
const UNRESOLVED_GIVE_UP: Duration = Duration::from_secs(3);

/// The wall clock in nanoseconds since the Unix epoch (0 before it).
/// The time of one input to the replica.
fn now() -> actor_cluster_proto::Now {
    actor_cluster_proto::Now {
        mono: Instant::now(),
        wall_ns: wall_ns(),
    }
}

/// The wall clock stamps are made from (corrected by the cluster, see
/// [`actor_core::wallclock`]).
pub(crate) fn wall_ns() -> u64 {
    actor_core::wallclock::wall_ns()
}

/// Messages between registry replicas.
#[derive(RemoteMessage)]
pub(crate) enum RegWire {
    Peer(RegPeerMsg),
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
    /// A peer's summary of this registry (from a membership probe).
    Summary(String, u64),
    Tick,
}

pub(crate) struct RegState {
    core: Replica,
    shared: Arc<Shared>,
    endpoints_group: String,
    /// Local registrations: name -> actor.
    local: HashMap<String, ActorCell>,
    /// Names held per local actor.
    by_actor: HashMap<ActorId, Vec<String>>,
    /// Remote winners whose proxy has not appeared in pg yet, since when.
    unresolved: HashMap<String, Instant>,
    /// This replica's summary on the membership probes.
    summary: SummarySlot,
    /// Messages for peers whose replica endpoint is not bound yet.
    outbox: Outbox<RegPeerMsg>,
}

pub(crate) fn resolve_remote(registry: &str, owner: &Owner, name: &str) -> Option<ActorCell> {
    ractor::pg::get_scoped_members(
        &NAMES_SCOPE.to_string(),
        &registered_group(registry, owner, name),
    )
    .into_iter()
    .find(|c| !c.get_id().is_local())
}

pub(crate) struct RegActor;

impl RegActor {
    fn endpoints(st: &RegState) -> Vec<ActorRef<RegWire>> {
        remote_members(&st.endpoints_group)
    }

    /// Carries out the replica's effects, in order.
    fn apply(st: &mut RegState, effects: Vec<RegEffect>) {
        for e in effects {
            match e {
                RegEffect::Broadcast(m) => {
                    for ep in Self::endpoints(st) {
                        let _ = ep.cast(RegWire::Peer(m.clone()));
                    }
                }
                RegEffect::Send(node, m) => st.outbox.send(
                    &st.shared.remote,
                    &st.endpoints_group,
                    &node,
                    m,
                    RegWire::Peer,
                ),
                RegEffect::Publish(changes) => Self::publish(st, changes),
                RegEffect::StopLost { name, winner } => {
                    tracing::info!(registry = %st.shared.name, %name, winner = ?winner, "name conflict lost; stopping the local actor");
                    if let Some(cell) = st.local.remove(&name) {
                        cell.stop(Some(NAME_CONFLICT.into()));
                        Self::leave_group(st, &name, &cell);
                    }
                }
            }
        }
        let synced = st.core.synced();
        if *st.shared.synced.read() != *synced {
            *st.shared.synced.write() = synced.clone();
        }
        st.summary.set(st.core.summary());
    }

    fn leave_group(st: &mut RegState, name: &str, cell: &ActorCell) {
        ractor::pg::leave_scoped(
            NAMES_SCOPE.into(),
            registered_group(&st.shared.name, &st.shared.me, name),
            vec![cell.clone()],
        );
        if let Some(names) = st.by_actor.get_mut(&cell.get_id()) {
            names.retain(|n| n != name);
        }
    }

    /// Applies winner changes to the shared view and tells listeners.
    fn publish(st: &mut RegState, changes: Vec<Change>) {
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
                            st.unresolved.insert(ch.name.clone(), Instant::now());
                        }
                        c
                    };
                    let entry = Entry {
                        owner: h.owner.clone(),
                        registered: h.reg.stamp.clone(),
                        meta: h.reg.meta.clone(),
                        cell,
                    };
                    view.insert(ch.name.clone(), entry);
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
            if let Some(b) = ch.before.filter(|_| owner_changed) {
                let _ = st.shared.events.send(RegistryEvent::Unregistered {
                    name: ch.name.clone(),
                    owner: b.owner,
                });
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

    fn register(
        myself: &ActorRef<RegMsg>,
        st: &mut RegState,
        name: String,
        cell: ActorCell,
        meta: Vec<u8>,
    ) -> Result<(), RegistryError> {
        // The local actor must be known before the replica's effects publish it.
        let effects = match st.core.register(&name, meta, wall_ns()) {
            Ok(e) => e,
            Err(holder) => {
                return Err(RegistryError::AlreadyRegistered {
                    name,
                    holder: holder.owner,
                })
            }
        };
        ractor::pg::join_scoped(
            NAMES_SCOPE.into(),
            registered_group(&st.shared.name, &st.shared.me, &name),
            vec![cell.clone()],
        );
        let id = cell.get_id();
        if !st.by_actor.contains_key(&id) {
            myself.monitor(cell.clone());
        }
        st.by_actor.entry(id).or_default().push(name.clone());
        st.local.insert(name, cell);
        Self::apply(st, effects);
        Ok(())
    }

    fn unregister(st: &mut RegState, name: &str) -> Result<(), RegistryError> {
        let Some(cell) = st.local.remove(name) else {
            return Err(RegistryError::NotRegistered(name.to_owned()));
        };
        Self::leave_group(st, name, &cell);
        if let Some(effects) = st.core.unregister(name) {
            Self::apply(st, effects);
        }
        Ok(())
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
        let me = myself.clone();
        let summary =
            shared
                .summaries
                .register(&registry_group(&shared.name), move |peer, theirs| {
                    let _ = me.cast(RegMsg::Summary(peer.to_owned(), theirs));
                });
        Ok(RegState {
            summary,
            outbox: Outbox::default(),
            core: Replica::new(shared.me.clone()),
            endpoints_group: registry_group(&shared.name),
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
        let effects = match msg {
            RegMsg::Register(name, cell, meta, reply) => {
                let _ = reply.send(Self::register(&myself, st, name, cell, meta));
                return Ok(());
            }
            RegMsg::Unregister(name, reply) => {
                let _ = reply.send(Self::unregister(st, &name));
                return Ok(());
            }
            RegMsg::UpdateMeta(name, meta, reply) => {
                let result = match st.core.update_meta(&name, meta) {
                    Some(effects) => {
                        Self::apply(st, effects);
                        Ok(())
                    }
                    None => Err(RegistryError::NotRegistered(name)),
                };
                let _ = reply.send(result);
                return Ok(());
            }
            RegMsg::Wire(RegWire::Peer(m)) => {
                tracing::trace!(registry = %st.shared.name, msg = ?m, "from a peer");
                st.core.on_peer(now(), m)
            }
            RegMsg::Wire(RegWire::Flush(reply)) => {
                let _ = reply.send(());
                return Ok(());
            }
            RegMsg::Member(MemberEvent::MemberUp(n)) => {
                st.summary.want(&n.name);
                st.core.on_member_up(&n.name)
            }
            RegMsg::Member(MemberEvent::MemberDown { node, .. })
            | RegMsg::Member(MemberEvent::MemberLeft(node)) => {
                st.outbox.forget(&node.name);
                st.core.on_member_down(&node.name)
            }
            RegMsg::Summary(peer, theirs) => {
                let effects = st.core.on_summary(now(), &peer, theirs);
                tracing::debug!(registry = %st.shared.name, %peer, theirs, mine = st.core.summary(), sends = effects.len(), "summary");
                effects
            }
            RegMsg::Tick => {
                st.outbox
                    .flush(&st.shared.remote, &st.endpoints_group, RegWire::Peer);
                if !st.unresolved.is_empty() {
                    Self::retry_unresolved(st);
                }
                return Ok(());
            }
        };
        Self::apply(st, effects);
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
                for name in st.by_actor.remove(&cell.get_id()).unwrap_or_default() {
                    if st
                        .local
                        .get(&name)
                        .is_some_and(|c| c.get_id() == cell.get_id())
                    {
                        st.local.remove(&name);
                        if let Some(effects) = st.core.unregister(&name) {
                            Self::apply(st, effects);
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
                    st.outbox
                        .flush(&st.shared.remote, &st.endpoints_group, RegWire::Peer);
                    // A replica appeared on another node: send it this node's full state.
                    for c in cells.iter().filter(|c| !c.get_id().is_local()) {
                        let ep: ActorRef<RegWire> = ActorRef::from(c.clone());
                        let node = st.shared.remote.node_of(&ep).unwrap_or_default();
                        st.summary.want(&node);
                        for e in st.core.on_peer_joined(&node) {
                            match e {
                                RegEffect::Send(_, m) => {
                                    let _ = ep.cast(RegWire::Peer(m));
                                }
                                other => Self::apply(st, vec![other]),
                            }
                        }
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
        let Some((reg, node, inc, name)) = parse_registered_group(group) else {
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
            if e.owner.node == node && e.owner.incarnation == inc {
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
        let now = Instant::now();
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
