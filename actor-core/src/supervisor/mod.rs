//! OTP-style supervision trees on ractor.
//!
//! ractor links a child to its parent and reports `SupervisionEvent`s, but leaves restarting to
//! the implementor. This module is that implementor:
//!
//! * [`Supervisor`]: a static, ordered list of children ([`ChildSpec`]) started in order, with a
//!   [`Strategy`] (`OneForOne`, `OneForAll`, `RestForOne`), per-child [`Restart`] types
//!   (`Permanent`, `Transient`, `Temporary`), restart [`Intensity`] (OTP's default: more than 3
//!   restarts in 5 s makes the supervisor stop its children and fail, which its own parent sees)
//!   and optional [`Backoff`] between restarts.
//! * [`DynamicSupervisor`]: children added and removed at run time (`start_child`,
//!   `terminate_child`, `which_children`, `count_children`, `max_children`), one-for-one.
//!
//! Shutdown runs in reverse start order; each child gets its [`Shutdown`] time to stop, then it
//! is killed. Supervisors nest: [`ChildSpec::supervisor`] makes a supervisor the child of another.
//! The exact semantics are in the book's `runtime-semantics.md`.
//!
//! ```no_run
//! use actor_core::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorSpec};
//! # use actor_core::ractor::{Actor, ActorRef, ActorProcessingErr};
//! # #[derive(Clone)] struct Worker;
//! # #[derive(actor_core::LocalMessage)] enum WorkerMsg { Ping }
//! # impl Actor for Worker { type Msg = WorkerMsg; type State = (); type Arguments = u32;
//! #   async fn pre_start(&self, _: ActorRef<WorkerMsg>, _: u32) -> Result<(), ActorProcessingErr> { Ok(()) } }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = SupervisorSpec::new(Strategy::OneForOne)
//!     .child(ChildSpec::actor("cache", Some("cache".into()), Worker, 1))
//!     .child(ChildSpec::actor("api", None, Worker, 2));
//! let (sup, _handle) = Supervisor::spawn(Some("root".into()), spec).await?;
//! assert_eq!(sup.which_children().await?.len(), 2);
//! # Ok(()) }
//! ```

mod actor;
/// The pure restart rules (from `actor-core-base`), which the actors below carry out.
pub use actor_core_base::supervision as core;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort, SpawnErr};
use tokio::task::JoinHandle;

pub use self::core::{Backoff, ExitReason, Intensity, Restart, Strategy};
use actor::SupervisorActor;

/// How long a supervisor waits for a killed child to be gone.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(5);

/// Errors of supervisors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// A child failed to start; the text is the child's own error.
    #[error("child {id:?} failed to start: {reason}")]
    StartFailed {
        /// The child's id.
        id: String,
        /// The child's start error.
        reason: String,
    },
    /// More restarts than the intensity allows: the supervisor stopped its children and failed.
    #[error("supervisor gave up: more than {max_restarts} restarts within {period:?} (last: child {child:?})")]
    MaxRestartsExceeded {
        /// The intensity's restart budget.
        max_restarts: u32,
        /// The intensity's window.
        period: Duration,
        /// The child whose exit exceeded the budget.
        child: String,
    },
    /// The dynamic supervisor already runs its `max_children`.
    #[error("the supervisor already has its maximum of {0} children")]
    MaxChildren(usize),
    /// A child with this id already exists.
    #[error("a child with id {id:?} already exists")]
    AlreadyStarted {
        /// The id asked for.
        id: String,
    },
    /// No child has this id.
    #[error("no child with id {id:?}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The supervisor could not be reached (it has stopped) or did not answer in time.
    #[error("supervisor unavailable: {0}")]
    Unavailable(String),
}

/// How a child is stopped when its supervisor stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Killed at once (`Signal::Kill`); its `post_stop` does not run.
    Brutal,
    /// Asked to stop, then killed if it has not stopped within the timeout.
    Timeout(Duration),
    /// Asked to stop, and waited for without limit (the default for supervisors, so a subtree
    /// shuts down completely).
    Infinity,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::Timeout(Duration::from_secs(5))
    }
}

/// Whether a child is a worker or a supervisor (as OTP's `count_children` reports them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChildKind {
    /// An ordinary actor.
    #[default]
    Worker,
    /// A supervisor.
    Supervisor,
}

/// Starts (and restarts) a child, linked to the supervisor passed in.
///
/// Implemented for every `Fn(ActorCell) -> impl Future<Output = Result<ActorCell, SpawnErr>>`,
/// so a closure that captures the child's arguments and spawns it again is a factory.
pub trait ChildFactory: Send + Sync + 'static {
    /// Spawns the child linked to `supervisor` and returns its cell once it has started.
    fn start(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>>;
}

impl<F, Fut> ChildFactory for F
where
    F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
{
    fn start(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> {
        Box::pin(self(supervisor))
    }
}

/// A child's specification: its id, how to start it, and how to treat its exits.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: String,
    pub(crate) factory: Arc<dyn ChildFactory>,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ChildKind,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .finish()
    }
}

