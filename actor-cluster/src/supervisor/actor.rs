//! The distributed supervisor's actor: turns messages into [`SupervisorCore`] calls and carries
//! out its effects (sends, child starts and stops, registrations, handoff exports). Every
//! decision is the core's; what stays here is what only the shell has: actor cells, kinds'
//! factories and the registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actor_cluster_proto::supervisor::{
    ChildStatus, PutOutcome, RegistryView, Row, StartOutcome, SupEffect, SupEvent, SupPeerMsg,
    SupervisorCore, TICK_INTERVAL,
};
use actor_cluster_proto::Now;
use actor_core::supervisor::core::ExitReason;
use actor_core::{LocalMessage, RemoteMessage};
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};

use super::{
    ChildKind, DistChildSpec, DistSupervisorError, StartContext, EXIT_MAGIC, HANDOFF_MAGIC,
};
use crate::endpoint::{remote_members, Outbox, SCOPE};
use crate::membership::MemberEvent;
use crate::registry::{Registry, RegistryError};

#[derive(RemoteMessage)]
pub(crate) enum DsupWire {
    Peer(SupPeerMsg),
}

#[derive(LocalMessage)]
pub(crate) enum DsupMsg {
    Put(
        Vec<DistChildSpec>,
        RpcReplyPort<Result<(), DistSupervisorError>>,
    ),
    /// Start-or-get of one child.
    StartOrGet(
        DistChildSpec,
        RpcReplyPort<Result<PutOutcome, DistSupervisorError>>,
    ),
    Terminate(String, RpcReplyPort<Result<(), DistSupervisorError>>),
    Table(RpcReplyPort<Vec<Row>>),
    /// A child's status and kind in the table (`None`: no such id).
    Status(String, RpcReplyPort<Option<(ChildStatus, String)>>),
    Local(RpcReplyPort<Vec<String>>),
    Eligible(RpcReplyPort<Vec<String>>),
    /// Answered once at least this many members are eligible.
    WaitEligible(usize, RpcReplyPort<Vec<String>>),
    /// How many decisions a reconciliation would take now (0: settled).
    Pending(RpcReplyPort<usize>),
    /// Answered once no local child runs.
    Drain(RpcReplyPort<()>),
    Wire(DsupWire),
    Member(MemberEvent),
    /// A child's registration went away with the node it ran on (child id, node).
    Lost(String, String),
    Reconcile,
    /// A peer's summary of the child table (from a membership probe).
    Summary(String, u64),
    Tick,
}

pub(crate) struct DState {
    pub(crate) core: SupervisorCore,
    pub(crate) group: String,
    pub(crate) kinds: Arc<HashMap<String, Arc<dyn ChildKind>>>,
    pub(crate) registry: Registry,
    /// Local children's actors.
    pub(crate) cells: HashMap<String, ActorCell>,
    pub(crate) by_cell: HashMap<ActorId, String>,
    pub(crate) reconcile_pending: bool,
    /// The hold end a `Reconcile` is scheduled for.
    pub(crate) wake: Option<Instant>,
    /// Drains waiting for the last local child to stop.
    pub(crate) drains: Vec<RpcReplyPort<()>>,
    /// Waits for a number of eligible members.
    pub(crate) member_waits: Vec<(usize, RpcReplyPort<Vec<String>>)>,
    /// Why a local child's last incarnation failed, for its next registration's metadata.
    pub(crate) last_exit: HashMap<String, String>,
    pub(crate) summaries: Arc<crate::Summaries>,
    /// The child table's summary on the membership probes (set in `pre_start`).
    pub(crate) summary: Option<crate::SummarySlot>,
    /// Until when this node's children may act (published after every input).
    pub(crate) fence: super::LeaseFence,
    /// Messages for peers whose supervisor endpoint is not bound yet.
    pub(crate) outbox: Outbox<SupPeerMsg>,
}

impl RegistryView for Registry {
    fn node_of(&self, id: &str) -> Option<String> {
        self.entry(id).map(|e| e.owner.node)
    }
    fn is_located(&self, id: &str) -> bool {
        self.contains(id)
    }
    fn is_synced_with(&self, node: &str) -> bool {
        Registry::is_synced_with(self, node)
    }
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall_ns: crate::registry::wall_ns(),
    }
}

pub(crate) struct DsupActor;

