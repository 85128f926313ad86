//! The cluster test node's commands ([`ClusterCmd`]) and how it carries them out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::supervisor::{DistChildSpec, RestartType};
use actor_cluster::{DistributedSupervisor, Node, Registry};
use actor_core::ractor::rpc::CallResult;
use actor_core::ractor::{Actor, ActorRef};
use actor_testkit::flood::{Flood, FloodCmd};
use actor_testkit::ControlExtension;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::actors::{CounterMsg, CounterSpec, Echo, EchoMsg, Exits, OtherMsg, WatcherMsg};

/// What a test asks of a cluster test node (`NodeProcess::command`). The reply is JSON, as
/// each variant says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum ClusterCmd {
    /// Start counters `{prefix}0..{prefix}{count}` (crash-looping ones when `crash`); replies
    /// `count`.
    DsupStartMany {
        /// Id prefix.
        prefix: String,
        /// How many.
        count: u64,
        /// Every start fails right after it.
        crash: bool,
    },
    /// Start `count` temporary counter children (`{prefix}{i}`): never restarted.
    DsupStartTemporary {
        /// Id prefix.
        prefix: String,
        /// How many.
        count: u64,
    },
    /// Start one child of `kind`, waiting until it runs; replies the node it runs on.
    DsupStart {
        /// Child id.
        id: String,
        /// Child kind.
        kind: String,
    },
    /// Every child as `(id, node, status)`, sorted.
    DsupWhich,
    /// The members that can run children.
    DsupEligible,
    /// How many decisions this node still has to make.
    DsupPending,
    /// Whether the supervisor's registry has synced with each of these nodes.
    DsupSynced {
        /// Node names.
        nodes: Vec<String>,
    },
    /// The children running on this node.
    DsupLocal,
    /// A counter's value (a call).
    DsupGet {
        /// Child id.
        id: String,
    },
    /// Add `n` to a counter (a cast).
    DsupBump {
        /// Child id.
        id: String,
        /// How much.
        n: u64,
    },
    /// Make a counter fail.
    DsupCrash {
        /// Child id.
        id: String,
    },
    /// Stop a child for good.
    DsupTerminate {
        /// Child id.
        id: String,
    },
    /// Terminate `{prefix}0..{prefix}{count}` (ids not found are skipped); replies how many
    /// were terminated.
    DsupTerminateMany {
        /// Id prefix.
        prefix: String,
        /// How many.
        count: u64,
    },
    /// This node's child counts and its table's size: `{specs, running, failed, tombstones,
    /// rows}`.
    DsupCount,
    /// Hand this node's children to the others.
    DsupDrain,
    /// Register an echo actor under `name`; replies when (ns since the Unix epoch). An error
    /// `AlreadyRegistered:<node>` when another node holds it.
    RegRegister {
        /// The name.
        name: String,
    },
    /// Register `{prefix}0..{prefix}{count}`; replies their times.
    RegRegisterMany {
        /// Name prefix.
        prefix: String,
        /// How many.
        count: u64,
    },
    /// Unregister a name held here.
    RegUnregister {
        /// The name.
        name: String,
    },
    /// Stop the actor registered under `name`.
    RegStopActor {
        /// The name.
        name: String,
    },
    /// The node holding `name`, or null.
    RegOwner {
        /// The name.
        name: String,
    },
    /// Every registered name, sorted.
    RegNames,
    /// Call the echo actor under `name`; replies `<its node>:<text>`.
    RegCall {
        /// The name.
        name: String,
        /// What to echo.
        text: String,
    },
    /// When each name was first seen registered here (ns since the Unix epoch, or null).
    RegSeen {
        /// The names.
        names: Vec<String>,
    },
    /// Why the echo actor registered here under `name` stopped, or null.
    RegExitReason {
        /// The name.
        name: String,
    },
    /// Call the echo actor of every other node; replies their answers, sorted.
    CallEcho {
        /// What to echo.
        text: String,
    },
    /// How many remote actors of group `echo` a typed lookup finds: for the echo protocol, or
    /// for another type of the same shape when `other`.
    CountEcho {
        /// Look up the other type.
        other: bool,
    },
    /// Wait (event-driven) until `n` other members are up; replies their names. The error
    /// names the latest connection problem.
    WaitMembers {
        /// How many other members.
        n: usize,
        /// How long to wait.
        timeout_ms: u64,
    },
    /// A flood command.
    Flood(FloodCmd),
    /// A typed-entity command.
    Ent(super::tally::EntCmd),
}