impl ChildSpec {
    /// A child started by `factory` (a closure or a [`ChildFactory`]). Permanent, with a 5 s
    /// shutdown timeout.
    pub fn new(id: impl Into<String>, factory: impl ChildFactory) -> Self {
        Self {
            id: id.into(),
            factory: Arc::new(factory),
            restart: Restart::Permanent,
            shutdown: Shutdown::default(),
            kind: ChildKind::Worker,
        }
    }

    /// A child that spawns `actor` with a clone of `args` (and `name`, if any) at every start.
    pub fn actor<A>(
        id: impl Into<String>,
        name: Option<String>,
        actor: A,
        args: A::Arguments,
    ) -> Self
    where
        A: Actor + Clone,
        A::Arguments: Clone + Sync,
    {
        Self::new(id, move |sup: ActorCell| {
            let actor = actor.clone();
            let args = args.clone();
            let name = name.clone();
            async move {
                let (r, _) = Actor::spawn_linked(name, actor, args, sup).await?;
                Ok(r.get_cell())
            }
        })
    }

    /// A supervisor as a child (nesting). Its shutdown is [`Shutdown::Infinity`] by default.
    pub fn supervisor(id: impl Into<String>, name: Option<String>, spec: SupervisorSpec) -> Self {
        let mut child = Self::new(id, move |sup: ActorCell| {
            let spec = spec.clone();
            let name = name.clone();
            async move {
                let (r, _) = Supervisor::spawn_linked(name, spec, sup).await?;
                Ok(r.get_cell())
            }
        });
        child.kind = ChildKind::Supervisor;
        child.shutdown = Shutdown::Infinity;
        child
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Sets the child kind (reported by `count_children`).
    pub fn kind(mut self, kind: ChildKind) -> Self {
        self.kind = kind;
        self
    }

    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A supervisor's configuration and its initial children.
#[derive(Debug, Clone, Default)]
pub struct SupervisorSpec {
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Intensity,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) max_children: Option<usize>,
}

impl SupervisorSpec {
    /// A spec with this strategy, OTP's default intensity (3 restarts in 5 s), no backoff and
    /// no children.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            ..Self::default()
        }
    }

    /// Adds a child (children start in the order they are added).
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Sets the restart intensity: more than `max_restarts` within `period` and the supervisor
    /// gives up.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = Intensity {
            max_restarts,
            period,
        };
        self
    }

    /// Waits between restarts of a child, exponentially with jitter.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Caps the number of children (`start_child` beyond it returns
    /// [`SupervisorError::MaxChildren`]).
    pub fn max_children(mut self, max: usize) -> Self {
        self.max_children = Some(max);
        self
    }
}

/// A child as `which_children` reports it.
#[derive(Debug, Clone)]
pub struct ChildInfo {
    /// The child's id.
    pub id: String,
    /// Its current actor, or `None` while it is not running (stopped, or waiting for a restart).
    pub cell: Option<ActorCell>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart type.
    pub restart: Restart,
}

/// Child counts, as OTP's `count_children` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildCount {
    /// All child specs.
    pub specs: usize,
    /// Children running now.
    pub active: usize,
    /// Children that are supervisors.
    pub supervisors: usize,
    /// Children that are workers.
    pub workers: usize,
}

/// Messages of a supervisor actor (local only). Use [`SupervisorRef`] or
/// [`DynamicSupervisorRef`] rather than sending these by hand.
pub enum SupervisorMsg {
    /// Starts a new child.
    StartChild(ChildSpec, RpcReplyPort<Result<ActorCell, SupervisorError>>),
    /// Stops a child (with its shutdown rule) and removes it.
    TerminateChild(String, RpcReplyPort<Result<(), SupervisorError>>),
    /// Lists the children in start order.
    WhichChildren(RpcReplyPort<Vec<ChildInfo>>),
    /// Counts the children.
    CountChildren(RpcReplyPort<ChildCount>),
    /// A backoff delay has passed: start the children waiting on this token.
    RestartDue(u64),
}

impl ractor::Message for SupervisorMsg {}

/// How long the typed helpers wait for a supervisor to answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

async fn ask<T: Send + 'static>(
    actor: &ActorRef<SupervisorMsg>,
    build: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
) -> Result<T, SupervisorError> {
    match actor.call(build, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
        Ok(ractor::rpc::CallResult::Timeout) => {
            Err(SupervisorError::Unavailable("timed out".into()))
        }
        Ok(ractor::rpc::CallResult::SenderError) => {
            Err(SupervisorError::Unavailable("no reply".into()))
        }
        Err(e) => Err(SupervisorError::Unavailable(e.to_string())),
    }
}

/// A supervisor with a static ordered list of children.
pub struct Supervisor;

impl Supervisor {
    /// Spawns a supervisor (unlinked) and starts its children in order. If a child fails to start,
    /// the children already started are stopped in reverse order and the spawn fails with
    /// `SpawnErr::StartupFailed` wrapping [`SupervisorError::StartFailed`].
    pub async fn spawn(
        name: Option<String>,
        spec: SupervisorSpec,
    ) -> Result<(SupervisorRef, JoinHandle<()>), SpawnErr> {
        let (r, h) = Actor::spawn(name, SupervisorActor, (spec, false)).await?;
        Ok((SupervisorRef(r), h))
    }