impl DsupActor {
    /// Carries out the core's effects in order; a start reports its outcome before the next.
    async fn apply(&self, myself: &ActorRef<DsupMsg>, st: &mut DState, effects: Vec<SupEffect>) {
        let mut queue: std::collections::VecDeque<SupEffect> = effects.into();
        while let Some(e) = queue.pop_front() {
            match e {
                SupEffect::Broadcast(m) => {
                    for ep in remote_members::<DsupWire>(&st.group) {
                        let _ = ep.cast(DsupWire::Peer(m.clone()));
                    }
                }
                SupEffect::Send(node, m) => {
                    let remote = st.registry.remote();
                    st.outbox.send(remote, &st.group, &node, m, DsupWire::Peer);
                }
                SupEffect::Start { id, spec } => {
                    let outcome = self.start(myself, st, &id, spec).await;
                    queue.extend(st.core.on_started(now(), &id, outcome));
                }
                SupEffect::Stop { id, reason } => Self::stop(st, &id, reason).await,
                SupEffect::Move { id, to } => Self::hand_off(st, &id, &to).await,
                SupEffect::Unregister(id) => {
                    let _ = st.registry.unregister(&id).await;
                }
                SupEffect::Event(ev) => Self::event(st, ev),
                SupEffect::Collected(ids) => {
                    for id in &ids {
                        st.last_exit.remove(id);
                    }
                    st.registry.forget_removed_meta(&ids);
                }
            }
        }
        if st.core.wants_reconcile() && !st.reconcile_pending {
            st.reconcile_pending = true;
            let _ = myself.cast(DsupMsg::Reconcile);
        }
        Self::answer_member_waits(st);
        if !st.drains.is_empty() && st.core.local_children().is_empty() && st.cells.is_empty() {
            for r in st.drains.drain(..) {
                let _ = r.send(());
            }
        }
    }

