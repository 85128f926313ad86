//! A node process started by the `demo` and `chaos` programs (they run their own binary again
//! with `--role node`): an [`App`] driven over the launcher's control protocol
//! (`actor_cluster_launch`) with the commands of [`AppCmd`].

use std::collections::HashMap;
use std::sync::Arc;

use actor_cluster::{Node, Registry, RegistryEvent};
use actor_cluster_launch::ControlExtension;
use actor_flags::admin::FlagJson;
use actor_flags::InstallLog;
use actor_poker::driver::{open_tournament, DriverOptions};
use actor_poker::{SimConfig, TournamentSim};
use clap::Parser;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{App, NodeConfig};

/// The registry of the scale benchmark's probe names.
const PROBES: &str = "probes";

/// The command line of a node process.
#[derive(Parser, Debug)]
pub struct NodeCli {
    /// The node.
    #[command(flatten)]
    pub node: NodeConfig,
    /// Always `node`.
    #[arg(long, hide = true)]
    pub role: String,
}

struct Commands {
    app: App,
    seen: InstallLog,
    /// A registry of probe names (for the scale benchmark's propagation figures).
    probes: Registry,
    names: NameLog,
}

/// When this node's replicas saw a name registered: `(seen at, registered at, owner)` by name
/// (ns since the Unix epoch; the registration time is the owner's clock stamp).
#[derive(Clone, Default)]
struct NameLog(Arc<parking_lot::Mutex<HashMap<String, Seen>>>);

/// `(seen at, registered at, owner)`.
type Seen = (u64, u64, String);

impl NameLog {
    /// Records the registrations `registry` publishes from now on.
    fn record(&self, registry: Registry) {
        let log = self.clone();
        let mut events = registry.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(RegistryEvent::Registered { name, owner, .. }) => {
                        let at = actor_cluster_launch::unix_ns();
                        let stamp = registry
                            .entry(&name)
                            .map(|e| e.registered.wall_ns)
                            .unwrap_or(0);
                        let mut log = log.0.lock();
                        if log.len() > 100_000 {
                            log.clear();
                        }
                        log.insert(name, (at, stamp, owner.node));
                    }
                    Ok(RegistryEvent::Unregistered { .. }) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        });
    }
}

/// An actor that only holds a probe name.
struct ProbeActor;

#[derive(actor_core::LocalMessage)]
enum ProbeMsg {}

impl ractor::Actor for ProbeActor {
    type Msg = ProbeMsg;
    type State = ();
    type Arguments = ();
    async fn pre_start(
        &self,
        _: ractor::ActorRef<ProbeMsg>,
        _: (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        Ok(())
    }
}

/// What the demo and chaos programs ask of their node processes. Replies are JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum AppCmd {
    /// The ranking actors running on this node (child ids).
    Local,
    /// The admin page's address, or null.
    Admin,
    /// When a flag version reached this node's cache (ns since the Unix epoch), or null.
    Seen {
        /// The flag.
        flag: String,
        /// Its version.
        version: u64,
    },
    /// Every cached flag, by name.
    Flags,
    /// The supervisor's outstanding decisions.
    Pending,
    /// The registry as this node sees it: name to owner.
    Owners,
    /// Registers a probe name held by a new actor on this node.
    Register {
        /// The name.
        name: String,
    },
    /// When this node saw these names registered (probe names or child ids): name to
    /// `[seen ns, registered ns, owner]`, for the names it has seen.
    NamesSeen {
        /// The names.
        names: Vec<String>,
    },
    /// How many times this process's ranking handlers failed on purpose (`--fail-hand-one-in`).
    Failures,
    /// Opens tournaments from this node (their ranking actors start somewhere in the
    /// cluster); replies with their child ids.
    Open {
        /// How many.
        tournaments: u64,
        /// Players in each.
        players: u32,
    },
}

impl ControlExtension for Commands {
    type Command = AppCmd;

