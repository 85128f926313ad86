//! A cluster node process for multi-process tests: it starts a `Node` from its arguments and
//! serves the test kit's control protocol on stdin/stdout (see `actor_testkit`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::discovery::{DnsDiscovery, DnsQuery, GossipConfig, GossipDiscovery};
use actor_cluster::supervisor::{DistChildSpec, Quorum};
use actor_cluster::{
    ChildKind, DistributedSupervisor, Node, Registry, StartContext, Timings, TlsConfig,
};
use actor_core::ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use actor_core::RemoteMessage;
use actor_testkit::ControlExtension;
use clap::Parser;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde_json::{json, Value};

/// The protocol of the test echo actor.
#[derive(RemoteMessage)]
enum EchoMsg {
    Echo(String, RpcReplyPort<String>),
}

/// Same shape, another type: a lookup for it must not find echo actors.
#[derive(RemoteMessage)]
enum OtherMsg {
    Echo(String, RpcReplyPort<String>),
}

struct Echo;

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
struct Watcher;

#[derive(actor_core::LocalMessage)]
enum WatcherMsg {}

type Exits = Arc<Mutex<HashMap<String, String>>>;

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

/// Custom control commands: `call_echo {text}` calls the echo actor of every other node;
/// `count_echo {type: "echo"|"other"}` counts remote echo actors found for a message type;
/// `reg_*` drive the registry (see `handle`).
struct Commands {
    registry: Registry,
    watcher: ActorRef<WatcherMsg>,
    exits: Exits,
    /// When each name was first seen registered (ns since the Unix epoch).
    seen: Arc<Mutex<HashMap<String, u64>>>,
    me: String,
    dsup: DistributedSupervisor,
    flood: Arc<actor_testkit::flood::Flood>,
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
        .map_err(|e| e.to_string())?;
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
}

