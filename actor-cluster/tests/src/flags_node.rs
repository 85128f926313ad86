//! A flag-cache node process for multi-process tests and the flags benchmark: a cluster `Node`,
//! `Flags` over a store, `ClusterFlags`, and the test kit's control protocol (commands `enable`,
//! `disable`, `check`, `toggle_many`, `seen`). Used by the `flags-testnode` binary and by the
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

impl ControlExtension for Commands {
    fn handle(
        &self,
        _node: &Node,
        name: &str,
        args: Value,
    ) -> BoxFuture<'static, Result<Value, String>> {
        let (flags, seen) = (self.flags.clone(), self.seen.clone());
        let name = name.to_owned();
        Box::pin(async move {
            let flag = args["flag"].as_str().unwrap_or_default().to_owned();
            match name.as_str() {
                "enable" => flags
                    .enable(&flag)
                    .await
                    .map(|_| Value::Null)
                    .map_err(|e| e.to_string()),
                "disable" => flags
                    .disable(&flag)
                    .await
                    .map(|_| Value::Null)
                    .map_err(|e| e.to_string()),
                "check" => Ok(json!(flags.enabled(&flag))),
                "toggle_many" => {
                    let n = args["count"].as_u64().unwrap_or(0);
                    let mut versions = Vec::new();
                    for i in 0..n {
                        if i % 2 == 0 {
                            flags.enable(&flag).await.map_err(|e| e.to_string())?;
                        } else {
                            flags.disable(&flag).await.map_err(|e| e.to_string())?;
                        }
                        versions.push(flags.version(&flag));
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Ok(json!(versions))
                }
                "seen" => {
                    let versions: Vec<u64> = serde_json::from_value(args["versions"].clone())
                        .map_err(|e| e.to_string())?;
                    Ok(json!(versions
                        .iter()
                        .map(|v| seen.installed_at(&flag, *v))
                        .collect::<Vec<_>>()))
                }
                other => Err(format!("unknown command {other}")),
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
    testkit::serve(node, Some(Arc::new(Commands { flags, seen }))).await;
    Ok(())
}
