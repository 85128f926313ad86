//! The distributed dynamic supervisor (Horde's DynamicSupervisor, better).
//!
//! * Child specs are data ([`DistChildSpec`]: id, kind, serialized args, restart type,
//!   intensity), replicated to every node in a last-writer-wins table. A *kind* is a name
//!   registered on each node with a [`ChildKind`] factory; a node that lacks a kind is not
//!   eligible for it.
//! * [`Placement`] decides where a child runs, as a pure function of (child, live eligible
//!   members): [`Uniform`] rendezvous hashing (default), [`Quorum`], [`RandomPlacement`], or
//!   your own. Every node runs the same reconciliation over its view: it starts the children that
//!   are placed on it and run nowhere, and stops the ones it should not run.
//! * Every child is registered under its id in the supervisor's own [`Registry`], so any node
//!   finds it (`lookup_child`, [`DistributedSupervisor::cast_child`], `call_child`), and two
//!   copies of one id (after a partition, or from views that disagreed for a moment) resolve to
//!   one: the older registration wins, the other is stopped.
//! * A node goes down: its children are no longer registered anywhere, and the survivors start
//!   them where the placement now puts them (after [`Placement::restart_delay`]).
//! * Local restarts follow actor-core's rules per child (restart type and intensity); a child
//!   over its intensity is marked failed (on every node), and its siblings are untouched.
//! * Graceful shutdown ([`DistributedSupervisor::drain`]): children are handed off, their state
//!   exported by [`ChildKind::export`] on the old node and given to the new one at start.
//!   Active redistribution moves children the same way when a node joins.

pub mod core;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core::supervisor::core::{should_restart, ExitReason, RestartWindow};
use actor_core::{LocalMessage, RemoteMessage};
use futures::future::BoxFuture;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, Message, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use tokio::sync::broadcast;

use self::core::{reconcile, Decision, View};
pub use self::core::{
    ChildStatus, ChildTable, DistChildSpec, Placement, Quorum, RandomPlacement, RestartType, Row,
    Stamp, Uniform,
};
use crate::endpoint::{forward_member_events, remote_members, Endpoint};
use crate::membership::MemberEvent;
use crate::registry::{Registry, RegistryError, RegistryEvent, NAME_CONFLICT};
use crate::Node;

/// Errors of the distributed supervisor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistSupervisorError {
    /// No live member knows this kind.
    #[error("no live node can run kind {0:?}")]
    NoEligibleNode(String),
    /// This node does not see a majority of the configured members.
    #[error("quorum not met")]
    QuorumNotMet,
    /// The child did not start (or stop) in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// No child has this id.
    #[error("no child {0:?}")]
    NotFound(String),
    /// The supervisor's actor did not answer.
    #[error("supervisor unavailable: {0}")]
    Unavailable(String),
    /// The outbound queue to the child's node stayed full (see [`crate::remote`]).
    #[error("overloaded: {0}")]
    Overloaded(String),
}

/// How long a member that came up may take to introduce its supervisor before it is taken not to
/// run one (starts wait for it meanwhile).
const PENDING_GRACE: Duration = Duration::from_secs(2);

/// Marks registry metadata that carries a handed-off state.
const HANDOFF_MAGIC: &[u8] = b"\xfa\xceHANDOFF";

/// What a kind's factory gets.
#[derive(Debug)]
pub struct StartContext {
    /// The child's id.
    pub id: String,
    /// Its serialized arguments.
    pub args: Vec<u8>,
    /// The state its previous incarnation exported, on a planned move.
    pub handoff: Option<Vec<u8>>,
    /// The local supervisor actor: link the child to it (`Actor::spawn_linked`).
    pub supervisor: ActorCell,
}

/// A factory for children of one kind, registered on each node that can run them.
pub trait ChildKind: Send + Sync + 'static {
    /// Spawns the child linked to `ctx.supervisor`.
    fn start(&self, ctx: StartContext) -> BoxFuture<'static, Result<ActorCell, SpawnErr>>;

    /// Exports the child's state before a planned move (graceful shutdown, active
    /// redistribution). `None`: the child rebuilds its state when it starts.
    fn export(&self, child: ActorCell) -> BoxFuture<'static, Option<Vec<u8>>> {
        let _ = child;
        Box::pin(async { None })
    }
}

