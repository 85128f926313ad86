//! The distributed supervisor over real node processes: failover after kill -9, duplicates
//! after a freeze resolved to one, and a crash-looping child isolated from its siblings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use actor_cluster_tests::cluster_node::ClusterCmd;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use actor_testkit::{wait_until, TestNode};
use common::*;
use serde_json::json;

type Which = Vec<(String, Option<String>, String)>;

async fn which(n: &TestNode) -> Which {
    serde_json::from_value(n.command(&ClusterCmd::DsupWhich).await.unwrap()).unwrap()
}

/// Every id runs on exactly one of `nodes` (by their own account), and all `ids` run.
async fn exactly_once(nodes: &[&TestNode], ids: &BTreeSet<String>) -> Result<(), String> {
    placement(nodes, ids).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_node_restarts_its_children_on_the_survivors_exactly_once() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let n = 1000u64;
    let ids: BTreeSet<String> = (0..n).map(|i| format!("c{i}")).collect();
    wait_eligible(&nodes.iter().collect::<Vec<_>>(), nodes.len()).await;
    nodes[0]
        .command(&ClusterCmd::DsupStartMany {
            prefix: "c".into(),
            count: n,
            crash: false,
        })
        .await
        .unwrap();
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_until(
        "all children run exactly once",
        Duration::from_secs(10),
        || async { Ok(exactly_once(&all, &ids).await.is_ok()) },
    )
    .await
    .unwrap();
    let per: Vec<usize> =
        futures::future::join_all(nodes.iter().map(|n| async { local(n).await.len() })).await;
    println!("children per node: {per:?}");
    // which_children agrees on every node.
    wait_until("which_children agrees", Duration::from_secs(5), || async {
        let a = which(&nodes[0]).await;
        Ok(a.len() == n as usize && a == which(&nodes[1]).await && a == which(&nodes[2]).await)
    })
    .await
    .unwrap();

    // kill -9 of the node with the most children.
    let victim = (0..3).max_by_key(|i| per[*i]).unwrap();
    let t_kill = Instant::now();
    nodes[victim].kill().await.unwrap();
    let survivors: Vec<&TestNode> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, n)| n)
        .collect();
    let took = wait_until(
        "every child runs exactly once on the survivors",
        Duration::from_secs(10),
        || async { Ok(exactly_once(&survivors, &ids).await.is_ok()) },
    )
    .await
    .unwrap();
    println!(
        "failover of {} children after kill -9: every child running exactly once again {:?} after the kill ({:?} measured by polling)",
        per[victim],
        t_kill.elapsed(),
        took
    );
    assert!(took <= Duration::from_secs(5), "failover took {took:?}");
    wait_until(
        "which_children agrees on the survivors",
        Duration::from_secs(5),
        || async {
            let a = which(survivors[0]).await;
            Ok(a.iter().all(|(_, node, _)| node.is_some()) && a == which(survivors[1]).await)
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_removes_the_node_s_temporary_children_and_restarts_only_the_permanent_ones() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    wait_eligible(&nodes.iter().collect::<Vec<_>>(), nodes.len()).await;
    let n = 30u64;
    nodes[0]
        .command(&ClusterCmd::DsupStartMany {
            prefix: "p".into(),
            count: n,
            crash: false,
        })
        .await
        .unwrap();
    nodes[0]
        .command(&ClusterCmd::DsupStartTemporary {
            prefix: "t".into(),
            count: n,
        })
        .await
        .unwrap();
    let ids: BTreeSet<String> = (0..n)
        .flat_map(|i| [format!("p{i}"), format!("t{i}")])
        .collect();
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_until("all children run", Duration::from_secs(10), || async {
        Ok(exactly_once(&all, &ids).await.is_ok())
    })
    .await
    .unwrap();
    let at = placement(&all, &ids).await.unwrap();
    // The node with the most temporary children dies.
    let temps_on = |name: &str| {
        at.iter()
            .filter(|(id, node)| id.starts_with('t') && node.as_str() == name)
            .map(|(id, _)| id.clone())
            .collect::<BTreeSet<String>>()
    };
    let victim = (0..3)
        .max_by_key(|i| temps_on(nodes[*i].name()).len())
        .unwrap();
    let gone = temps_on(nodes[victim].name());
    assert!(!gone.is_empty(), "{at:?}");
    nodes[victim].kill().await.unwrap();
    let survivors: Vec<&TestNode> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, n)| n)
        .collect();
    let expected: BTreeSet<String> = ids.difference(&gone).cloned().collect();
    // The permanent children run again; the victim's temporary ones run nowhere, and every
    // survivor's table has dropped them.
    let last = parking_lot::Mutex::new(String::new());
    wait_until(
        "permanent children restarted, temporary ones removed",
        Duration::from_secs(10),
        || async {
            if let Err(e) = exactly_once(&survivors, &expected).await {
                *last.lock() = e;
                return Ok(false);
            }
            for s in &survivors {
                let listed: BTreeSet<String> =
                    which(s).await.into_iter().map(|(id, _, _)| id).collect();
                if listed != expected {
                    *last.lock() = format!(
                        "{} lists {:?} more and misses {:?}",
                        s.name(),
                        listed.difference(&expected).collect::<Vec<_>>(),
                        expected.difference(&listed).collect::<Vec<_>>()
                    );
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await
    .unwrap_or_else(|e| {
        let logs: Vec<_> = nodes
            .iter()
            .map(|n| n.log_path().display().to_string())
            .collect();
        panic!(
            "{e}: {}; victim {}; logs {logs:?}",
            last.lock(),
            nodes[victim].name()
        )
    });
    println!(
        "{} temporary children of the killed node removed, not restarted",
        gone.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_s_children_move_and_duplicates_resolve_after_it_thaws() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    wait_eligible(&nodes.iter().collect::<Vec<_>>(), nodes.len()).await;
    let n = 60u64;
    let ids: BTreeSet<String> = (0..n).map(|i| format!("f{i}")).collect();
    nodes[0]
        .command(&ClusterCmd::DsupStartMany {
            prefix: "f".into(),
            count: n,
            crash: false,
        })
        .await
        .unwrap();
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_until("all children run", Duration::from_secs(10), || async {
        Ok(exactly_once(&all, &ids).await.is_ok())
    })
    .await
    .unwrap();
    let frozen_had = local(&nodes[2]).await.len();
    assert!(frozen_had > 0);
    nodes[2].freeze().unwrap();
    let others: Vec<&TestNode> = nodes[..2].iter().collect();
    let took = wait_until(
        "the frozen node's children run on the others",
        Duration::from_secs(5),
        || async { Ok(exactly_once(&others, &ids).await.is_ok()) },
    )
    .await
    .unwrap();
    println!("{frozen_had} children of the frozen node restarted elsewhere after {took:?}");
    nodes[2].thaw().unwrap();
    let t = Instant::now();
    wait_until(
        "exactly one per id after the thaw",
        Duration::from_secs(3),
        || async { Ok(exactly_once(&all, &ids).await.is_ok()) },
    )
    .await
    .unwrap();
    println!("duplicates resolved {:?} after SIGCONT", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_child_fails_alone() {
    let mut nodes = chain(2, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    wait_eligible(&nodes.iter().collect::<Vec<_>>(), nodes.len()).await;
    nodes[0]
        .command(&ClusterCmd::DsupStartMany {
            prefix: "ok".into(),
            count: 4,
            crash: false,
        })
        .await
        .unwrap();
    let ok: BTreeSet<String> = (0..4).map(|i| format!("ok{i}")).collect();
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_until("siblings run", Duration::from_secs(5), || async {
        Ok(exactly_once(&all, &ok).await.is_ok())
    })
    .await
    .unwrap();
    for id in &ok {
        nodes[1]
            .command(&ClusterCmd::DsupBump {
                id: id.into(),
                n: 5,
            })
            .await
            .unwrap();
    }
    nodes[0]
        .command(&ClusterCmd::DsupStartMany {
            prefix: "bad".into(),
            count: 1,
            crash: true,
        })
        .await
        .unwrap();
    wait_until(
        "the crash-looping child is marked failed",
        Duration::from_secs(10),
        || async {
            Ok(which(&nodes[1])
                .await
                .iter()
                .any(|(id, _, status)| id == "bad0" && status.starts_with("Failed")))
        },
    )
    .await
    .unwrap();
    // Its siblings kept running, with their state.
    exactly_once(&all, &ok).await.unwrap();
    for id in &ok {
        assert_eq!(
            nodes[0]
                .command(&ClusterCmd::DsupGet { id: id.into() })
                .await
                .unwrap(),
            json!(5),
            "{id}"
        );
    }
    // And it is not restarted anywhere.
    for n in &nodes {
        assert!(!local(n).await.contains(&"bad0".to_string()));
    }
    // A call to it says it failed, and a call to an id nobody started says so (not a timeout
    // after the call's 5 s).
    let failed = nodes[1]
        .command(&ClusterCmd::DsupGet { id: "bad0".into() })
        .await
        .unwrap_err()
        .to_string();
    assert!(failed.contains("failed on"), "{failed}");
    let missing = nodes[1]
        .command(&ClusterCmd::DsupGet {
            id: "nobody".into(),
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("no child \"nobody\""), "{missing}");

    // start_child is idempotent by id and says where the child runs, from any node.
    let first = nodes[0]
        .command(&ClusterCmd::DsupStart {
            id: "solo".into(),
            kind: "counter".into(),
        })
        .await
        .unwrap();
    let again = nodes[1]
        .command(&ClusterCmd::DsupStart {
            id: "solo".into(),
            kind: "counter".into(),
        })
        .await
        .unwrap();
    assert_eq!(first, again);
    let solo = BTreeSet::from(["solo".to_string()]);
    let mut all_ids = ok.clone();
    all_ids.extend(solo);
    exactly_once(&all, &all_ids).await.unwrap();
    // A kind no node knows: a typed error, not a panic.
    let err = nodes[0]
        .command(&ClusterCmd::DsupStart {
            id: "x".into(),
            kind: "unknown".into(),
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no live node can run kind"),
        "{err}"
    );
}
