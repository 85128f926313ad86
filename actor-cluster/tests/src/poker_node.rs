//! A poker node process: a cluster `Node`, the tournament database, and the distributed
//! supervisor `poker` that runs ranking actors, driven by the control protocol with the
//! commands of [`PokerCmd`]. Used by the `poker-testnode` binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::supervisor::DistributedSupervisor;
use actor_cluster::Node;
use actor_poker::service::start_supervisor;
use actor_poker::{PokerStore, RankingEntity, RankingMsg, RankingOptions};
use actor_testkit::{self as testkit, ControlExtension};
use clap::Parser;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Arguments of a poker node process.
#[derive(Parser, Debug)]
pub struct NodeArgs {
    /// Node name.
    #[arg(long)]
    pub name: String,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seed `host:port` (repeatable).
    #[arg(long = "seed")]
    pub seeds: Vec<String>,
    /// Cluster cookie.
    #[arg(long, default_value = "poker")]
    pub cookie: String,
    /// `postgres://...` or a SQLite file path.
    #[arg(long)]
    pub store: String,
}

struct Commands {
    dsup: DistributedSupervisor,
}

/// What a test asks of a poker node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum PokerCmd {
    /// The ranking actors running on this node (their child ids).
    Local,
    /// A tournament's summary, from its ranking actor wherever it runs.
    Summary {
        /// The tournament.
        tournament: u64,
    },
    /// Hand this node's ranking actors to the others (graceful shutdown).
    Drain,
}

impl ControlExtension for Commands {
    type Command = PokerCmd;

    fn handle(&self, _node: &Node, cmd: PokerCmd) -> BoxFuture<'static, Result<Value, String>> {
        let dsup = self.dsup.clone();
        Box::pin(async move {
            match cmd {
                PokerCmd::Local => dsup
                    .local_children()
                    .await
                    .map(|v| json!(v))
                    .map_err(|e| e.to_string()),
                PokerCmd::Summary { tournament } => {
                    let s = dsup
                        .entity::<RankingEntity>(actor_poker::child_id(tournament))
                        .call(RankingMsg::Summary, Duration::from_secs(5))
                        .await
                        .map_err(|e| e.to_string())?;
                    serde_json::to_value(s).map_err(|e| e.to_string())
                }
                PokerCmd::Drain => dsup
                    .drain()
                    .await
                    .map(|()| Value::Null)
                    .map_err(|e| e.to_string()),
            }
        })
    }
}

/// Runs a poker node process until its control channel closes.
pub async fn run(args: NodeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let store = PokerStore::open(&args.store).await?;
    let mut b = Node::builder(args.name)
        .listen(args.listen)
        .cookie(args.cookie);
    if !args.seeds.is_empty() {
        b = b.seeds(args.seeds);
    }
    let node = b.start().await?;
    let dsup = start_supervisor(&node, &store, RankingOptions::default()).await?;
    testkit::serve(node, Arc::new(Commands { dsup })).await;
    Ok(())
}
