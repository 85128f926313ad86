//! One application node, for deployments on several machines: a cluster member that runs poker
//! ranking actors under the distributed supervisor, caches the feature flags, and serves the admin
//! page. Every option has an environment variable (see `--help`).
//!
//! ```sh
//! cargo run --release -p examples --bin node -- --name a --listen 10.0.0.1:7000 \
//!     --store postgres://app@db/app --admin 0.0.0.0:8080 --admin-token "$TOKEN"
//! cargo run --release -p examples --bin node -- --name b --listen 10.0.0.2:7000 \
//!     --seed 10.0.0.1:7000 --store postgres://app@db/app --admin 0.0.0.0:8080
//! ```
//!
//! Ctrl-C (or SIGTERM) shuts the node down gracefully: its ranking actors are handed to the
//! other nodes, then it leaves the cluster.
#![allow(clippy::print_stdout)]

use clap::Parser;
use examples::app::{App, NodeConfig};

#[derive(Parser, Debug)]
#[command(about = "Runs one node of the actor toolkit's example application")]
struct Cli {
    #[command(flatten)]
    node: NodeConfig,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ractor_cluster warns about routine events (a session's child exiting as its peer goes):
    // only its errors are shown unless RUST_LOG says otherwise.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,ractor=warn,ractor_cluster=error,sqlx=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let app = App::start(&cli.node, true).await?;
    let id = app.node.identity();
    println!("node {} is up, cluster address {}", id.name, id.addr);
    if let Some(a) = app.admin {
        println!("admin page: http://{a}/   metrics: http://{a}/metrics");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("shutting down: handing ranking actors over, then leaving");
    if let Err(e) = app.dsup.drain().await {
        println!("drain: {e}");
    }
    app.node.leave().await?;
    Ok(())
}
