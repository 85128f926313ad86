//! Test actors and helpers shared by the supervisor tests.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core::ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use actor_core::supervisor::ChildSpec;
use actor_core::LocalMessage;
use parking_lot::Mutex;

/// What test workers record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Started(String),
    /// post_stop began.
    Stopping(String),
    /// post_stop finished.
    Stopped(String),
}

#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Ev>>>);

impl Log {
    pub fn push(&self, e: Ev) {
        self.0.lock().push(e);
    }
    pub fn take(&self) -> Vec<Ev> {
        std::mem::take(&mut *self.0.lock())
    }
    pub fn snapshot(&self) -> Vec<Ev> {
        self.0.lock().clone()
    }
    pub fn count(&self, e: &Ev) -> usize {
        self.0.lock().iter().filter(|x| *x == e).count()
    }
}

pub fn started(id: &str) -> Ev {
    Ev::Started(id.into())
}
pub fn stopped(id: &str) -> Ev {
    Ev::Stopped(id.into())
}

#[derive(Clone)]
pub struct Worker;

#[derive(Clone)]
pub struct WorkerArgs {
    pub id: String,
    pub log: Log,
    /// post_stop takes this long.
    pub stop_delay: Duration,
    /// pre_start fails while this is set.
    pub fail_start: Arc<Mutex<bool>>,
}

impl WorkerArgs {
    pub fn new(id: &str, log: &Log) -> Self {
        Self {
            id: id.into(),
            log: log.clone(),
            stop_delay: Duration::ZERO,
            fail_start: Arc::new(Mutex::new(false)),
        }
    }
}

#[derive(LocalMessage)]
pub enum WorkerMsg {
    /// The handler returns an error.
    Fail,
    /// The handler panics.
    Panic,
    /// The worker stops itself normally.
    Exit,
    Ping(RpcReplyPort<String>),
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = WorkerArgs;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<WorkerMsg>,
        args: WorkerArgs,
    ) -> Result<WorkerArgs, ActorProcessingErr> {
        if *args.fail_start.lock() {
            return Err(format!("worker {} refuses to start", args.id).into());
        }
        args.log.push(Ev::Started(args.id.clone()));
        Ok(args)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WorkerMsg>,
        state: &mut WorkerArgs,
    ) -> Result<(), ActorProcessingErr> {
        state.log.push(Ev::Stopping(state.id.clone()));
        if !state.stop_delay.is_zero() {
            tokio::time::sleep(state.stop_delay).await;
        }
        state.log.push(Ev::Stopped(state.id.clone()));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        state: &mut WorkerArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Fail => return Err(format!("worker {} failed on purpose", state.id).into()),
            WorkerMsg::Panic => panic!("worker {} panicked on purpose", state.id),
            WorkerMsg::Exit => myself.stop(None),
            WorkerMsg::Ping(r) => {
                let _ = r.send(state.id.clone());
            }
        }
        Ok(())
    }
}

pub fn worker(id: &str, log: &Log) -> ChildSpec {
    ChildSpec::actor(id, None, Worker, WorkerArgs::new(id, log))
}

pub fn worker_with(args: WorkerArgs) -> ChildSpec {
    ChildSpec::actor(args.id.clone(), None, Worker, args)
}

/// Polls `cond` until it holds or `timeout` passes; panics with `what` on timeout.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub fn as_worker(cell: &ActorCell) -> ActorRef<WorkerMsg> {
    ActorRef::from(cell.clone())
}

/// A parent that records the supervision events of its children.
pub struct Parent;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParentEv {
    Failed(String),
    Terminated(Option<String>),
}

#[derive(LocalMessage)]
pub enum ParentMsg {}

impl Actor for Parent {
    type Msg = ParentMsg;
    type State = Arc<Mutex<Vec<ParentEv>>>;
    type Arguments = Arc<Mutex<Vec<ParentEv>>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<ParentMsg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<ParentMsg>,
        evt: actor_core::ractor::SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            actor_core::ractor::SupervisionEvent::ActorFailed(_, e) => {
                state.lock().push(ParentEv::Failed(e.to_string()))
            }
            actor_core::ractor::SupervisionEvent::ActorTerminated(_, _, r) => {
                state.lock().push(ParentEv::Terminated(r))
            }
            _ => {}
        }
        Ok(())
    }
}
