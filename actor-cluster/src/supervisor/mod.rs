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
//! * A node that joins starts nothing until it has met the members its peers know and synced
//!   their registrations, so it cannot mistake a child running elsewhere for a missing one.
//!
//! Every decision above is made by the sans-IO [`SupervisorCore`] (from `actor-cluster-proto`,
//! where the simulator drives it under seeded faults); this module is its shell.

mod actor;
mod builder;
mod calls;
mod entity;
mod error;
mod fence;
mod host;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use actor_cluster_proto::supervisor::{
    ChildStatus, ChildTable, DistChildSpec, Placement, PutOutcome, Quorum, RandomPlacement,
    RestartType, Row, SupervisorCore, Uniform,
};

pub use self::builder::DistributedSupervisorBuilder;
pub use self::entity::{entity_spec, Entity, EntityContext, EntityRef, Started};
pub use self::error::DistSupervisorError;
pub use self::fence::{LeaseFence, FENCED};
pub use self::host::Envelope;
use actor_cluster_proto::wire::supervisor_group;
use actor_cluster_proto::Now;
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort, SpawnErr};
use tokio::sync::broadcast;

pub(crate) use self::actor::DsupWire;
use self::actor::{DState, DsupActor, DsupMsg};
use crate::endpoint::{forward_member_events, Endpoint};
use crate::registry::{Registry, RegistryEvent};
use crate::Node;

/// Marks registry metadata that carries a handed-off state.
pub(crate) const HANDOFF_MAGIC: &[u8] = b"\xfa\xceHANDOFF";
/// Marks registry metadata that carries why the child's previous incarnation on this node
/// failed (a local restart): a caller whose call it was handling learns the reason from it.
pub(crate) const EXIT_MAGIC: &[u8] = b"\xfa\xceEXIT";

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
    /// The supervisor's registry (a typed entity publishes its handoff state there).
    pub(crate) registry: Registry,
    /// Whether this node may act for its children now (quorum placement: while it holds its
    /// lease). Typed entities are fenced by their host; a custom kind checks
    /// [`LeaseFence::is_open`] before acting on anything outside its process.
    pub fence: LeaseFence,
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
    /// Terminated children whose tombstones this node still keeps (until every member has
    /// seen them; see the runtime-semantics chapter).
    pub tombstones: usize,
    /// Rows of this node's replica of the child table, tombstones included.
    pub rows: usize,
}

