//! Feature flags cached on every node: two nodes (in this process, for brevity) share one SQLite
//! flag store; a change made on one is in the other's cache within milliseconds, and checks are
//! local memory reads. It also shows why a check answered what it did, who changed a flag, and
//! the same cache behind OpenFeature's client.
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

    // Why: the reason, the deciding gate and the cached version, without allocating.
    let why = flags_b.evaluate_for("beta_ui", "user:42");
    println!(
        "beta_ui for user:42 at b: {} ({:?}, gate {:?}, version {})",
        why.enabled, why.reason, why.gate, why.version
    );
    // Who changed it: every write is recorded in the store beside FWF's table.
    flags_a.by("release-manager").enable("beta_ui").await?;
    for e in flags_b.history("beta_ui", 10).await? {
        println!(
            "  history: {} by {}: {:?} {:?} -> {:?}",
            e.at_ms, e.by, e.gate, e.old, e.new
        );
    }

    // The same cache behind OpenFeature (actor-flags' cargo feature `openfeature`).
    let client = {
        let mut api = open_feature::OpenFeature::singleton_mut().await;
        api.set_provider(actor_flags::openfeature::FlagsProvider::new(
            flags_b.clone(),
        ))
        .await;
        api.create_client()
    };
    let ctx = open_feature::EvaluationContext::default()
        .with_targeting_key("user:7")
        .with_custom_field("groups", "staff");
    let d = client
        .get_bool_details("checkout_v2", Some(&ctx), None)
        .await
        .map_err(|e| format!("OpenFeature: {}", e.code))?;
    println!(
        "OpenFeature at b: checkout_v2 for user:7 = {} ({:?}, variant {:?})",
        d.value, d.reason, d.variant
    );
    let typo = client
        .get_bool_value("checkout_v3", Some(&ctx), None)
        .await
        .map_err(|e| e.code.to_string());
    println!("OpenFeature at b: checkout_v3 (no such flag) = {typo:?}");

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
