//! A poker node process for multi-process tests (see `actor_poker::process`).

use clap::Parser;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    actor_cluster::testkit::init_logging("info,ractor_cluster=warn");
    actor_poker::process::run(actor_poker::process::NodeArgs::parse()).await
}
