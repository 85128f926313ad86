//! A cluster node process for multi-process tests (see `actor_cluster_tests::cluster_node`).

use clap::Parser;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    actor_testkit::init_logging("info,ractor_cluster=error");
    actor_cluster_tests::cluster_node::run(actor_cluster_tests::cluster_node::Args::parse()).await
}