/// The cluster test node's side of its commands.
#[derive(Clone)]
pub(crate) struct Commands {
    pub(crate) registry: Registry,
    pub(crate) watcher: ActorRef<WatcherMsg>,
    pub(crate) exits: Exits,
    /// When each name was first seen registered (ns since the Unix epoch).
    pub(crate) seen: Arc<Mutex<HashMap<String, u64>>>,
    pub(crate) me: String,
    pub(crate) dsup: DistributedSupervisor,
    pub(crate) flood: Arc<Flood>,
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Commands {
    async fn register(&self, name: &str) -> Result<u64, String> {
        // Named after the registered name, so the watcher can report its exit.
        let (echo, _) = Actor::spawn_linked(
            Some(format!("echo:{name}")),
            Echo,
            self.me.clone(),
            self.watcher.get_cell(),
        )
        .await
        .map_err(text)?;
        match self
            .registry
            .register(name, echo.get_cell(), self.me.as_bytes().to_vec())
            .await
        {
            Ok(()) => Ok(actor_testkit::unix_ns()),
            Err(actor_cluster::RegistryError::AlreadyRegistered { holder, .. }) => {
                echo.stop(None);
                Err(format!("AlreadyRegistered:{}", holder.node))
            }
            Err(e) => {
                echo.stop(None);
                Err(e.to_string())
            }
        }
    }

    async fn dsup(&self, cmd: ClusterCmd) -> Result<Value, String> {
        let d = &self.dsup;
        let t = Duration::from_secs(5);
        Ok(match cmd {
            ClusterCmd::DsupStartMany {
                prefix,
                count,
                crash,
            } => {
                let spec = CounterSpec {
                    crash_on_start: crash,
                };
                let cargs = actor_core::codec::encode(&spec).map_err(text)?;
                let specs = (0..count)
                    .map(|i| DistChildSpec::new(format!("{prefix}{i}"), "counter", cargs.clone()))
                    .collect();
                d.start_children(specs).await.map_err(text)?;
                json!(count)
            }
            ClusterCmd::DsupStartTemporary { prefix, count } => {
                let cargs = actor_core::codec::encode(&CounterSpec {
                    crash_on_start: false,
                })
                .map_err(text)?;
                let specs = (0..count)
                    .map(|i| {
                        DistChildSpec::new(format!("{prefix}{i}"), "counter", cargs.clone())
                            .restart(RestartType::Temporary)
                    })
                    .collect();
                d.start_children(specs).await.map_err(text)?;
                json!(count)
            }
            ClusterCmd::DsupStart { id, kind } => {
                let spec = DistChildSpec::new(id, kind, Vec::new());
                json!(d.start_child(spec, t).await.map_err(text)?)
            }
            ClusterCmd::DsupWhich => {
                let mut all: Vec<(String, Option<String>, String)> = d
                    .which_children()
                    .await
                    .map_err(text)?
                    .into_iter()
                    .map(|c| (c.id, c.node, format!("{:?}", c.status)))
                    .collect();
                all.sort();
                json!(all)
            }
            ClusterCmd::DsupEligible => json!(d.eligible_members().await.map_err(text)?),
            ClusterCmd::DsupPending => json!(d.pending_decisions().await.map_err(text)?),
            ClusterCmd::DsupSynced { nodes } => json!(nodes
                .iter()
                .map(|n| (n.clone(), d.registry().is_synced_with(n)))
                .collect::<std::collections::BTreeMap<_, _>>()),
            ClusterCmd::DsupLocal => json!(d.local_children().await.map_err(text)?),
            ClusterCmd::DsupGet { id } => {
                json!(d.call_child(&id, t, CounterMsg::Get).await.map_err(text)?)
            }
            ClusterCmd::DsupBump { id, n } => {
                d.cast_child(&id, t, || CounterMsg::Bump(n))
                    .await
                    .map_err(text)?;
                Value::Null
            }
            ClusterCmd::DsupCrash { id } => {
                d.cast_child(&id, t, || CounterMsg::Crash)
                    .await
                    .map_err(text)?;
                Value::Null
            }
            ClusterCmd::DsupTerminate { id } => {
                d.terminate_child(&id).await.map_err(text)?;
                Value::Null
            }
            ClusterCmd::DsupTerminateMany { prefix, count } => {
                let mut done = 0u64;
                for i in 0..count {
                    match d.terminate_child(&format!("{prefix}{i}")).await {
                        Ok(()) => done += 1,
                        Err(actor_cluster::DistSupervisorError::NotFound(_)) => {}
                        Err(e) => return Err(text(e)),
                    }
                }
                json!(done)
            }
            ClusterCmd::DsupCount => {
                let c = d.count_children().await.map_err(text)?;
                json!({
                    "specs": c.specs,
                    "running": c.running,
                    "failed": c.failed,
                    "tombstones": c.tombstones,
                    "rows": c.rows,
                })
            }
            ClusterCmd::DsupDrain => {
                d.drain().await.map_err(text)?;
                Value::Null
            }
            other => return Err(format!("not a supervisor command: {other:?}")),
        })
    }

    async fn registry(&self, cmd: ClusterCmd) -> Result<Value, String> {
        let r = &self.registry;
        Ok(match cmd {
            ClusterCmd::RegRegister { name } => json!(self.register(&name).await?),
            ClusterCmd::RegRegisterMany { prefix, count } => {
                let mut times = Vec::new();
                for i in 0..count {
                    times.push(self.register(&format!("{prefix}{i}")).await?);
                }
                json!(times)
            }
            ClusterCmd::RegUnregister { name } => {
                r.unregister(&name).await.map_err(text)?;
                Value::Null
            }
            ClusterCmd::RegStopActor { name } => {
                r.lookup(&name).ok_or("not registered")?.stop(None);
                Value::Null
            }
            ClusterCmd::RegOwner { name } => json!(r.entry(&name).map(|e| e.owner.node)),
            ClusterCmd::RegNames => {
                let mut n = r.names();
                n.sort();
                json!(n)
            }
            ClusterCmd::RegCall { name, text } => {
                let to = r
                    .lookup_typed::<EchoMsg>(&name)
                    .ok_or("no reachable actor under that name")?;
                json!(echo(&to, text).await?)
            }
            ClusterCmd::RegSeen { names } => {
                let seen = self.seen.lock();
                json!(names
                    .iter()
                    .map(|n| seen.get(n).copied())
                    .collect::<Vec<_>>())
            }
            ClusterCmd::RegExitReason { name } => {
                json!(self.exits.lock().get(&format!("echo:{name}")).cloned())
            }
            other => return Err(format!("not a registry command: {other:?}")),
        })
    }
}

async fn echo(to: &ActorRef<EchoMsg>, text: String) -> Result<String, String> {
    match to
        .call(|p| EchoMsg::Echo(text, p), Some(Duration::from_secs(5)))
        .await
    {
        Ok(CallResult::Success(a)) => Ok(a),
        other => Err(format!("call failed: {other:?}")),
    }
}

impl ControlExtension for Commands {
    type Command = ClusterCmd;

