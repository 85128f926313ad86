//! A node that joins a running cluster through one seed starts no copy of a child that runs on a
//! member it has not met yet: 3 nodes run 12 children, a 4th joins through one seed (a different
//! one each round), 20 rounds, and the children's start log must show no start on the newcomer
//! (placement is passive: every child already runs, so nothing is its to start).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use actor_cluster_tests::cluster_node::ClusterCmd;
use std::collections::BTreeSet;
use std::time::Duration;

use actor_testkit::{unix_ns, wait_until, TestNode};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_starts_no_duplicates_in_20_rounds() {
    let log = std::env::temp_dir().join(format!("join-{}-{}.log", std::process::id(), unix_ns()));
    let l = log.display().to_string();
    let mut nodes = chain(3, &["--child-log", &l]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_eligible(&all, 3).await;
    let ids: BTreeSet<String> = (0..12).map(|i| format!("j{i}")).collect();
    nodes[0]
        .command(&ClusterCmd::DsupStartMany {
            prefix: "j".into(),
            count: 12,
            crash: false,
        })
        .await
        .unwrap();
    wait_until("12 children run once", Duration::from_secs(10), || async {
        Ok(placement(&all, &ids).await.is_ok())
    })
    .await
    .unwrap();

    let mut duplicates = Vec::new();
    for round in 0..20 {
        let seed = nodes[round % 3].addr();
        let joiner = TestNode::start(BIN, "n3", &args(&["--child-log", &l, "--seed", &seed]))
            .await
            .unwrap();
        nodes.push(joiner);
        wait_mesh(&mut nodes, &[], Duration::from_secs(10)).await;
        let all: Vec<&TestNode> = nodes.iter().collect();
        wait_eligible(&all, 4).await;
        // Settled: nothing pending anywhere, and still every child exactly once.
        let settled = wait_until(
            "settled after the join",
            Duration::from_secs(10),
            || async {
                for n in &all {
                    if n.command(&ClusterCmd::DsupPending).await? != json!(0) {
                        return Ok(false);
                    }
                }
                Ok(placement(&all, &ids).await.is_ok())
            },
        )
        .await;
        if let Err(e) = settled {
            let mut status = Vec::new();
            for n in &all {
                let names: Vec<String> = all.iter().map(|x| x.name().to_owned()).collect();
                status.push(format!(
                    "{}: pending {:?}, synced {:?}",
                    n.name(),
                    n.command(&ClusterCmd::DsupPending).await,
                    n.command(&ClusterCmd::DsupSynced { nodes: names }).await
                ));
            }
            panic!(
                "round {round}: {e}; {status:?}; placement: {:?}",
                placement(&all, &ids).await
            );
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let starts: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("start ") && l.split_whitespace().nth(2) == Some("n3"))
            .map(str::to_owned)
            .collect();
        if !starts.is_empty() {
            duplicates.push((round, starts));
        }
        let mut joiner = nodes.pop().unwrap();
        joiner.leave().await.unwrap();
        drop(joiner);
        wait_mesh(&mut nodes, &[], Duration::from_secs(10)).await;
        // The log is per run: the next round counts only its own starts.
        std::fs::write(&log, "").unwrap();
    }
    let _ = std::fs::remove_file(&log);
    println!("20 rounds, {} with duplicate starts", duplicates.len());
    assert!(
        duplicates.is_empty(),
        "the joining node started children that ran elsewhere: {duplicates:?}"
    );
}
