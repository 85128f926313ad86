//! Anti-entropy between flag caches: a node whose cache went wrong without a message (here, a
//! change applied to it alone, as if the store write it came from had been rolled back) is
//! repaired from the store within seconds, not at the next periodic reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::Node;
use actor_flags::{ClusterFlags, Flag, Flags, Gate, SqlStore};

async fn node(name: &str, seeds: Vec<String>, db: &std::path::Path) -> (Node, Flags, ClusterFlags) {
    let flags = Flags::open(Arc::new(SqlStore::sqlite(db).await.unwrap()))
        .await
        .unwrap();
    let node = Node::builder(name)
        .listen("127.0.0.1:0".parse().unwrap())
        .cookie("ae")
        .seeds(seeds)
        .start()
        .await
        .unwrap();
    // A periodic reload far beyond the test's deadline: only anti-entropy can repair.
    let c = ClusterFlags::start(&node, flags.clone(), Duration::from_secs(600))
        .await
        .unwrap();
    (node, flags, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_cache_is_repaired_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ae.db");
    let (a, flags_a, _ca) = node("a", vec![], &db).await;
    let (_b, flags_b, _cb) = node("b", vec![a.addr().to_string()], &db).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.members().await.unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    flags_a.enable("kept").await.unwrap();
    // b's cache alone says "ghost" is on; the store and a's cache do not have it.
    let ghost = Flag {
        name: "ghost".into(),
        gates: vec![Gate::Boolean(true)],
    };
    assert!(flags_b.apply(ghost, 1));
    assert!(flags_b.enabled("ghost"));
    let began = Instant::now();
    while flags_b.enabled("ghost") {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "b's diverged cache was not repaired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(flags_b.enabled("kept") && flags_a.enabled("kept"));
    assert!(!flags_a.enabled("ghost"));
    println!("repaired {:?} after the divergence", began.elapsed());
}