    fn handle(&self, _node: &Node, cmd: AppCmd) -> BoxFuture<'static, Result<Value, String>> {
        let (app, seen) = (self.app.clone(), self.seen.clone());
        let (probes, names) = (self.probes.clone(), self.names.clone());
        Box::pin(async move {
            match cmd {
                AppCmd::Local => app
                    .dsup
                    .local_children()
                    .await
                    .map(|v| json!(v))
                    .map_err(|e| e.to_string()),
                AppCmd::Admin => Ok(json!(app.admin.map(|a| a.to_string()))),
                AppCmd::Seen { flag, version } => Ok(json!(seen.installed_at(&flag, version))),
                AppCmd::Flags => {
                    let mut all: Vec<FlagJson> =
                        app.flags.all_flags().iter().map(FlagJson::from).collect();
                    all.sort_by(|a, b| a.name.cmp(&b.name));
                    serde_json::to_value(all).map_err(|e| e.to_string())
                }
                AppCmd::Pending => app
                    .dsup
                    .pending_decisions()
                    .await
                    .map(|n| json!(n))
                    .map_err(|e| e.to_string()),
                AppCmd::Owners => Ok(json!(app.dsup.registry().owners())),
                AppCmd::Failures => Ok(json!(actor_poker::actor::purposeful_failures())),
                AppCmd::Register { name } => {
                    let (actor, _) = ractor::Actor::spawn(None, ProbeActor, ())
                        .await
                        .map_err(|e| e.to_string())?;
                    probes
                        .register(&name, actor.get_cell(), Vec::new())
                        .await
                        .map(|()| Value::Null)
                        .map_err(|e| e.to_string())
                }
                AppCmd::NamesSeen { names: wanted } => {
                    let log = names.0.lock();
                    let found: HashMap<&String, &Seen> = wanted
                        .iter()
                        .filter_map(|n| Some((n, log.get(n)?)))
                        .collect();
                    Ok(json!(found))
                }
                AppCmd::Open {
                    tournaments,
                    players,
                } => {
                    let opts = DriverOptions::default();
                    let base = actor_cluster_launch::unix_ns() / 1_000 % 1_000_000_000_000;
                    let mut ids = Vec::new();
                    for i in 0..tournaments {
                        let id = base + i;
                        let sim = TournamentSim::new(id, SimConfig::new(players).seed(id));
                        open_tournament(&app.store, &app.dsup, &sim, &format!("scale {id}"), &opts)
                            .await
                            .map_err(|e| e.to_string())?;
                        ids.push(actor_poker::child_id(id));
                    }
                    Ok(json!(ids))
                }
            }
        })
    }
}

/// Logging for a local program's own process (its node processes log with [`run`]): errors only,
/// unless `RUST_LOG` says otherwise, on stderr, so the program's output stays readable.
pub fn init_program_logging() {
    actor_cluster_launch::init_logging("error");
}

/// True when this process was started as a node (`--role node` among the arguments).
pub fn is_node_process() -> bool {
    std::env::args().any(|a| a == "--role")
}

/// Runs this process as a node until the parent closes its control channel.
pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    actor_cluster_launch::init_logging("info,ractor=warn,ractor_cluster=error,sqlx=warn");
    let cli = NodeCli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async move {
        let app = App::start(&cli.node, true).await?;
        let seen = InstallLog::record(&app.flags);
        let probes = Registry::start(&app.node, PROBES).await?;
        let names = NameLog::default();
        names.record(probes.clone());
        names.record(app.dsup.registry().clone());
        let node = app.node.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let commands = Arc::new(Commands {
            app: app.clone(),
            seen,
            probes,
            names,
        });
        tokio::select! {
            () = actor_cluster_launch::serve(node, commands) => {}
            _ = term.recv() => {
                // A deployment's stop: hand the ranking actors over, then leave.
                tracing::info!("SIGTERM: draining, then leaving");
                if let Err(e) = app.dsup.drain().await {
                    tracing::warn!(error = %e, "drain");
                }
                app.node.clone().leave().await?;
            }
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    // The control channel's reader may still block on stdin (open until the parent sees this
    // process exit): do not wait for it.
    rt.shutdown_background();
    result
}