impl ControlExtension for Commands {
    fn handle(
        &self,
        _node: &Node,
        name: &str,
        args: Value,
    ) -> BoxFuture<'static, Result<Value, String>> {
        let name = name.to_owned();
        let this = Commands {
            registry: self.registry.clone(),
            watcher: self.watcher.clone(),
            exits: self.exits.clone(),
            seen: self.seen.clone(),
            me: self.me.clone(),
            dsup: self.dsup.clone(),
            flood: self.flood.clone(),
        };
        if let Some(f) = self.flood.handle(&name, &args) {
            return f;
        }
        Box::pin(async move {
            let arg = |k: &str| args[k].as_str().unwrap_or_default().to_owned();
            match name.as_str() {
                "dsup_start_many" => {
                    let prefix = arg("prefix");
                    let count = args["count"].as_u64().unwrap_or(0);
                    let crash = args["crash"].as_bool().unwrap_or(false);
                    let cargs = actor_core::codec::encode(&CounterSpec {
                        crash_on_start: crash,
                    })
                    .map_err(|e| e.to_string())?;
                    let specs = (0..count)
                        .map(|i| {
                            DistChildSpec::new(format!("{prefix}{i}"), "counter", cargs.clone())
                        })
                        .collect();
                    this.dsup
                        .start_children(specs)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(json!(count))
                }
                "dsup_start" => {
                    let spec = DistChildSpec::new(arg("id"), arg("kind"), Vec::new());
                    let node = this
                        .dsup
                        .start_child(spec, Duration::from_secs(5))
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(json!(node))
                }
                "dsup_which" => {
                    let mut all: Vec<(String, Option<String>, String)> = this
                        .dsup
                        .which_children()
                        .await
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .map(|c| (c.id, c.node, format!("{:?}", c.status)))
                        .collect();
                    all.sort();
                    Ok(json!(all))
                }
                "dsup_eligible" => Ok(json!(this
                    .dsup
                    .eligible_members()
                    .await
                    .map_err(|e| e.to_string())?)),
                "dsup_pending" => Ok(json!(this
                    .dsup
                    .pending_decisions()
                    .await
                    .map_err(|e| e.to_string())?)),
                "dsup_local" => Ok(json!(this
                    .dsup
                    .local_children()
                    .await
                    .map_err(|e| e.to_string())?)),
                "dsup_get" => {
                    let id = arg("id");
                    let n = this
                        .dsup
                        .call_child(&id, Duration::from_secs(5), CounterMsg::Get)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(json!(n))
                }
                "dsup_bump" => {
                    let n = args["n"].as_u64().unwrap_or(1);
                    this.dsup
                        .cast_child(&arg("id"), Duration::from_secs(5), || CounterMsg::Bump(n))
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(Value::Null)
                }
                "dsup_crash" => {
                    this.dsup
                        .cast_child(&arg("id"), Duration::from_secs(5), || CounterMsg::Crash)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(Value::Null)
                }
                "dsup_terminate" => this
                    .dsup
                    .terminate_child(&arg("id"))
                    .await
                    .map(|_| Value::Null)
                    .map_err(|e| e.to_string()),
                "dsup_drain" => this
                    .dsup
                    .drain()
                    .await
                    .map(|_| Value::Null)
                    .map_err(|e| e.to_string()),
                "reg_register" => this.register(&arg("name")).await.map(|t| json!(t)),
                "reg_register_many" => {
                    let prefix = arg("prefix");
                    let count = args["count"].as_u64().unwrap_or(0);
                    let mut times = Vec::new();
                    for i in 0..count {
                        times.push(this.register(&format!("{prefix}{i}")).await?);
                    }
                    Ok(json!(times))
                }
                "reg_unregister" => this
                    .registry
                    .unregister(&arg("name"))
                    .await
                    .map(|_| Value::Null)
                    .map_err(|e| e.to_string()),
                "reg_stop_actor" => {
                    let cell = this.registry.lookup(&arg("name")).ok_or("not registered")?;
                    cell.stop(None);
                    Ok(Value::Null)
                }
                "reg_owner" => Ok(json!(this
                    .registry
                    .entry(&arg("name"))
                    .map(|e| e.owner.node))),
                "reg_names" => {
                    let mut n = this.registry.names();
                    n.sort();
                    Ok(json!(n))
                }
                "reg_call" => {
                    let r = this
                        .registry
                        .lookup_typed::<EchoMsg>(&arg("name"))
                        .ok_or("no reachable actor under that name")?;
                    let text = arg("text");
                    match r
                        .call(|p| EchoMsg::Echo(text, p), Some(Duration::from_secs(5)))
                        .await
                    {
                        Ok(actor_core::ractor::rpc::CallResult::Success(a)) => Ok(json!(a)),
                        other => Err(format!("call failed: {other:?}")),
                    }
                }
                "reg_seen" => {
                    let names: Vec<String> =
                        serde_json::from_value(args["names"].clone()).map_err(|e| e.to_string())?;
                    let seen = this.seen.lock();
                    Ok(json!(names
                        .iter()
                        .map(|n| seen.get(n).copied())
                        .collect::<Vec<_>>()))
                }
                "reg_exit_reason" => Ok(json!(this
                    .exits
                    .lock()
                    .get(&format!("echo:{}", arg("name")))
                    .cloned())),
                "call_echo" => {
                    let text = args["text"].as_str().unwrap_or_default().to_owned();
                    let mut answers = Vec::new();
                    for r in actor_cluster::remote::lookup_remote::<EchoMsg>("echo") {
                        let t = text.clone();
                        match r
                            .call(|p| EchoMsg::Echo(t, p), Some(Duration::from_secs(5)))
                            .await
                        {
                            Ok(actor_core::ractor::rpc::CallResult::Success(a)) => answers.push(a),
                            other => return Err(format!("call failed: {other:?}")),
                        }
                    }
                    answers.sort();
                    Ok(json!(answers))
                }
                "count_echo" => {
                    let n = match args["type"].as_str() {
                        Some("other") => {
                            actor_cluster::remote::lookup_remote::<OtherMsg>("echo").len()
                        }
                        _ => actor_cluster::remote::lookup_remote::<EchoMsg>("echo").len(),
                    };
                    Ok(json!(n))
                }
                other => Err(format!("unknown command {other:?}")),
            }
        })
    }
}

#[derive(Parser, Debug)]
#[command(about = "A cluster node driven by the actor-cluster test kit")]
struct Args {
    /// Node name.
    #[arg(long)]
    name: String,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Cluster cookie.
    #[arg(long, default_value = "testkit-cookie")]
    cookie: String,
    /// Seed node `host:port` (repeatable).
    #[arg(long = "seed")]
    seeds: Vec<String>,
    /// Heartbeat interval, ms.
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// Bound of each peer's outbound queue for bounded sends (messages).
    #[arg(long)]
    max_outbound: Option<u64>,
    /// Down after this long without a heartbeat, ms.
    #[arg(long)]
    down_ms: Option<u64>,
    /// Gossip discovery on this multicast group `ip:port` (sent on 127.0.0.1).
    #[arg(long)]
    gossip: Option<SocketAddr>,
    /// Gossip shared secret.
    #[arg(long, default_value = "gossip-secret")]
    gossip_secret: String,
    /// DNS discovery: the name server to ask.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// DNS discovery: A/AAAA name (with --dns-port) or SRV name (with --dns-srv).
    #[arg(long)]
    dns_name: Option<String>,
    /// DNS discovery: the cluster port of the A/AAAA records.
    #[arg(long)]
    dns_port: Option<u16>,
    /// DNS discovery: query SRV records of --dns-name.
    #[arg(long)]
    dns_srv: bool,
    /// TLS: certificate chain PEM.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// TLS: private key PEM.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// TLS: cluster CA PEM.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// TLS: the DNS name in every node's certificate.
    #[arg(long, default_value = "cluster.test")]
    tls_name: String,
    /// Distributed supervisor: file the test children append start/stop lines to.
    #[arg(long)]
    child_log: Option<PathBuf>,
    /// Distributed supervisor: quorum placement over these members (comma-separated).
    #[arg(long)]
    quorum: Option<String>,
    /// Distributed supervisor: quorum restart delay, ms.
    #[arg(long, default_value_t = 2500)]
    quorum_delay_ms: u64,
    /// Distributed supervisor: active redistribution on join.
    #[arg(long)]
    active: bool,
}