    fn answer_member_waits(st: &mut DState) {
        if st.member_waits.is_empty() {
            return;
        }
        let eligible = st.core.eligible_members();
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut st.member_waits)
            .into_iter()
            .partition(|(n, r)| eligible.len() >= *n || r.is_closed());
        st.member_waits = waiting;
        for (_, r) in done {
            let _ = r.send(eligible.clone());
        }
    }

    fn event(st: &DState, ev: SupEvent) {
        let sup = st.group.clone();
        match ev {
            SupEvent::Started { id, failover } => {
                tracing::debug!(child = %id, failover, "child running");
                metrics::counter!("dsup_child_starts_total", "supervisor" => sup.clone())
                    .increment(1);
                if failover {
                    metrics::counter!("dsup_failovers_total", "supervisor" => sup).increment(1);
                }
            }
            SupEvent::Restarted { id } => {
                tracing::info!(child = %id, "restarting child locally");
                metrics::counter!("dsup_child_restarts_total", "supervisor" => sup).increment(1);
            }
            SupEvent::Failed { id, reason } => {
                tracing::error!(child = %id, %reason, "child marked failed");
            }
            SupEvent::Dropped { id, node } => {
                tracing::info!(child = %id, %node, "temporary child removed with its node");
                metrics::counter!("dsup_temporary_dropped_total", "supervisor" => sup).increment(1);
            }
        }
    }

    async fn start(
        &self,
        myself: &ActorRef<DsupMsg>,
        st: &mut DState,
        id: &str,
        spec: DistChildSpec,
    ) -> StartOutcome {
        let Some(kind) = st.kinds.get(&spec.kind).cloned() else {
            return StartOutcome::Failed(format!("kind {:?} is not registered here", spec.kind));
        };
        let handoff = st
            .registry
            .take_removed_meta(id)
            .and_then(|m| m.strip_prefix(HANDOFF_MAGIC).map(<[u8]>::to_vec));
        tracing::debug!(child = id, handoff = handoff.is_some(), "starting child");
        let ctx = StartContext {
            id: id.to_owned(),
            args: spec.args,
            handoff,
            supervisor: myself.get_cell(),
            registry: st.registry.clone(),
            fence: st.fence.clone(),
        };
        let cell = match kind.start(ctx).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(child = id, error = %e, "child failed to start");
                return StartOutcome::Failed(e.to_string());
            }
        };
        let meta = st
            .last_exit
            .remove(id)
            .map(|r| [EXIT_MAGIC, r.as_bytes()].concat())
            .unwrap_or_default();
        match st.registry.register(id, cell.clone(), meta).await {
            Ok(()) => {}
            Err(RegistryError::AlreadyRegistered { holder, .. }) => {
                tracing::debug!(child = id, holder = ?holder, "child already runs elsewhere; stopping this copy");
                cell.kill();
                return StartOutcome::Taken;
            }
            Err(e) => {
                tracing::warn!(child = id, error = %e, "cannot register child");
                cell.kill();
                return StartOutcome::Taken;
            }
        }
        st.by_cell.insert(cell.get_id(), id.to_owned());
        st.cells.insert(id.to_owned(), cell);
        StartOutcome::Running
    }

    async fn stop(st: &mut DState, id: &str, reason: &str) {
        if let Some(cell) = st.cells.get(id) {
            cell.stop(Some(reason.to_owned()));
        }
        let _ = st.registry.unregister(id).await;
    }

    /// Hands a child over: its exported state goes into its registry entry's metadata (so it
    /// reaches every node before the entry is removed, in the owner's order), then it stops.
    async fn hand_off(st: &mut DState, id: &str, target: &str) {
        let Some(cell) = st.cells.get(id).cloned() else {
            return;
        };
        let kind = st
            .core
            .table()
            .get(id)
            .and_then(|r| st.kinds.get(&r.spec.kind).cloned());
        if let Some(kind) = kind {
            let exported = kind.export(cell).await;
            tracing::debug!(
                child = id,
                exported = exported.as_ref().map(Vec::len),
                "exported state"
            );
            if let Some(state) = exported {
                let mut meta = HANDOFF_MAGIC.to_vec();
                meta.extend_from_slice(&state);
                if let Err(e) = st.registry.update_meta(id, meta).await {
                    tracing::warn!(child = id, error = %e, "cannot publish the handoff state");
                }
            }
        }
        tracing::debug!(child = id, to = target, "handing child off");
        Self::stop(st, id, "handoff").await;
    }

    async fn child_exit(
        &self,
        myself: &ActorRef<DsupMsg>,
        st: &mut DState,
        cell: ActorCell,
        exit: ExitReason,
    ) {
        let Some(id) = st.by_cell.remove(&cell.get_id()) else {
            return;
        };
        if st.cells.get(&id).map(|c| c.get_id()) != Some(cell.get_id()) {
            return;
        }
        st.cells.remove(&id);
        if let ExitReason::Failed(reason) = &exit {
            st.last_exit.insert(id.clone(), reason.clone());
        }
        let effects = st.core.on_child_exit(now(), &id, exit);
        self.apply(myself, st, effects).await;
    }
}

impl Actor for DsupActor {
    type Msg = DsupMsg;
    type State = DState;
    type Arguments = DState;