impl<F, Fut> ChildKind for F
where
    F: Fn(StartContext) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
{
    fn start(&self, ctx: StartContext) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> {
        Box::pin(self(ctx))
    }
}

/// A child as `which_children` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistChildInfo {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// The node it runs on, if it runs.
    pub node: Option<String>,
    /// Live or failed.
    pub status: ChildStatus,
}

/// Child counts across the cluster, as this node sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DistChildCount {
    /// Live specs.
    pub specs: usize,
    /// Children running (registered) somewhere.
    pub running: usize,
    /// Children marked failed.
    pub failed: usize,
}

#[derive(RemoteMessage)]
pub(crate) enum DsupWire {
    Rows(Vec<Row>),
    /// A node's kinds; `true` asks the receivers to answer with theirs.
    Hello(String, Vec<String>, bool),
    Digest(String, u64, u64),
    Leaving(String),
}

#[derive(LocalMessage)]
pub(crate) enum DsupMsg {
    Put(
        Vec<DistChildSpec>,
        RpcReplyPort<Result<(), DistSupervisorError>>,
    ),
    Terminate(String, RpcReplyPort<Result<(), DistSupervisorError>>),
    Table(RpcReplyPort<Vec<Row>>),
    Local(RpcReplyPort<Vec<String>>),
    Eligible(RpcReplyPort<Vec<String>>),
    /// How many decisions a reconciliation would take now (0: settled).
    Pending(RpcReplyPort<usize>),
    Drain(RpcReplyPort<()>),
    Wire(DsupWire),
    Member(MemberEvent),
    Registry,
    /// A child's registration went away with the node it ran on (child id, node).
    Lost(String, String),
    Reconcile,
    Tick,
}

struct LocalChild {
    cell: ActorCell,
    window: RestartWindow,
    /// We are stopping it (moved, terminated, drained): its exit is not a failure.
    stopping: bool,
}

struct DState {
    me: String,
    group: String,
    table: ChildTable,
    kinds: Arc<HashMap<String, Arc<dyn ChildKind>>>,
    placement: Arc<dyn Placement>,
    active: bool,
    registry: Registry,
    /// Live members (this node included) and the kinds they run.
    members: HashMap<String, BTreeSet<String>>,
    /// Members up but whose kinds are not known yet, since when.
    pending_members: HashMap<String, Instant>,
    leaving: HashSet<String>,
    running: HashMap<String, LocalChild>,
    by_cell: HashMap<ActorId, String>,
    hold_until: Option<Instant>,
    reconcile_pending: bool,
    ticks: u64,
    last_full: Option<Instant>,
    draining: bool,
    /// Children whose registration went away, and the node they ran on: a start of one whose
    /// node is no longer a member is a failover.
    lost: HashMap<String, String>,
}

struct DsupActor;

impl DsupActor {
    fn endpoints(st: &DState) -> Vec<ActorRef<DsupWire>> {
        remote_members(&st.group)
    }

    fn broadcast(st: &DState, msg: impl Fn() -> DsupWire) {
        for ep in Self::endpoints(st) {
            let _ = ep.cast(msg());
        }
    }

    fn hello(st: &DState, ask: bool) {
        let kinds: Vec<String> = st.kinds.keys().cloned().collect();
        let me = st.me.clone();
        Self::broadcast(st, || DsupWire::Hello(me.clone(), kinds.clone(), ask));
    }

