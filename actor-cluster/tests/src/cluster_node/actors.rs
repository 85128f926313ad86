//! The actors of the cluster test node: an echo actor (registered under the group `echo` and in
//! the registry), a watcher recording why echo actors stopped, and the distributed
//! supervisor's test child, a counter.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::{ChildKind, StartContext};
use actor_core::ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use actor_core::RemoteMessage;
use futures::future::BoxFuture;
use parking_lot::Mutex;

/// The protocol of the test echo actor.
#[derive(RemoteMessage)]
pub(crate) enum EchoMsg {
    Echo(String, RpcReplyPort<String>),
}

/// Same shape, another type: a lookup for it must not find echo actors.
#[derive(RemoteMessage)]
pub(crate) enum OtherMsg {
    Echo(String, RpcReplyPort<String>),
}

pub(crate) struct Echo;

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = String;
    type Arguments = String;

    async fn pre_start(
        &self,
        _: ActorRef<EchoMsg>,
        name: String,
    ) -> Result<String, ActorProcessingErr> {
        Ok(name)
    }

    async fn handle(
        &self,
        _: ActorRef<EchoMsg>,
        msg: EchoMsg,
        name: &mut String,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EchoMsg::Echo(text, reply) => {
                let _ = reply.send(format!("{name}:{text}"));
            }
        }
        Ok(())
    }
}

/// Records why the echo actors it supervises stopped.
pub(crate) struct Watcher;

#[derive(actor_core::LocalMessage)]
pub(crate) enum WatcherMsg {}

pub(crate) type Exits = Arc<Mutex<HashMap<String, String>>>;

impl Actor for Watcher {
    type Msg = WatcherMsg;
    type State = Exits;
    type Arguments = Exits;

    async fn pre_start(
        &self,
        _: ActorRef<WatcherMsg>,
        exits: Exits,
    ) -> Result<Exits, ActorProcessingErr> {
        Ok(exits)
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<WatcherMsg>,
        evt: actor_core::ractor::SupervisionEvent,
        exits: &mut Exits,
    ) -> Result<(), ActorProcessingErr> {
        if let actor_core::ractor::SupervisionEvent::ActorTerminated(cell, _, reason) = evt {
            if let Some(name) = cell.get_name() {
                exits.lock().insert(name, reason.unwrap_or_default());
            }
        }
        Ok(())
    }
}

/// The test children's protocol.
#[derive(RemoteMessage)]
pub(crate) enum CounterMsg {
    Bump(u64),
    Get(RpcReplyPort<u64>),
    Crash,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(crate) struct CounterSpec {
    /// Fail right after every start (a crash-looping child).
    pub(crate) crash_on_start: bool,
}

pub(crate) struct Counter;

pub(crate) struct CounterArgs {
    id: String,
    node: String,
    log: Option<PathBuf>,
    initial: u64,
    crash_on_start: bool,
}

fn child_log(log: &Option<PathBuf>, what: &str, id: &str, node: &str) {
    use std::io::Write;
    if let Some(path) = log {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f
                .write_all(format!("{what} {id} {node} {}\n", actor_testkit::unix_ns()).as_bytes());
        }
    }
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type State = (CounterArgs, u64);
    type Arguments = CounterArgs;

    async fn pre_start(
        &self,
        _: ActorRef<CounterMsg>,
        a: CounterArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        child_log(&a.log, "start", &a.id, &a.node);
        let n = a.initial;
        Ok((a, n))
    }

    async fn post_start(
        &self,
        myself: ActorRef<CounterMsg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if st.0.crash_on_start {
            let _ = myself.cast(CounterMsg::Crash);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<CounterMsg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        child_log(&st.0.log, "stop", &st.0.id, &st.0.node);
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<CounterMsg>,
        msg: CounterMsg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CounterMsg::Bump(n) => st.1 += n,
            CounterMsg::Get(r) => {
                let _ = r.send(st.1);
            }
            CounterMsg::Crash => {
                child_log(&st.0.log, "stop", &st.0.id, &st.0.node);
                return Err(format!("{} crashed on purpose", st.0.id).into());
            }
        }
        Ok(())
    }
}

pub(crate) struct CounterKind {
    pub(crate) node: String,
    pub(crate) log: Option<PathBuf>,
}

impl ChildKind for CounterKind {
    fn start(
        &self,
        ctx: StartContext,
    ) -> BoxFuture<'static, Result<actor_core::ractor::ActorCell, actor_core::ractor::SpawnErr>>
    {
        let spec: CounterSpec = actor_core::codec::decode(&ctx.args).unwrap_or_default();
        let initial = ctx
            .handoff
            .as_deref()
            .and_then(|b| actor_core::codec::decode::<u64>(b).ok())
            .unwrap_or(0);
        let args = CounterArgs {
            id: ctx.id,
            node: self.node.clone(),
            log: self.log.clone(),
            initial,
            crash_on_start: spec.crash_on_start,
        };
        let sup = ctx.supervisor;
        Box::pin(async move {
            let (r, _) = Actor::spawn_linked(None, Counter, args, sup).await?;
            Ok(r.get_cell())
        })
    }

    fn export(&self, child: actor_core::ractor::ActorCell) -> BoxFuture<'static, Option<Vec<u8>>> {
        Box::pin(async move {
            let r: ActorRef<CounterMsg> = child.into();
            match r.call(CounterMsg::Get, Some(Duration::from_secs(2))).await {
                Ok(actor_core::ractor::rpc::CallResult::Success(n)) => {
                    actor_core::codec::encode(&n).ok()
                }
                _ => None,
            }
        })
    }
}