    async fn pre_start(
        &self,
        myself: ActorRef<DsupMsg>,
        st: DState,
    ) -> Result<DState, ActorProcessingErr> {
        myself.send_interval(TICK_INTERVAL, || DsupMsg::Tick);
        // Peers' endpoints appearing release what is held for them.
        ractor::pg::monitor_scope(SCOPE.into(), myself.get_cell());
        let mut st = st;
        let me = myself.clone();
        st.summary = Some(st.summaries.register(
            &format!("table:{}", st.group),
            move |peer, theirs| {
                let _ = me.cast(DsupMsg::Summary(peer.to_owned(), theirs));
            },
        ));
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<DsupMsg>,
        msg: DsupMsg,
        st: &mut DState,
    ) -> Result<(), ActorProcessingErr> {
        let now = now();
        let effects = match msg {
            DsupMsg::Put(specs, reply) => match st.core.put(now, specs, rand::random()) {
                Ok(effects) => {
                    self.apply(&myself, st, effects).await;
                    let _ = reply.send(Ok(()));
                    return Ok(());
                }
                Err(r) => {
                    let _ = reply.send(Err(r.into()));
                    return Ok(());
                }
            },
            DsupMsg::StartOrGet(spec, reply) => {
                match st.core.start_or_get(now, spec, rand::random()) {
                    Ok((outcome, effects)) => {
                        self.apply(&myself, st, effects).await;
                        let _ = reply.send(Ok(outcome));
                    }
                    Err(r) => {
                        let _ = reply.send(Err(r.into()));
                    }
                }
                return Ok(());
            }
            DsupMsg::Terminate(id, reply) => match st.core.terminate(now, &id) {
                Ok(effects) => {
                    self.apply(&myself, st, effects).await;
                    let _ = reply.send(Ok(()));
                    return Ok(());
                }
                Err(r) => {
                    let _ = reply.send(Err(r.into()));
                    return Ok(());
                }
            },
            DsupMsg::Table(reply) => {
                let _ = reply.send(st.core.table().rows().cloned().collect());
                return Ok(());
            }
            DsupMsg::Local(reply) => {
                let _ = reply.send(st.core.local_children());
                return Ok(());
            }
            DsupMsg::Status(id, reply) => {
                let _ = reply.send(
                    st.core
                        .table()
                        .get(&id)
                        .map(|r| (r.status.clone(), r.spec.kind.clone())),
                );
                return Ok(());
            }
            DsupMsg::Eligible(reply) => {
                let _ = reply.send(st.core.eligible_members());
                return Ok(());
            }
            DsupMsg::WaitEligible(n, reply) => {
                st.member_waits.push((n, reply));
                Self::answer_member_waits(st);
                return Ok(());
            }
            DsupMsg::Pending(reply) => {
                let _ = reply.send(st.core.pending_decisions(now, &st.registry));
                return Ok(());
            }
            DsupMsg::Drain(reply) => {
                st.drains.push(reply);
                let effects = st.core.drain();
                self.apply(&myself, st, effects).await;
                return Ok(());
            }
            DsupMsg::Wire(DsupWire::Peer(m)) => st.core.on_peer(now, m),
            DsupMsg::Member(MemberEvent::MemberUp(n)) => {
                if let Some(slot) = &st.summary {
                    slot.want(&n.name);
                }
                st.core.on_member_up(now, &n.name)
            }
            DsupMsg::Member(MemberEvent::MemberDown { node, .. })
            | DsupMsg::Member(MemberEvent::MemberLeft(node)) => {
                st.outbox.forget(&node.name);
                st.core.on_member_down(now, &node.name);
                Vec::new()
            }
            DsupMsg::Lost(id, node) => {
                st.core.on_unregistered(&id, &node);
                Vec::new()
            }
            DsupMsg::Reconcile => {
                st.reconcile_pending = false;
                let effects = st.core.reconcile(now, &st.registry);
                let wake = st.core.next_wake();
                if wake != st.wake {
                    st.wake = wake;
                    if let Some(t) = wake {
                        let after = t.saturating_duration_since(now.mono);
                        myself.send_after(after, || DsupMsg::Reconcile);
                    }
                }
                effects
            }
            DsupMsg::Summary(peer, theirs) => st.core.on_table_summary(now, &peer, theirs),
            DsupMsg::Tick => {
                st.outbox
                    .flush(st.registry.remote(), &st.group, DsupWire::Peer);
                let effects = st.core.tick(now, &st.registry);
                let table = st.core.table();
                let sup = st.group.clone();
                metrics::gauge!("dsup_table_rows", "supervisor" => sup.clone())
                    .set(table.len() as f64);
                metrics::gauge!("dsup_table_tombstones", "supervisor" => sup.clone())
                    .set(table.tombstone_count() as f64);
                metrics::counter!("dsup_tombstones_collected_total", "supervisor" => sup)
                    .absolute(st.core.tombstones_collected());
                effects
            }
        };
        self.apply(&myself, st, effects).await;
        st.fence.set(st.core.fence(now));
        let summary = st.core.table_summary();
        if let Some(slot) = &st.summary {
            slot.set(summary);
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<DsupMsg>,
        evt: SupervisionEvent,
        st: &mut DState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                self.child_exit(&myself, st, cell, ExitReason::from_terminated(reason))
                    .await
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                self.child_exit(&myself, st, cell, ExitReason::Failed(err.to_string()))
                    .await
            }
            SupervisionEvent::ProcessGroupChanged(ractor::pg::GroupChangeMessage::Join(
                scope,
                group,
                _,
            )) if scope == SCOPE && group == st.group => {
                st.outbox
                    .flush(st.registry.remote(), &st.group, DsupWire::Peer);
            }
            _ => {}
        }
        Ok(())
    }
}
