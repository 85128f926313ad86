//! A flag-cache node process for multi-process tests and the flags benchmark: a cluster `Node`,
//! `Flags` over a store, `ClusterFlags`, and the control protocol with the commands of
//! [`FlagsCmd`]. Used by the `flags-testnode` binary and by the
//! `flags_bench` example.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::Node;
use actor_flags::store::{FlagStore, RedisStore, SqlStore};
use actor_flags::{ClusterFlags, Flags, InstallLog};
use actor_testkit::{self as testkit, ControlExtension};
use clap::Parser;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Arguments of a flag node process.
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
    /// `postgres://...`, `redis://...`, or a SQLite file path.
    #[arg(long)]
    pub store: String,
}

struct Commands {
    flags: Flags,
    seen: InstallLog,
}

/// What a test asks of a flag node. Replies are JSON, as each variant says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum FlagsCmd {
    /// Enable a flag (through the store, then the cluster); replies null.
    Enable {
        /// The flag.
        flag: String,
    },
    /// Disable a flag; replies null.
    Disable {
        /// The flag.
        flag: String,
    },
    /// Whether a flag is on in this node's cache.
    Check {
        /// The flag.
        flag: String,
    },
    /// Toggle a flag `count` times, 2 ms apart; replies the version after each toggle.
    ToggleMany {
        /// The flag.
        flag: String,
        /// How many toggles.
        count: u64,
    },
    /// When each version of a flag reached this node's cache (ns since the Unix epoch, or
    /// null).
    Seen {
        /// The flag.
        flag: String,
        /// The versions.
        versions: Vec<u64>,
    },
}

impl ControlExtension for Commands {
    type Command = FlagsCmd;

    fn handle(&self, _node: &Node, cmd: FlagsCmd) -> BoxFuture<'static, Result<Value, String>> {
        let (flags, seen) = (self.flags.clone(), self.seen.clone());
        let text = |e: actor_flags::FlagError| e.to_string();
        Box::pin(async move {
            match cmd {
                FlagsCmd::Enable { flag } => {
                    flags.enable(&flag).await.map(|_| Value::Null).map_err(text)
                }
                FlagsCmd::Disable { flag } => flags
                    .disable(&flag)
                    .await
                    .map(|_| Value::Null)
                    .map_err(text),
                FlagsCmd::Check { flag } => Ok(json!(flags.enabled(&flag))),
                FlagsCmd::ToggleMany { flag, count } => {
                    let mut versions = Vec::new();
                    for i in 0..count {
                        if i % 2 == 0 {
                            flags.enable(&flag).await.map_err(text)?;
                        } else {
                            flags.disable(&flag).await.map_err(text)?;
                        }
                        versions.push(flags.version(&flag));
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Ok(json!(versions))
                }
                FlagsCmd::Seen { flag, versions } => Ok(json!(versions
                    .iter()
                    .map(|v| seen.installed_at(&flag, *v))
                    .collect::<Vec<_>>())),
            }
        })
    }
}

/// Runs a flag node process until its control channel closes.
pub async fn run(args: NodeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn FlagStore> = if args.store.starts_with("postgres://") {
        Arc::new(SqlStore::postgres(&args.store).await?)
    } else if args.store.starts_with("redis://") {
        Arc::new(RedisStore::connect(&args.store).await?)
    } else {
        Arc::new(SqlStore::sqlite(std::path::Path::new(&args.store)).await?)
    };
    // Every flag is loaded before the node reports ready.
    let flags = Flags::open(store).await?;
    let seen = InstallLog::record(&flags);
    let mut b = Node::builder(args.name).listen(args.listen).cookie("flags");
    if !args.seeds.is_empty() {
        b = b.seeds(args.seeds);
    }
    let node = b.start().await?;
    let _cluster = ClusterFlags::start(&node, flags.clone(), Duration::from_secs(30)).await?;
    testkit::serve(node, Arc::new(Commands { flags, seen })).await;
    Ok(())
}
