//! A node process started by the `demo` and `chaos` programs (they run their own binary again
//! with `--role node`): an [`App`] driven over the test kit's control protocol.
//!
//! Commands: `local` (ranking actors here), `admin` (the admin page's address), `seen` (when a
//! flag version reached this node's cache), `flags` (every cached flag), `pending` (the
//! supervisor's outstanding decisions), `owners` (the registry as this node sees it).

use std::sync::Arc;

use actor_cluster::Node;
use actor_flags::admin::FlagJson;
use actor_flags::InstallLog;
use actor_testkit::ControlExtension;
use clap::Parser;
use futures::future::BoxFuture;
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

impl ControlExtension for Commands {
    fn handle(
        &self,
        _node: &Node,
        name: &str,
        args: Value,
    ) -> BoxFuture<'static, Result<Value, String>> {
        let (app, seen) = (self.app.clone(), self.seen.clone());
        let name = name.to_owned();
        Box::pin(async move {
            match name.as_str() {
                "local" => app
                    .dsup
                    .local_children()
                    .await
                    .map(|v| json!(v))
                    .map_err(|e| e.to_string()),
                "admin" => Ok(json!(app.admin.map(|a| a.to_string()))),
                "seen" => {
                    let flag = args["flag"].as_str().unwrap_or_default().to_owned();
                    let version = args["version"].as_u64().unwrap_or_default();
                    Ok(json!(seen.installed_at(&flag, version)))
                }
                "flags" => {
                    let mut all: Vec<FlagJson> =
                        app.flags.all_flags().iter().map(FlagJson::from).collect();
                    all.sort_by(|a, b| a.name.cmp(&b.name));
                    serde_json::to_value(all).map_err(|e| e.to_string())
                }
                "pending" => app
                    .dsup
                    .pending_decisions()
                    .await
                    .map(|n| json!(n))
                    .map_err(|e| e.to_string()),
                "owners" => Ok(json!(app.dsup.registry().owners())),
                other => Err(format!("unknown command {other}")),
            }
        })
    }
}

/// Logging for a local program's own process (its node processes log with [`run`]): errors only,
/// unless `RUST_LOG` says otherwise, on stderr, so the program's output stays readable.
pub fn init_program_logging() {
    actor_testkit::init_logging("error");
}

/// True when this process was started as a node (`--role node` among the arguments).
pub fn is_node_process() -> bool {
    std::env::args().any(|a| a == "--role")
}

/// Runs this process as a node until the parent closes its control channel.
pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    actor_testkit::init_logging("info,ractor=warn,ractor_cluster=warn,sqlx=warn");
    let cli = NodeCli::parse();
    tokio::runtime::Runtime::new()?.block_on(async move {
        let app = App::start(&cli.node, true).await?;
        let seen = InstallLog::record(&app.flags);
        let node = app.node.clone();
        actor_testkit::serve(node, Some(Arc::new(Commands { app, seen }))).await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