    /// Spawns a supervisor linked to `parent`, which sees its failure (escalation).
    pub async fn spawn_linked(
        name: Option<String>,
        spec: SupervisorSpec,
        parent: ActorCell,
    ) -> Result<(SupervisorRef, JoinHandle<()>), SpawnErr> {
        let (r, h) = Actor::spawn_linked(name, SupervisorActor, (spec, false), parent).await?;
        Ok((SupervisorRef(r), h))
    }
}

/// A handle to a running [`Supervisor`].
#[derive(Debug, Clone)]
pub struct SupervisorRef(pub ActorRef<SupervisorMsg>);

impl SupervisorRef {
    /// The supervisor's actor cell.
    pub fn get_cell(&self) -> ActorCell {
        self.0.get_cell()
    }

    /// The children in start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        ask(&self.0, SupervisorMsg::WhichChildren).await
    }

    /// Child counts.
    pub async fn count_children(&self) -> Result<ChildCount, SupervisorError> {
        ask(&self.0, SupervisorMsg::CountChildren).await
    }

    /// Adds a child at the end of the list and starts it (OTP's `supervisor:start_child`).
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, SupervisorError> {
        ask(&self.0, |p| SupervisorMsg::StartChild(spec, p)).await?
    }

    /// Stops a child with its shutdown rule and removes it.
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_owned();
        ask(&self.0, |p| SupervisorMsg::TerminateChild(id, p)).await?
    }

    /// Stops the supervisor: its children are shut down in reverse order first. Waits at most
    /// `timeout` (or without limit).
    pub async fn shutdown(&self, timeout: Option<Duration>) -> Result<(), SupervisorError> {
        self.0
            .stop_and_wait(Some("shutdown".into()), timeout)
            .await
            .map_err(|e| SupervisorError::Unavailable(e.to_string()))
    }
}

/// A supervisor whose children are started at run time, one-for-one (OTP's
/// `DynamicSupervisor`).
pub struct DynamicSupervisor;

impl DynamicSupervisor {
    /// Spawns a dynamic supervisor. The spec's strategy is ignored (always one-for-one); its
    /// initial children, if any, are started in order.
    pub async fn spawn(
        name: Option<String>,
        spec: SupervisorSpec,
    ) -> Result<(DynamicSupervisorRef, JoinHandle<()>), SpawnErr> {
        let (r, h) = Actor::spawn(name, SupervisorActor, (spec, true)).await?;
        Ok((DynamicSupervisorRef(r), h))
    }

    /// Spawns a dynamic supervisor linked to `parent`.
    pub async fn spawn_linked(
        name: Option<String>,
        spec: SupervisorSpec,
        parent: ActorCell,
    ) -> Result<(DynamicSupervisorRef, JoinHandle<()>), SpawnErr> {
        let (r, h) = Actor::spawn_linked(name, SupervisorActor, (spec, true), parent).await?;
        Ok((DynamicSupervisorRef(r), h))
    }

    /// A child spec that starts a dynamic supervisor under another supervisor.
    pub fn child_spec(
        id: impl Into<String>,
        name: Option<String>,
        spec: SupervisorSpec,
    ) -> ChildSpec {
        ChildSpec::new(id, move |sup: ActorCell| {
            let spec = spec.clone();
            let name = name.clone();
            async move {
                let (r, _) = DynamicSupervisor::spawn_linked(name, spec, sup).await?;
                Ok(r.0.get_cell())
            }
        })
        .kind(ChildKind::Supervisor)
        .shutdown(Shutdown::Infinity)
    }
}

/// A handle to a running [`DynamicSupervisor`].
#[derive(Debug, Clone)]
pub struct DynamicSupervisorRef(pub ActorRef<SupervisorMsg>);

impl DynamicSupervisorRef {
    /// The supervisor's actor cell.
    pub fn get_cell(&self) -> ActorCell {
        self.0.get_cell()
    }

    /// Starts a child. Fails with [`SupervisorError::MaxChildren`] at the limit,
    /// [`SupervisorError::AlreadyStarted`] for a known id, or [`SupervisorError::StartFailed`].
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, SupervisorError> {
        ask(&self.0, |p| SupervisorMsg::StartChild(spec, p)).await?
    }

    /// Stops a child with its shutdown rule and removes it.
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_owned();
        ask(&self.0, |p| SupervisorMsg::TerminateChild(id, p)).await?
    }

    /// The children, oldest first.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        ask(&self.0, SupervisorMsg::WhichChildren).await
    }

    /// Child counts.
    pub async fn count_children(&self) -> Result<ChildCount, SupervisorError> {
        ask(&self.0, SupervisorMsg::CountChildren).await
    }

    /// Stops the supervisor, shutting its children down newest first.
    pub async fn shutdown(&self, timeout: Option<Duration>) -> Result<(), SupervisorError> {
        self.0
            .stop_and_wait(Some("shutdown".into()), timeout)
            .await
            .map_err(|e| SupervisorError::Unavailable(e.to_string()))
    }
}
