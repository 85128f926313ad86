//! Churn over real node processes: three nodes start and terminate 10,000 short-lived
//! children in waves of 500, each wave started on one node and terminated from another. Every
//! node's replica of the child table stays the size of a wave or two (its tombstones are
//! collected once every member has seen them), and is empty once the churn stops.
//! The simulator runs the same at a million children
//! (`cargo run --release -p actor-cluster-proto --example sim -- --churn 1000000`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::time::Duration;

use actor_cluster_tests::cluster_node::ClusterCmd;
use actor_testkit::{wait_until, TestNode};
use common::*;
use serde_json::Value;

async fn count(n: &TestNode) -> Value {
    n.command(&ClusterCmd::DsupCount).await.unwrap()
}

fn field(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_short_lived_children_leave_every_replica_flat() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    wait_eligible(&nodes.iter().collect::<Vec<_>>(), nodes.len()).await;
    let waves = 20u64;
    let wave = 500u64;
    let mut most_rows = Vec::new();
    for w in 0..waves {
        let prefix = format!("w{w}-");
        let (on, off) = ((w % 3) as usize, ((w + 1) % 3) as usize);
        nodes[on]
            .command(&ClusterCmd::DsupStartMany {
                prefix: prefix.clone(),
                count: wave,
                crash: false,
            })
            .await
            .unwrap();
        wait_until(
            "the wave reaches the terminating node",
            Duration::from_secs(10),
            || async { Ok(field(&count(&nodes[off]).await, "specs") == wave) },
        )
        .await
        .unwrap();
        let done = nodes[off]
            .command(&ClusterCmd::DsupTerminateMany {
                prefix,
                count: wave,
            })
            .await
            .unwrap();
        assert_eq!(done.as_u64(), Some(wave));
        let mut rows = 0;
        for n in &nodes {
            let c = count(n).await;
            rows = rows.max(field(&c, "rows"));
        }
        println!(
            "wave {w}: {} children so far, largest replica {rows} rows",
            (w + 1) * wave
        );
        most_rows.push(rows);
    }
    // Flat: the second half's largest replica is no larger than a few waves, however many
    // children came before (without collection it would hold every one: 5,500 to 10,000).
    // A tombstone waits for every member's ack (asked for every 2 s) and a wave takes about
    // a second in a debug build, so up to four waves are seen waiting (1,975 rows, once).
    let late = most_rows[most_rows.len() / 2..]
        .iter()
        .max()
        .copied()
        .unwrap();
    assert!(late <= 5 * wave, "replicas grew: {most_rows:?}");
    let took = wait_until(
        "every tombstone is collected",
        Duration::from_secs(30),
        || async {
            for n in &nodes {
                let c = count(n).await;
                if field(&c, "rows") != 0 || field(&c, "specs") != 0 {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await
    .unwrap();
    println!("every replica empty {took:?} after the last termination");
    for n in &nodes {
        assert_eq!(
            local(n).await,
            Vec::<String>::new(),
            "{} still runs children",
            n.name()
        );
    }
}
