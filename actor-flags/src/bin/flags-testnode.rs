//! A flag-cache node process for multi-process tests (see `actor_flags::process`).

use clap::Parser;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    actor_cluster::testkit::init_logging("info,ractor_cluster=warn");
    actor_flags::process::run(actor_flags::process::NodeArgs::parse()).await
}
