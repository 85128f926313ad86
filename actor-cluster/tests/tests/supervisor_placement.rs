//! Distributed supervisor placement over real node processes: quorum under a partition (no
//! overlapping lifetimes), active redistribution on join, and a rolling restart with state
//! handoff.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use actor_cluster_tests::cluster_node::ClusterCmd;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actor_testkit::{unix_ns, wait_until, TestNode};
use common::*;
use serde_json::json;

/// Waits until every node is settled (no start, stop or move pending) and every child runs
/// exactly once; returns where each runs.
async fn wait_placed(
    nodes: &[&TestNode],
    ids: &BTreeSet<String>,
    timeout: Duration,
) -> BTreeMap<String, String> {
    let found = parking_lot::Mutex::new(BTreeMap::new());
    wait_until(
        "settled, every child running exactly once",
        timeout,
        || async {
            for n in nodes {
                if n.command(&ClusterCmd::DsupPending).await? != json!(0) {
                    return Ok(false);
                }
            }
            match placement(nodes, ids).await {
                Ok(p) => {
                    *found.lock() = p;
                    Ok(true)
                }
                Err(_) => Ok(false),
            }
        },
    )
    .await
    .unwrap();
    found.into_inner()
}

/// Lifetimes per id from the children's start/stop log: (node, start, stop or u64::MAX).
fn lifetimes(log: &str) -> BTreeMap<String, Vec<(String, u64, u64)>> {
    let mut open: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<(String, u64, u64)>> = BTreeMap::new();
    let mut lines: Vec<(u64, &str, String, String)> = log
        .lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            Some((
                p.get(3)?.parse().ok()?,
                *p.first()?,
                p.get(1)?.to_string(),
                p.get(2)?.to_string(),
            ))
        })
        .collect();
    lines.sort();
    for (t, what, id, node) in lines {
        match what {
            "start" => {
                open.insert((id, node), t);
            }
            _ => {
                if let Some(s) = open.remove(&(id.clone(), node.clone())) {
                    out.entry(id).or_default().push((node, s, t));
                }
            }
        }
    }
    for ((id, node), s) in open {
        out.entry(id).or_default().push((node, s, u64::MAX));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_partition_2_1_never_overlaps_lifetimes() {
    let log = std::env::temp_dir().join(format!("quorum-{}-{}.log", std::process::id(), unix_ns()));
    let l = log.display().to_string();
    let mut nodes = chain(3, &["--quorum", "n0,n1,n2", "--child-log", &l]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_eligible(&all, 3).await;
    let ids: BTreeSet<String> = (0..30).map(|i| format!("q{i}")).collect();
    nodes[0]
        .command(&ClusterCmd::DsupStartMany {
            prefix: "q".into(),
            count: 30,
            crash: false,
        })
        .await
        .unwrap();
    let before = wait_placed(&all, &ids, Duration::from_secs(10)).await;
    let on_minority = before.values().filter(|n| *n == "n2").count();
    assert!(on_minority > 0);

    // Partition {n0, n1} | {n2}.
    nodes[0].block(&["n2"]).await.unwrap();
    nodes[1].block(&["n2"]).await.unwrap();
    nodes[2].block(&["n0", "n1"]).await.unwrap();
    let majority: Vec<&TestNode> = nodes[..2].iter().collect();
    let took = wait_until(
        "the majority runs every child",
        Duration::from_secs(10),
        || async { Ok(placement(&majority, &ids).await.is_ok()) },
    )
    .await
    .unwrap();
    println!(
        "{on_minority} children of the minority restarted on the majority {took:?} after the cut"
    );
    assert!(
        local(&nodes[2]).await.is_empty(),
        "the minority stopped its children"
    );
    // The minority refuses new children.
    let err = nodes[2]
        .command(&ClusterCmd::DsupStart {
            id: "new".into(),
            kind: "counter".into(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("quorum"), "{err}");

    // No two lifetimes of one id overlap.
    let text = std::fs::read_to_string(&log).unwrap();
    for (id, spans) in lifetimes(&text) {
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                assert!(
                    a.2 <= b.1 || b.2 <= a.1,
                    "{id}: lifetimes overlap: {a:?} and {b:?}"
                );
            }
        }
    }

    // Heal: exactly one per id.
    for n in &nodes {
        n.unblock_all().await.unwrap();
    }
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_placed(&all, &ids, Duration::from_secs(5)).await;
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_redistribution_moves_about_a_quarter_to_a_new_node() {
    let mut nodes = chain(3, &["--active"]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_eligible(&all, 3).await;
    let n: usize = 400;
    let ids: BTreeSet<String> = (0..n).map(|i| format!("a{i}")).collect();
    nodes[0]
        .command(&ClusterCmd::DsupStartMany {
            prefix: "a".into(),
            count: n as u64,
            crash: false,
        })
        .await
        .unwrap();
    let before = wait_placed(&all, &ids, Duration::from_secs(10)).await;
    let seed = nodes[2].addr();
    nodes.push(
        TestNode::start(BIN, "n3", &args(&["--active", "--seed", &seed]))
            .await
            .unwrap(),
    );
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_eligible(&all, 4).await;
    let after = wait_placed(&all, &ids, Duration::from_secs(10)).await;
    let moved = ids
        .iter()
        .filter(|id| before.get(*id) != after.get(*id))
        .count();
    let to_new = after.values().filter(|v| *v == "n3").count();
    println!("{moved} of {n} children moved, {to_new} to the new node");
    assert!(
        (n / 6..=n / 3).contains(&to_new),
        "{to_new} on the new node"
    );
    assert_eq!(moved, to_new, "only moves to the new node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_no_child_and_hands_state_over() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_eligible(&all, 3).await;
    let n = 30u64;
    let ids: BTreeSet<String> = (0..n).map(|i| format!("r{i}")).collect();
    nodes[0]
        .command(&ClusterCmd::DsupStartMany {
            prefix: "r".into(),
            count: n,
            crash: false,
        })
        .await
        .unwrap();
    wait_placed(&all, &ids, Duration::from_secs(10)).await;
    for i in 0..n {
        nodes[1]
            .command(&ClusterCmd::DsupBump {
                id: format!("r{i}"),
                n: i + 1,
            })
            .await
            .unwrap();
    }
    // A call from the same node follows its casts: every bump has landed.
    for i in 0..n {
        let v = nodes[1]
            .command(&ClusterCmd::DsupGet {
                id: format!("r{i}"),
            })
            .await
            .unwrap();
        assert_eq!(v, json!(i + 1));
    }
    for k in 0..3 {
        let t = std::time::Instant::now();
        nodes[k].command(&ClusterCmd::DsupDrain).await.unwrap();
        nodes[k].leave().await.unwrap();
        let rest: Vec<&TestNode> = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != k)
            .map(|(_, n)| n)
            .collect();
        wait_placed(&rest, &ids, Duration::from_secs(10)).await;
        println!(
            "n{k} drained and left; its children run elsewhere after {:?}",
            t.elapsed()
        );
        for i in 0..n {
            let v = rest[0]
                .command(&ClusterCmd::DsupGet {
                    id: format!("r{i}"),
                })
                .await
                .unwrap();
            assert_eq!(
                v,
                json!(i + 1),
                "r{i} kept its state through the handoff from n{k}"
            );
        }
        nodes[k].restart().await.unwrap();
        wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
        let all: Vec<&TestNode> = nodes.iter().collect();
        wait_eligible(&all, 3).await;
    }
}