    fn handle(&self, node: &Node, cmd: ClusterCmd) -> BoxFuture<'static, Result<Value, String>> {
        if let ClusterCmd::Flood(f) = cmd {
            return self.flood.run(f);
        }
        let this = self.clone();
        let node = node.clone();
        Box::pin(async move {
            match cmd {
                ClusterCmd::Ent(e) => Ok(super::tally::run(&this.dsup, e).await),
                ClusterCmd::WaitMembers { n, timeout_ms } => {
                    let up = node
                        .wait_for_members(n, Duration::from_millis(timeout_ms))
                        .await
                        .map_err(text)?;
                    Ok(json!(up.into_iter().map(|m| m.name).collect::<Vec<_>>()))
                }
                ClusterCmd::CallEcho { text } => {
                    let mut answers = Vec::new();
                    for r in actor_cluster::remote::lookup_remote::<EchoMsg>("echo") {
                        answers.push(echo(&r, text.clone()).await?);
                    }
                    answers.sort();
                    Ok(json!(answers))
                }
                ClusterCmd::CountEcho { other } => Ok(json!(if other {
                    actor_cluster::remote::lookup_remote::<OtherMsg>("echo").len()
                } else {
                    actor_cluster::remote::lookup_remote::<EchoMsg>("echo").len()
                })),
                cmd @ (ClusterCmd::RegRegister { .. }
                | ClusterCmd::RegRegisterMany { .. }
                | ClusterCmd::RegUnregister { .. }
                | ClusterCmd::RegStopActor { .. }
                | ClusterCmd::RegOwner { .. }
                | ClusterCmd::RegNames
                | ClusterCmd::RegCall { .. }
                | ClusterCmd::RegSeen { .. }
                | ClusterCmd::RegExitReason { .. }) => this.registry(cmd).await,
                cmd => this.dsup(cmd).await,
            }
        })
    }
}