pub(crate) struct Inner {
    actor: ActorRef<DsupMsg>,
    endpoint: ActorRef<DsupWire>,
    registry: Registry,
    remote: crate::Remote,
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
/// How long a drain waits for the local children to be handed off.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits for a registry event that `wanted` accepts (or lost events: look again); `false` at
/// the deadline.
async fn wait_event(
    events: &mut broadcast::Receiver<RegistryEvent>,
    deadline: tokio::time::Instant,
    wanted: impl Fn(&RegistryEvent) -> bool,
) -> bool {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(ev) if wanted(&ev) => return true,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return true,
                Err(broadcast::error::RecvError::Closed) => return false,
            }
        }
    };
    tokio::time::timeout_at(deadline, wait)
        .await
        .unwrap_or(false)
}

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
            min_members: 1,
        }
    }

    /// A typed reference to entity `id` of kind `E` (no I/O; the entity need not exist yet).
    pub fn entity<E: Entity>(&self, id: impl Into<String>) -> EntityRef<E> {
        EntityRef::new(self.clone(), id.into())
    }

    /// Starts entity `id` of kind `E` with `args` unless a live child has that id (start-or-get),
    /// and waits (at most `timeout`) until it runs.
    pub async fn start_entity<E: Entity>(
        &self,
        id: &str,
        args: &E::Args,
        timeout: Duration,
    ) -> Result<Started, DistSupervisorError> {
        let outcome = self.start_or_get(entity_spec::<E>(id, args)?).await?;
        let node = self.wait_running(id, timeout).await?;
        Ok(Started { node, outcome })
    }

    /// Adds a child unless a live child has its id, without waiting for it to run; says
    /// whether it was already there, and with other arguments (Horde's `already_started`).
    pub async fn start_or_get(
        &self,
        spec: DistChildSpec,
    ) -> Result<PutOutcome, DistSupervisorError> {
        self.ask(|r| DsupMsg::StartOrGet(spec, r)).await?
    }

    /// A child's status and kind in the replicated table (`None`: no such id).
    pub(crate) async fn status(
        &self,
        id: &str,
    ) -> Result<Option<(ChildStatus, String)>, DistSupervisorError> {
        self.ask(|r| DsupMsg::Status(id.to_owned(), r)).await
    }

    pub(crate) fn remote(&self) -> &crate::Remote {
        &self.inner.remote
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

    /// Waits until the child runs somewhere; returns its node. Woken by registry events; a
    /// child that fails meanwhile is [`DistSupervisorError::Failed`] at once.
    pub async fn wait_running(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<String, DistSupervisorError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.inner.registry.subscribe();
        loop {
            if let Some(e) = self.inner.registry.entry(id) {
                return Ok(e.owner.node);
            }
            match self.status(id).await? {
                Some((ChildStatus::Failed { node, reason }, _)) => {
                    return Err(DistSupervisorError::Failed {
                        id: id.to_owned(),
                        node,
                        reason,
                    })
                }
                None | Some((ChildStatus::Removed, _)) => {
                    return Err(DistSupervisorError::NotFound(id.to_owned()))
                }
                Some((ChildStatus::Live, _)) => {}
            }
            if !wait_event(
                &mut events,
                deadline,
                |ev| matches!(ev, RegistryEvent::Registered { name, .. } if name == id),
            )
            .await
            {
                return Err(DistSupervisorError::Timeout(format!(
                    "child {id:?} is not running after {timeout:?}"
                )));
            }
        }
    }

    /// Terminates a child wherever it runs and forgets it; returns once this node sees it
    /// stopped (woken by registry events, at most 5 s).
    pub async fn terminate_child(&self, id: &str) -> Result<(), DistSupervisorError> {
        let mut events = self.inner.registry.subscribe();
        let id2 = id.to_owned();
        self.ask(|r| DsupMsg::Terminate(id2, r)).await??;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.inner.registry.entry(id).is_some() {
            if !wait_event(
                &mut events,
                deadline,
                |ev| matches!(ev, RegistryEvent::Unregistered { name, .. } if name == id),
            )
            .await
            {
                return Err(DistSupervisorError::Timeout(format!(
                    "child {id:?} still runs"
                )));
            }
        }
        Ok(())
    }

    /// Every child, with the node it runs on (this node's view of the cluster).
    pub async fn which_children(&self) -> Result<Vec<DistChildInfo>, DistSupervisorError> {
        let rows = self.ask(DsupMsg::Table).await?;
        Ok(self.infos(rows))
    }

    fn infos(&self, rows: Vec<Row>) -> Vec<DistChildInfo> {
        rows.into_iter()
            .filter(|r| r.status != ChildStatus::Removed)
            .map(|r| DistChildInfo {
                node: self.inner.registry.entry(&r.spec.id).map(|e| e.owner.node),
                id: r.spec.id,
                kind: r.spec.kind,
                status: r.status,
            })
            .collect()
    }

    /// Child counts, and the size of this node's replica of the table.
    pub async fn count_children(&self) -> Result<DistChildCount, DistSupervisorError> {
        let rows = self.ask(DsupMsg::Table).await?;
        let total = rows.len();
        let all = self.infos(rows);
        Ok(DistChildCount {
            specs: all.iter().filter(|c| c.status == ChildStatus::Live).count(),
            running: all.iter().filter(|c| c.node.is_some()).count(),
            failed: all
                .iter()
                .filter(|c| matches!(c.status, ChildStatus::Failed { .. }))
                .count(),
            tombstones: total - all.len(),
            rows: total,
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

    /// Waits until at least `n` members (this node included) can run children, i.e. their
    /// supervisors have met this one; returns them. Woken by the supervisor's own member
    /// events; [`DistSupervisorError::Timeout`] names the members eligible at the deadline.
    pub async fn wait_for_members(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<String>, DistSupervisorError> {
        match self
            .inner
            .actor
            .call(|r| DsupMsg::WaitEligible(n, r), Some(timeout))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(members)) => Ok(members),
            Ok(ractor::rpc::CallResult::Timeout) => {
                let now = self.eligible_members().await.unwrap_or_default();
                Err(DistSupervisorError::Timeout(format!(
                    "{} of {n} members eligible after {timeout:?}: {now:?}",
                    now.len()
                )))
            }
            Ok(ractor::rpc::CallResult::SenderError) => Err(unavailable("no reply")),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// How many starts, stops and moves this node would make now (0 once settled).
    pub async fn pending_decisions(&self) -> Result<usize, DistSupervisorError> {
        self.ask(DsupMsg::Pending).await
    }

    /// The actor of a child (a local read).
    pub fn lookup_child(&self, id: &str) -> Option<ActorCell> {
        self.inner.registry.lookup(id)
    }

    /// Graceful shutdown of this node's part: tells the others it leaves, hands each local child
    /// to its new node (with its exported state) and stops it. Call before `Node::leave`.
    pub async fn drain(&self) -> Result<(), DistSupervisorError> {
        // Answered once the last local child stopped.
        match self
            .inner
            .actor
            .call(DsupMsg::Drain, Some(DRAIN_TIMEOUT))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(())) => {}
            Ok(ractor::rpc::CallResult::Timeout) => {
                return Err(DistSupervisorError::Timeout(format!(
                    "children still running after {DRAIN_TIMEOUT:?}"
                )))
            }
            Ok(ractor::rpc::CallResult::SenderError) => return Err(unavailable("no reply")),
            Err(e) => return Err(unavailable(e)),
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
