//! Clock skew, injected into node processes (`NodeProcess::skew_clock`, ±5 s):
//!
//! * with three nodes, the skewed node's clock is corrected to the majority's (from the wall
//!   clocks its peers' probes carry), so a registry conflict made across a partition goes to
//!   the registration that was older in real time, not to the node whose clock is behind;
//! * a clock 5 s *ahead* is corrected back: only the acks of its own pings bound how far
//!   behind its peers are (a late frame alone looks like a peer behind);
//! * with two nodes nobody can tell whose clock is wrong, nothing is corrected, and the hybrid
//!   logical clock keeps causal order: a child terminated and started again, a name released
//!   and taken, by the node 5 s behind, end as it asked on every node;
//! * flag versions written by a node 5 s behind still supersede the ones it has seen.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use actor_cluster_tests::cluster_node::ClusterCmd;
use actor_cluster_tests::flags_node::FlagsCmd;
use std::time::{Duration, Instant};

use actor_testkit::{wait_until, TestNode};
use common::*;
use serde_json::json;

const SKEW_MS: i64 = 5_000;
/// How close a corrected clock must come (probe delays on a loaded 2-core machine).
const WITHIN_NS: i64 = 300_000_000;

async fn correction(n: &TestNode) -> i64 {
    n.clock().await.unwrap().correction_ns
}

/// Whether `n`'s table lists the child `c`.
async fn listed(n: &TestNode) -> bool {
    let all: Vec<(String, Option<String>, String)> =
        serde_json::from_value(n.command(&ClusterCmd::DsupWhich).await.unwrap()).unwrap();
    all.iter().any(|(id, _, _)| id == "c")
}

/// Whether flag `f` is on in `n`'s cache.
async fn check(n: &TestNode) -> bool {
    n.command(&FlagsCmd::Check { flag: "f".into() })
        .await
        .unwrap()
        == json!(true)
}

