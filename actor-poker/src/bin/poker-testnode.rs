//! A poker node process for multi-process tests (see `actor_poker::process`).

use clap::Parser;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,ractor_cluster=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    actor_poker::process::run(actor_poker::process::NodeArgs::parse()).await
}
