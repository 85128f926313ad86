//! A node process started by the `demo` and `chaos` programs (they run their own binary again
//! with `--role node`): an [`App`] driven over the launcher's control protocol
//! (`actor_cluster_launch`) with the commands of [`AppCmd`].

use std::sync::Arc;

use actor_cluster::Node;
use actor_cluster_launch::ControlExtension;
use actor_flags::admin::FlagJson;
use actor_flags::InstallLog;
use clap::Parser;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{App, NodeConfig};

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
}

impl ControlExtension for Commands {
    type Command = AppCmd;

    fn handle(&self, _node: &Node, cmd: AppCmd) -> BoxFuture<'static, Result<Value, String>> {
        let (app, seen) = (self.app.clone(), self.seen.clone());
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
        let node = app.node.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let commands = Arc::new(Commands {
            app: app.clone(),
            seen,
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