    fn send_full(st: &mut DState) {
        let now = Instant::now();
        if st
            .last_full
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(500))
        {
            return;
        }
        st.last_full = Some(now);
        let rows: Vec<Row> = st.table.rows().cloned().collect();
        for chunk in rows.chunks(2000) {
            let chunk = chunk.to_vec();
            Self::broadcast(st, || DsupWire::Rows(chunk.clone()));
        }
    }

    fn trigger(myself: &ActorRef<DsupMsg>, st: &mut DState) {
        if !st.reconcile_pending {
            st.reconcile_pending = true;
            let _ = myself.cast(DsupMsg::Reconcile);
        }
    }

    fn put_row(st: &mut DState, spec: DistChildSpec, status: ChildStatus) -> Row {
        let stamp = st.table.next_stamp(&st.me);
        let row = Row {
            spec,
            status,
            stamp,
        };
        st.table.merge(row.clone());
        row
    }

    fn located(st: &DState) -> HashMap<String, String> {
        st.registry.owners()
    }

    async fn start_local(&self, myself: &ActorRef<DsupMsg>, st: &mut DState, id: &str) {
        let Some(row) = st.table.get(id).cloned() else {
            return;
        };
        let Some(kind) = st.kinds.get(&row.spec.kind).cloned() else {
            return;
        };
        let handoff = st
            .registry
            .take_removed_meta(id)
            .and_then(|m| m.strip_prefix(HANDOFF_MAGIC).map(<[u8]>::to_vec));
        tracing::debug!(child = id, handoff = handoff.is_some(), "starting child");
        let ctx = StartContext {
            id: id.to_owned(),
            args: row.spec.args.clone(),
            handoff,
            supervisor: myself.get_cell(),
        };
        let cell = match kind.start(ctx).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(child = id, error = %e, "child failed to start");
                self.child_failed(myself, st, id, None, format!("start failed: {e}"));
                return;
            }
        };
        match st.registry.register(id, cell.clone(), Vec::new()).await {
            Ok(()) => {}
            Err(RegistryError::AlreadyRegistered { holder, .. }) => {
                tracing::debug!(child = id, holder = ?holder, "child already runs elsewhere; stopping this copy");
                cell.kill();
                return;
            }
            Err(e) => {
                tracing::warn!(child = id, error = %e, "cannot register child");
                cell.kill();
                return;
            }
        }
        st.by_cell.insert(cell.get_id(), id.to_owned());
        metrics::counter!("dsup_child_starts_total", "supervisor" => st.group.clone()).increment(1);
        if let Some(prev) = st.lost.remove(id) {
            if !st.members.contains_key(&prev) {
                metrics::counter!("dsup_failovers_total", "supervisor" => st.group.clone())
                    .increment(1);
            }
        }
        let window = st
            .running
            .remove(id)
            .map(|l| l.window)
            .unwrap_or_else(|| RestartWindow::new(row.spec.intensity_value()));
        st.running.insert(
            id.to_owned(),
            LocalChild {
                cell,
                window,
                stopping: false,
            },
        );
    }

    /// A restart was needed and failed or exceeded the intensity: the child is marked failed.
    fn child_failed(
        &self,
        myself: &ActorRef<DsupMsg>,
        st: &mut DState,
        id: &str,
        _cell: Option<ActorCell>,
        reason: String,
    ) {
        let Some(row) = st.table.get(id).cloned() else {
            return;
        };
        tracing::error!(child = id, %reason, "child marked failed");
        st.running.remove(id);
        let row = Self::put_row(
            st,
            row.spec,
            ChildStatus::Failed {
                node: st.me.clone(),
                reason,
            },
        );
        Self::broadcast(st, || DsupWire::Rows(vec![row.clone()]));
        Self::trigger(myself, st);
    }

    async fn stop_local(st: &mut DState, id: &str, reason: &str) {
        if let Some(local) = st.running.get_mut(id) {
            local.stopping = true;
            local.cell.stop(Some(reason.to_owned()));
        }
        let _ = st.registry.unregister(id).await;
    }

    /// Hands a child over: its exported state goes into its registry entry's metadata (so it
    /// reaches every node before the entry is removed, in the owner's order), then it stops.
    async fn move_local(st: &mut DState, id: &str, target: &str) {
        let Some(local) = st.running.get(id) else {
            return;
        };
        let cell = local.cell.clone();
        let kind = st
            .table
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
        Self::stop_local(st, id, "handoff").await;
    }

    /// Whether some peer's registrations are not known yet: until they are, this node cannot
    /// tell which children already run there, and starts nothing.
    fn unsynced(st: &DState) -> bool {
        let now = Instant::now();
        st.members.keys().any(|n| !st.registry.is_synced_with(n))
            || st
                .pending_members
                .values()
                .any(|since| now.duration_since(*since) < PENDING_GRACE)
    }

    /// What a reconciliation would decide now.
    fn decide(st: &DState) -> Vec<Decision> {
        let located = Self::located(st);
        let running: BTreeSet<String> = st
            .running
            .iter()
            .filter(|(_, l)| !l.stopping)
            .map(|(id, _)| id.clone())
            .collect();
        let mut members = st.members.clone();
        for l in &st.leaving {
            members.remove(l);
        }
        if st.draining {
            members.remove(&st.me);
        }
        let now = Instant::now();
        let holding = st.hold_until.is_some_and(|t| now < t) || Self::unsynced(st);
        let held: BTreeSet<String> = if holding {
            st.table.live().map(|r| r.spec.id.clone()).collect()
        } else {
            BTreeSet::new()
        };
        let view = View {
            me: &st.me,
            members: &members,
            located: &located,
            running: &running,
            held: &held,
            active: st.active && !st.draining,
        };
        reconcile(&st.table, st.placement.as_ref(), &view)
    }

    async fn do_reconcile(&self, myself: &ActorRef<DsupMsg>, st: &mut DState) {
        st.reconcile_pending = false;
        let now = Instant::now();
        let holding = st.hold_until.is_some_and(|t| now < t);
        for d in Self::decide(st) {
            match d {
                Decision::Start(id) if !st.draining => self.start_local(myself, st, &id).await,
                Decision::Start(_) => {}
                Decision::Stop(id) => Self::stop_local(st, &id, "not placed here").await,
                Decision::Move(id, target) => {
                    // Move only to a node that is up and knows the kind (it is in `members`).
                    Self::move_local(st, &id, &target).await;
                }
            }
        }
        if holding {
            if let Some(t) = st.hold_until {
                myself.send_after(t.saturating_duration_since(now), || DsupMsg::Reconcile);
            }
        }
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
        let Some(local) = st.running.get(&id) else {
            return;
        };
        if local.cell.get_id() != cell.get_id() {
            return;
        }
        if local.stopping {
            st.running.remove(&id);
            Self::trigger(myself, st);
            return;
        }
        if matches!(&exit, ExitReason::Normal(Some(r)) if r == NAME_CONFLICT) {
            tracing::info!(child = %id, "child lost a name conflict; it runs elsewhere");
            st.running.remove(&id);
            return;
        }
        let Some(row) = st.table.get(&id).cloned() else {
            st.running.remove(&id);
            return;
        };
        let _ = st.registry.unregister(&id).await;
        if !should_restart(row.spec.restart.into(), &exit) {
            st.running.remove(&id);
            let row = Self::put_row(st, row.spec, ChildStatus::Removed);
            Self::broadcast(st, || DsupWire::Rows(vec![row.clone()]));
            return;
        }
        let allowed = st
            .running
            .get_mut(&id)
            .map(|l| l.window.record(Instant::now()))
            .unwrap_or(false);
        if !allowed {
            let reason = match exit {
                ExitReason::Failed(e) => e,
                other => format!("{other:?}"),
            };
            self.child_failed(
                myself,
                st,
                &id,
                Some(cell),
                format!("over its intensity; last exit: {reason}"),
            );
            return;
        }
        tracing::info!(child = %id, ?exit, "restarting child locally");
        metrics::counter!("dsup_child_restarts_total", "supervisor" => st.group.clone())
            .increment(1);
        self.start_local(myself, st, &id).await;
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
        myself.send_interval(Duration::from_millis(500), || DsupMsg::Tick);
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<DsupMsg>,
        msg: DsupMsg,
        st: &mut DState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DsupMsg::Put(specs, reply) => {
                let live: Vec<String> = st.members.keys().cloned().collect();
                if !st.placement.has_quorum(&live) {
                    let _ = reply.send(Err(DistSupervisorError::QuorumNotMet));
                    return Ok(());
                }
                let mut rows = Vec::new();
                for mut spec in specs {
                    if st
                        .table
                        .get(&spec.id)
                        .is_some_and(|r| r.status == ChildStatus::Live)
                    {
                        continue;
                    }
                    let cands = core::candidates(&st.members, &spec.kind);
                    if cands.is_empty() {
                        let _ = reply.send(Err(DistSupervisorError::NoEligibleNode(spec.kind)));
                        return Ok(());
                    }
                    if st.placement.is_random() {
                        let i = rand::random_range(0..cands.len());
                        spec.pinned = cands.get(i).cloned();
                    }
                    rows.push(Self::put_row(st, spec, ChildStatus::Live));
                }
                for chunk in rows.chunks(2000) {
                    let chunk = chunk.to_vec();
                    Self::broadcast(st, || DsupWire::Rows(chunk.clone()));
                }
                Self::trigger(&myself, st);
                let _ = reply.send(Ok(()));
            }
            DsupMsg::Terminate(id, reply) => {
                let result = match st.table.get(&id).cloned() {
                    Some(row) if row.status != ChildStatus::Removed => {
                        let row = Self::put_row(st, row.spec, ChildStatus::Removed);
                        Self::broadcast(st, || DsupWire::Rows(vec![row.clone()]));
                        Self::trigger(&myself, st);
                        Ok(())
                    }
                    _ => Err(DistSupervisorError::NotFound(id)),
                };
                let _ = reply.send(result);
            }
            DsupMsg::Table(reply) => {
                let _ = reply.send(st.table.rows().cloned().collect());
            }
            DsupMsg::Local(reply) => {
                let mut ids: Vec<String> = st
                    .running
                    .iter()
                    .filter(|(_, l)| !l.stopping)
                    .map(|(k, _)| k.clone())
                    .collect();
                ids.sort();
                let _ = reply.send(ids);
            }
            DsupMsg::Eligible(reply) => {
                let mut names: Vec<String> = st
                    .members
                    .keys()
                    .filter(|n| !st.leaving.contains(*n))
                    .cloned()
                    .collect();
                names.sort();
                let _ = reply.send(names);
            }
            DsupMsg::Drain(reply) => {
                st.draining = true;
                let me = st.me.clone();
                Self::broadcast(st, || DsupWire::Leaving(me.clone()));
                let mut members = st.members.clone();
                members.remove(&st.me);
                for l in &st.leaving {
                    members.remove(l);
                }
                let ids: Vec<String> = st.running.keys().cloned().collect();
                for id in ids {
                    let target = st.table.get(&id).and_then(|r| {
                        let cands = core::candidates(&members, &r.spec.kind);
                        st.placement.place(&r.spec, &cands)
                    });
                    match target {
                        Some(t) => Self::move_local(st, &id, &t).await,
                        None => Self::stop_local(st, &id, "drained").await,
                    }
                }
                let _ = reply.send(());
            }
            DsupMsg::Wire(DsupWire::Rows(rows)) => {
                let mut changed = false;
                for r in rows {
                    changed |= st.table.merge(r);
                }
                if changed {
                    Self::trigger(&myself, st);
                }
            }
            DsupMsg::Wire(DsupWire::Hello(node, kinds, ask)) => {
                if ask {
                    Self::hello(st, false);
                }
                st.pending_members.remove(&node);
                st.members.insert(node, kinds.into_iter().collect());
                Self::trigger(&myself, st);
            }
            DsupMsg::Wire(DsupWire::Digest(node, count, max)) => {
                if !st.members.contains_key(&node) && !st.leaving.contains(&node) {
                    // A peer whose kinds we do not know: hello until it answers with its own.
                    st.pending_members.entry(node).or_insert_with(Instant::now);
                    Self::hello(st, true);
                }
                let (c, m) = st.table.digest();
                if (c as u64, m) != (count, max) {
                    Self::send_full(st);
                }
            }
            DsupMsg::Pending(reply) => {
                let holding =
                    st.hold_until.is_some_and(|t| Instant::now() < t) || Self::unsynced(st);
                let _ = reply.send(Self::decide(st).len() + usize::from(holding));
            }
            DsupMsg::Wire(DsupWire::Leaving(node)) => {
                st.leaving.insert(node);
                Self::trigger(&myself, st);
            }
            DsupMsg::Member(MemberEvent::MemberUp(n)) => {
                st.leaving.remove(&n.name);
                st.members.remove(&n.name);
                st.pending_members.insert(n.name, Instant::now());
                Self::hello(st, true);
                st.last_full = None;
                Self::send_full(st);
            }
            DsupMsg::Member(MemberEvent::MemberDown { node, .. })
            | DsupMsg::Member(MemberEvent::MemberLeft(node)) => {
                st.members.remove(&node.name);
                st.pending_members.remove(&node.name);
                st.leaving.remove(&node.name);
                let delay = st.placement.restart_delay();
                if !delay.is_zero() {
                    st.hold_until = Some(Instant::now() + delay);
                }
                Self::trigger(&myself, st);
            }
            DsupMsg::Registry => Self::trigger(&myself, st),
            DsupMsg::Lost(id, node) => {
                if node != st.me {
                    if st.lost.len() >= 100_000 {
                        st.lost.clear();
                    }
                    st.lost.insert(id, node);
                }
            }
            DsupMsg::Reconcile => self.do_reconcile(&myself, st).await,
            DsupMsg::Tick => {
                let (c, m) = st.table.digest();
                let me = st.me.clone();
                Self::broadcast(st, || DsupWire::Digest(me.clone(), c as u64, m));
                if !st.pending_members.is_empty() {
                    Self::hello(st, true);
                }
                // Changes trigger reconciliation themselves; the timer is a safety net (and
                // ends holds), so a full pass runs every few ticks, or while holding.
                st.ticks += 1;
                let holding = st.hold_until.is_some() || Self::unsynced(st);
                if holding || st.ticks % 5 == 0 {
                    if st.hold_until.is_some_and(|t| Instant::now() >= t) {
                        st.hold_until = None;
                    }
                    Self::trigger(&myself, st);
                }
            }
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
            _ => {}
        }
        Ok(())
    }
}