async fn owner(n: &TestNode, name: &str) -> serde_json::Value {
    n.command(&ClusterCmd::RegOwner { name: name.into() })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_5_s_ahead_is_corrected_back_and_the_others_stay() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let t = Instant::now();
    nodes[2].skew_clock(SKEW_MS).await.unwrap();
    let want = -SKEW_MS * 1_000_000;
    wait_until(
        "n2's clock corrected back by the majority",
        Duration::from_secs(10),
        || async { Ok((correction(&nodes[2]).await - want).abs() < WITHIN_NS) },
    )
    .await
    .unwrap();
    println!(
        "n2 (5 s ahead) corrected by {} ms after {:?}",
        correction(&nodes[2]).await / 1_000_000,
        t.elapsed()
    );
    for n in &nodes[..2] {
        assert!(
            correction(n).await.abs() < WITHIN_NS,
            "{} followed the skewed node: {:?}",
            n.name(),
            n.clock().await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_5_s_behind_is_corrected_and_a_conflict_goes_to_the_older_registration() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let t = Instant::now();
    nodes[0].skew_clock(-SKEW_MS).await.unwrap();
    let want = SKEW_MS * 1_000_000;
    wait_until(
        "n0's clock corrected by the majority",
        Duration::from_secs(10),
        || async { Ok((correction(&nodes[0]).await - want).abs() < WITHIN_NS) },
    )
    .await
    .unwrap();
    println!(
        "n0 (5 s behind) corrected by {} ms after {:?}",
        correction(&nodes[0]).await / 1_000_000,
        t.elapsed()
    );
    for n in &nodes[1..] {
        assert!(
            correction(n).await.abs() < WITHIN_NS,
            "{} followed the skewed node: {:?}",
            n.name(),
            n.clock().await
        );
    }

    // Partition {n0} | {n1, n2}; n1 registers first, n0 a second later (real time).
    isolate(&nodes, 0).await;
    nodes[1]
        .command(&ClusterCmd::RegRegister {
            name: "leader".into(),
        })
        .await
        .unwrap();
    // The registrations are a second apart in real time (more than a corrected clock's
    // error): the order under test, not a wait for anything.
    tokio::time::sleep(Duration::from_secs(1)).await;
    nodes[0]
        .command(&ClusterCmd::RegRegister {
            name: "leader".into(),
        })
        .await
        .unwrap();
    for n in &nodes {
        n.unblock_all().await.unwrap();
    }
    // Uncorrected, n0's registration would be stamped 4 s before n1's and win.
    for n in &nodes {
        wait_until(
            &format!("{} agrees on n1, the older registration", n.name()),
            Duration::from_secs(10),
            || async { Ok(owner(n, "leader").await == json!("n1")) },
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_nodes_nothing_is_corrected_and_causal_order_holds_5_s_behind() {
    let mut nodes = chain(2, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    wait_eligible(&nodes.iter().collect::<Vec<_>>(), 2).await;
    nodes[1].skew_clock(-SKEW_MS).await.unwrap();
    let both: Vec<&TestNode> = nodes.iter().collect();

    // A child started by n0, terminated by n1 (5 s behind), then started again by n1.
    nodes[0]
        .command(&ClusterCmd::DsupStart {
            id: "c".into(),
            kind: "counter".into(),
        })
        .await
        .unwrap();
    wait_until("n1 has the child's row", Duration::from_secs(5), || async {
        Ok(listed(&nodes[1]).await)
    })
    .await
    .unwrap();
    nodes[1]
        .command(&ClusterCmd::DsupTerminate { id: "c".into() })
        .await
        .unwrap();
    for n in &both {
        wait_until(
            &format!("{}: the child is gone", n.name()),
            Duration::from_secs(10),
            || async { Ok(!listed(n).await && !local(n).await.contains(&"c".to_owned())) },
        )
        .await
        .unwrap();
    }
    nodes[1]
        .command(&ClusterCmd::DsupStart {
            id: "c".into(),
            kind: "counter".into(),
        })
        .await
        .unwrap();
    for n in &both {
        wait_until(
            &format!("{}: the child is back", n.name()),
            Duration::from_secs(10),
            || async { Ok(listed(n).await) },
        )
        .await
        .unwrap();
    }
    wait_until("it runs once", Duration::from_secs(10), || async {
        Ok(placement(&both, &["c".to_owned()].into_iter().collect())
            .await
            .is_ok())
    })
    .await
    .unwrap();

    // A name held by n0, released, then taken by n1.
    nodes[0]
        .command(&ClusterCmd::RegRegister { name: "r".into() })
        .await
        .unwrap();
    wait_until("n1 sees n0's name", Duration::from_secs(5), || async {
        Ok(owner(&nodes[1], "r").await == json!("n0"))
    })
    .await
    .unwrap();
    nodes[0]
        .command(&ClusterCmd::RegUnregister { name: "r".into() })
        .await
        .unwrap();
    wait_until("n1 sees it released", Duration::from_secs(5), || async {
        Ok(owner(&nodes[1], "r").await.is_null())
    })
    .await
    .unwrap();
    nodes[1]
        .command(&ClusterCmd::RegRegister { name: "r".into() })
        .await
        .unwrap();
    for n in &both {
        wait_until(
            &format!("{}: n1 holds the name", n.name()),
            Duration::from_secs(5),
            || async { Ok(owner(n, "r").await == json!("n1")) },
        )
        .await
        .unwrap();
    }
    // Two nodes cannot tell whose clock is wrong: neither moved.
    for n in &both {
        assert_eq!(correction(n).await, 0, "{}", n.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_written_5_s_behind_supersedes_the_version_it_has_seen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flags.db").display().to_string();
    let bin = env!("CARGO_BIN_EXE_flags-testnode");
    let f0 = TestNode::start(bin, "f0", &["--store".to_string(), db.clone()])
        .await
        .unwrap();
    let f1 = TestNode::start(
        bin,
        "f1",
        &[
            "--store".to_string(),
            db.clone(),
            "--seed".to_string(),
            f0.addr(),
        ],
    )
    .await
    .unwrap();
    for n in [&f0, &f1] {
        wait_until("mesh", Duration::from_secs(5), || async {
            Ok(n.up_members().await?.len() == 1)
        })
        .await
        .unwrap();
    }
    f1.skew_clock(-SKEW_MS).await.unwrap();
    for round in 0..3 {
        f0.command(&FlagsCmd::Enable { flag: "f".into() })
            .await
            .unwrap();
        for n in [&f0, &f1] {
            wait_until(
                &format!("round {round}: {} sees f on", n.name()),
                Duration::from_secs(5),
                || async { Ok(check(n).await) },
            )
            .await
            .unwrap();
        }
        // Written by the node 5 s behind, after it saw f0's version.
        f1.command(&FlagsCmd::Disable { flag: "f".into() })
            .await
            .unwrap();
        for n in [&f0, &f1] {
            wait_until(
                &format!("round {round}: {} sees f off", n.name()),
                Duration::from_secs(5),
                || async { Ok(!check(n).await) },
            )
            .await
            .unwrap();
        }
    }
}
