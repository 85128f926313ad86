//! Feature flags cached on every node: two nodes (in this process, for brevity) share one SQLite
//! flag store; a change made on one is in the other's cache within milliseconds, and checks are
//! local memory reads.
//!
//! `cargo run -p examples --bin flags_cluster`
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::Node;
use actor_flags::{ClusterFlags, Flags, SqlStore};

async fn start_node(
    name: &str,
    seeds: Vec<String>,
    db: &std::path::Path,
) -> Result<(Node, Flags, ClusterFlags), Box<dyn std::error::Error>> {
    // Every flag is loaded from the store before `open` returns.
    let flags = Flags::open(Arc::new(SqlStore::sqlite(db).await?)).await?;
    let node = Node::builder(name)
        .listen("127.0.0.1:0".parse()?)
        .cookie("flags")
        .seeds(seeds)
        .start()
        .await?;
    // Keeps this node's cache in step with the others.
    let cluster = ClusterFlags::start(&node, flags.clone(), Duration::from_secs(30)).await?;
    Ok((node, flags, cluster))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("flags.db");
    let (a, flags_a, _ca) = start_node("a", vec![], &db).await?;
    let (_b, flags_b, _cb) = start_node("b", vec![a.addr().to_string()], &db).await?;
    while a.members().await?.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A change on a: written to the store, then announced to every node's cache.
    let t = Instant::now();
    flags_a.enable("checkout_v2").await?;
    while !flags_b.enabled("checkout_v2") {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    println!(
        "checkout_v2 switched on at a; b's cache had it {:.2} ms later",
        t.elapsed().as_secs_f64() * 1000.0
    );

    // fun_with_flags' gates: actors and groups before the boolean, then percentages.
    flags_a.disable("beta_ui").await?;
    flags_a.set_for_actor("beta_ui", "user:42", true).await?;
    flags_a.enable_percentage_of_actors("beta_ui", 0.10).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!(
        "beta_ui at b: for user:42 {}, for user:7 {}, without an actor {}",
        flags_b.enabled_for("beta_ui", "user:42"),
        flags_b.enabled_for("beta_ui", "user:7"),
        flags_b.enabled("beta_ui"),
    );

    // A check is a local read: time ten million of them through a handle.
    let handle = flags_b.handle("checkout_v2")?;
    let t = Instant::now();
    let mut on = 0u64;
    for _ in 0..10_000_000 {
        on += u64::from(handle.enabled());
    }
    println!(
        "10,000,000 checks at b: {:.1} ns each ({on} on)",
        t.elapsed().as_nanos() as f64 / 1e7
    );
    Ok(())
}