/// Builds a [`DistributedSupervisor`].
pub struct DistributedSupervisorBuilder {
    name: String,
    kinds: HashMap<String, Arc<dyn ChildKind>>,
    placement: Arc<dyn Placement>,
    active: bool,
}

impl std::fmt::Debug for DistributedSupervisorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedSupervisorBuilder")
            .field("name", &self.name)
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl DistributedSupervisorBuilder {
    /// Registers a kind of child this node can run.
    pub fn kind(mut self, name: impl Into<String>, kind: impl ChildKind) -> Self {
        self.kinds.insert(name.into(), Arc::new(kind));
        self
    }

    /// Sets the placement (default [`Uniform`]).
    pub fn placement(mut self, p: impl Placement) -> Self {
        self.placement = Arc::new(p);
        self
    }

    /// Active redistribution: when a node joins, children whose placement moves to it are
    /// handed off (default: passive, children stay where they run).
    pub fn active_redistribution(mut self, on: bool) -> Self {
        self.active = on;
        self
    }

    /// Starts this node's part of the supervisor.
    pub async fn start(self, node: &Node) -> Result<DistributedSupervisor, crate::ClusterError> {
        let registry = Registry::start(node, &format!("dsup:{}", self.name)).await?;
        let me = node.identity().name.clone();
        let kinds = Arc::new(self.kinds);
        let mut members = HashMap::new();
        members.insert(
            me.clone(),
            kinds.keys().cloned().collect::<BTreeSet<String>>(),
        );
        let mut pending_members = HashMap::new();
        for m in node.members().await.unwrap_or_default() {
            if matches!(
                m.state,
                crate::MemberState::Up | crate::MemberState::Suspect
            ) {
                pending_members.insert(m.node.name, Instant::now());
            }
        }
        let group = format!("dsup:{}", self.name);
        let st = DState {
            me,
            group: group.clone(),
            table: ChildTable::default(),
            kinds,
            placement: self.placement,
            active: self.active,
            registry: registry.clone(),
            members,
            pending_members,
            leaving: HashSet::new(),
            running: HashMap::new(),
            by_cell: HashMap::new(),
            hold_until: None,
            reconcile_pending: false,
            ticks: 0,
            last_full: None,
            draining: false,
            lost: HashMap::new(),
        };
        let err = |e: SpawnErr| crate::ClusterError::NodeServer(e.to_string());
        let (actor, _) = Actor::spawn(None, DsupActor, st).await.map_err(err)?;
        let (endpoint, _) =
            Actor::spawn(None, Endpoint::new(DsupMsg::Wire), (group, actor.clone()))
                .await
                .map_err(err)?;
        forward_member_events(node, actor.clone(), DsupMsg::Member);
        let mut reg_events = registry.subscribe();
        let fwd = actor.clone();
        tokio::spawn(async move {
            loop {
                match reg_events.recv().await {
                    Ok(RegistryEvent::Unregistered { name, owner }) => {
                        if fwd.cast(DsupMsg::Lost(name, owner.node)).is_err()
                            || fwd.cast(DsupMsg::Registry).is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if fwd.cast(DsupMsg::Registry).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        let _ = actor.cast(DsupMsg::Tick);
        Ok(DistributedSupervisor {
            inner: Arc::new(Inner {
                actor,
                endpoint,
                registry,
            }),
        })
    }
}

struct Inner {
    actor: ActorRef<DsupMsg>,
    endpoint: ActorRef<DsupWire>,
    registry: Registry,
}

/// This node's handle to a named distributed supervisor.
#[derive(Clone)]
pub struct DistributedSupervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DistributedSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedSupervisor")
            .finish_non_exhaustive()
    }
}

const CALL: Option<Duration> = Some(Duration::from_secs(30));

fn unavailable(e: impl std::fmt::Debug) -> DistSupervisorError {
    DistSupervisorError::Unavailable(format!("{e:?}"))
}

impl DistributedSupervisor {
    /// A builder for the supervisor `name` (the same name on every node).
    pub fn builder(name: impl Into<String>) -> DistributedSupervisorBuilder {
        DistributedSupervisorBuilder {
            name: name.into(),
            kinds: HashMap::new(),
            placement: Arc::new(Uniform),
            active: false,
        }
    }

    async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(RpcReplyPort<T>) -> DsupMsg,
    ) -> Result<T, DistSupervisorError> {
        match self.inner.actor.call(f, CALL).await {
            Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
            Ok(ractor::rpc::CallResult::Timeout) => Err(unavailable("timeout")),
            Ok(ractor::rpc::CallResult::SenderError) => Err(unavailable("no reply")),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Adds children to the cluster without waiting for them to run. Idempotent by id: a live
    /// id is left as it is.
    pub async fn start_children(
        &self,
        specs: Vec<DistChildSpec>,
    ) -> Result<(), DistSupervisorError> {
        self.ask(|r| DsupMsg::Put(specs, r)).await?
    }

    /// Starts a child somewhere in the cluster (idempotent by id) and returns the node it runs
    /// on, once it runs (waiting at most `timeout`).
    pub async fn start_child(
        &self,
        spec: DistChildSpec,
        timeout: Duration,
    ) -> Result<String, DistSupervisorError> {
        let id = spec.id.clone();
        self.start_children(vec![spec]).await?;
        self.wait_running(&id, timeout).await
    }

    /// Waits until the child runs somewhere; returns its node.
    pub async fn wait_running(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<String, DistSupervisorError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.inner.registry.entry(id) {
                return Ok(e.owner.node);
            }
            if Instant::now() >= deadline {
                return Err(DistSupervisorError::Timeout(format!(
                    "child {id:?} is not running"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Terminates a child wherever it runs and forgets it.
    pub async fn terminate_child(&self, id: &str) -> Result<(), DistSupervisorError> {
        let id2 = id.to_owned();
        self.ask(|r| DsupMsg::Terminate(id2, r)).await??;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.inner.registry.entry(id).is_some() {
            if Instant::now() >= deadline {
                return Err(DistSupervisorError::Timeout(format!(
                    "child {id:?} still runs"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Every child, with the node it runs on (this node's view of the cluster).
    pub async fn which_children(&self) -> Result<Vec<DistChildInfo>, DistSupervisorError> {
        let rows = self.ask(DsupMsg::Table).await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.status != ChildStatus::Removed)
            .map(|r| DistChildInfo {
                node: self.inner.registry.entry(&r.spec.id).map(|e| e.owner.node),
                id: r.spec.id,
                kind: r.spec.kind,
                status: r.status,
            })
            .collect())
    }

    /// Child counts.
    pub async fn count_children(&self) -> Result<DistChildCount, DistSupervisorError> {
        let all = self.which_children().await?;
        Ok(DistChildCount {
            specs: all.iter().filter(|c| c.status == ChildStatus::Live).count(),
            running: all.iter().filter(|c| c.node.is_some()).count(),
            failed: all
                .iter()
                .filter(|c| matches!(c.status, ChildStatus::Failed { .. }))
                .count(),
        })
    }

    /// The children running on this node.
    pub async fn local_children(&self) -> Result<Vec<String>, DistSupervisorError> {
        self.ask(DsupMsg::Local).await
    }

    /// The members (this node included) that can run children: up, not leaving, and whose kinds
    /// this node has learned.
    pub async fn eligible_members(&self) -> Result<Vec<String>, DistSupervisorError> {
        self.ask(DsupMsg::Eligible).await
    }

    /// How many starts, stops and moves this node would make now (0 once settled).
    pub async fn pending_decisions(&self) -> Result<usize, DistSupervisorError> {
        self.ask(DsupMsg::Pending).await
    }

    /// The actor of a child (a local read).
    pub fn lookup_child(&self, id: &str) -> Option<ActorCell> {
        self.inner.registry.lookup(id)
    }

    /// Sends a cast to a child by id, retrying (every millisecond, up to `timeout`) while it is
    /// not reachable, e.g. while it moves. A remote child is sent to through
    /// [`crate::remote::cast`]: while the outbound queue to its node is full this waits for
    /// room (backpressure), and fails with [`DistSupervisorError::Overloaded`] if none came
    /// within `timeout`.
    pub async fn cast_child<M: Message>(
        &self,
        id: &str,
        timeout: Duration,
        mut msg: impl FnMut() -> M,
    ) -> Result<(), DistSupervisorError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.inner.registry.lookup_typed::<M>(id) {
                let left = deadline.saturating_duration_since(Instant::now());
                match crate::remote::cast(&r, msg(), left).await {
                    Ok(()) => return Ok(()),
                    Err(e @ crate::remote::SendError::Overloaded { .. }) => {
                        return Err(DistSupervisorError::Overloaded(format!(
                            "child {id:?}: {e}"
                        )))
                    }
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(DistSupervisorError::Timeout(format!(
                    "child {id:?} unreachable"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Calls a child by id, retrying while it is unreachable or the call fails, up to `timeout`.
    /// A call that finds the outbound queue to the child's node full fails at once with
    /// [`DistSupervisorError::Overloaded`] (see [`crate::remote::call`]).
    pub async fn call_child<M: Message, R: Send + 'static>(
        &self,
        id: &str,
        timeout: Duration,
        mut msg: impl FnMut(RpcReplyPort<R>) -> M,
    ) -> Result<R, DistSupervisorError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.inner.registry.lookup_typed::<M>(id) {
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1));
                match crate::remote::call(&r, &mut msg, left).await {
                    Ok(v) => return Ok(v),
                    Err(e @ crate::remote::SendError::Overloaded { .. }) => {
                        return Err(DistSupervisorError::Overloaded(format!(
                            "child {id:?}: {e}"
                        )))
                    }
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(DistSupervisorError::Timeout(format!(
                    "child {id:?} did not answer"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Graceful shutdown of this node's part: tells the others it leaves, hands each local child
    /// to its new node (with its exported state) and stops it. Call before `Node::leave`.
    pub async fn drain(&self) -> Result<(), DistSupervisorError> {
        self.ask(DsupMsg::Drain).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.local_children().await?.is_empty() {
            if Instant::now() >= deadline {
                return Err(DistSupervisorError::Timeout(
                    "children still running".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The handed-off states and the unregistrations must reach every node before this node
        // closes its connections.
        self.inner.registry.flush(Duration::from_secs(5)).await;
        Ok(())
    }

    /// The supervisor's registry (children registered under their ids).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Stops this node's part of the supervisor and its local children (they are restarted
    /// elsewhere only once this node is seen down or gone).
    pub fn stop(&self) {
        self.inner.endpoint.stop(None);
        self.inner.actor.stop(None);
        self.inner.registry.stop();
    }
}