/// The test children's protocol.
#[derive(RemoteMessage)]
enum CounterMsg {
    Bump(u64),
    Get(RpcReplyPort<u64>),
    Crash,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct CounterSpec {
    /// Fail right after every start (a crash-looping child).
    crash_on_start: bool,
}

struct Counter;

struct CounterArgs {
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

struct CounterKind {
    node: String,
    log: Option<PathBuf>,
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    actor_testkit::init_logging("info,ractor_cluster=warn");
    let args = Args::parse();
    let mut timings = Timings::default();
    if let Some(ms) = args.heartbeat_ms {
        timings.heartbeat_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = args.down_ms {
        timings.down_after = Duration::from_millis(ms);
        timings.suspect_after = timings.suspect_after.min(timings.down_after);
    }
    let mut builder = Node::builder(args.name.clone())
        .listen(args.listen)
        .cookie(args.cookie.clone())
        .timings(timings);
    if let Some(m) = args.max_outbound {
        builder = builder.max_outbound(m);
    }
    if !args.seeds.is_empty() {
        builder = builder.seeds(args.seeds.clone());
    }
    if let Some(group) = args.gossip {
        let mut cfg =
            GossipConfig::multicast(group, Ipv4Addr::LOCALHOST, args.gossip_secret.clone());
        cfg.interval = Duration::from_millis(200);
        cfg.ttl = 0;
        builder = builder.discovery(GossipDiscovery::new(cfg));
    }
    if let (Some(server), Some(name)) = (args.dns_server, args.dns_name.clone()) {
        let query = if args.dns_srv {
            DnsQuery::Srv { name }
        } else {
            DnsQuery::Addresses {
                name,
                port: args.dns_port.unwrap_or(0),
            }
        };
        builder = builder.discovery(DnsDiscovery::with_name_server(query, server));
        let mut t = timings;
        t.discovery_interval = Duration::from_millis(200);
        builder = builder.timings(t);
    }
    if let (Some(cert), Some(key), Some(ca)) = (&args.tls_cert, &args.tls_key, &args.tls_ca) {
        builder = builder.tls(TlsConfig::from_files(cert, key, ca, &args.tls_name)?);
    }
    let node = builder.start().await?;
    let (echo, _) = Actor::spawn(None, Echo, args.name.clone()).await?;
    actor_cluster::remote::register("echo", &echo);
    let registry = Registry::start(&node, "test").await?;
    let seen: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut events = registry.subscribe();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if let actor_cluster::RegistryEvent::Registered { name, .. } = e {
                seen2
                    .lock()
                    .entry(name)
                    .or_insert_with(actor_testkit::unix_ns);
            }
        }
    });
    let exits: Exits = Arc::default();
    let (watcher, _) = Actor::spawn(None, Watcher, exits.clone()).await?;
    let mut dsup = DistributedSupervisor::builder("test")
        .kind(
            "counter",
            CounterKind {
                node: args.name.clone(),
                log: args.child_log.clone(),
            },
        )
        .active_redistribution(args.active);
    if let Some(q) = &args.quorum {
        dsup = dsup.placement(Quorum {
            members: q.split(',').map(str::to_owned).collect(),
            restart_delay: Duration::from_millis(args.quorum_delay_ms),
        });
    }
    let dsup = dsup.start(&node).await?;
    let commands = Commands {
        flood: Arc::new(actor_testkit::flood::Flood::start(&node).await?),
        dsup,
        registry,
        watcher,
        exits,
        seen,
        me: args.name.clone(),
    };
    actor_testkit::serve(node, Some(Arc::new(commands))).await;
    Ok(())
}
