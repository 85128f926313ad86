//! A name registered on both sides of a partition: after the heal, the older registration
//! wins everywhere and the loser's actor is stopped with reason `NameConflict`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use actor_cluster_tests::cluster_node::ClusterCmd;
use std::time::Duration;

use actor_testkit::wait_until;
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_after_a_heal_resolves_to_the_older_registration() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    // Partition {n0} | {n1, n2}.
    isolate(&nodes, 0).await;

    // n1 registers first (older), n0 second (newer), each on its own side.
    nodes[1]
        .command(&ClusterCmd::RegRegister {
            name: "leader".into(),
        })
        .await
        .unwrap();
    nodes[0]
        .command(&ClusterCmd::RegRegister {
            name: "leader".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        nodes[0]
            .command(&ClusterCmd::RegOwner {
                name: "leader".into()
            })
            .await
            .unwrap(),
        json!("n0")
    );
    // n1's registration reaches n2 (its side of the partition) by a delta, not at once.
    wait_until(
        "n2 sees n1's registration",
        Duration::from_secs(5),
        || async {
            Ok(nodes[2]
                .command(&ClusterCmd::RegOwner {
                    name: "leader".into(),
                })
                .await?
                == json!("n1"))
        },
    )
    .await
    .unwrap();

    let t_heal = std::time::Instant::now();
    for n in &nodes {
        n.unblock_all().await.unwrap();
    }
    for n in &nodes {
        wait_until(
            &format!("{} agrees on n1", n.name()),
            Duration::from_secs(5),
            || async {
                Ok(n.command(&ClusterCmd::RegOwner {
                    name: "leader".into(),
                })
                .await?
                    == json!("n1"))
            },
        )
        .await
        .unwrap();
    }
    wait_until(
        "n0's loser actor stopped with NameConflict",
        Duration::from_secs(5),
        || async {
            Ok(nodes[0]
                .command(&ClusterCmd::RegExitReason {
                    name: "leader".into(),
                })
                .await?
                == json!("NameConflict"))
        },
    )
    .await
    .unwrap();
    println!("conflict resolved {:?} after the heal", t_heal.elapsed());
    // The winner's actor still runs and answers from every node.
    for n in &nodes {
        assert_eq!(
            n.command(&ClusterCmd::RegCall {
                name: "leader".into(),
                text: "x".into()
            })
            .await
            .unwrap(),
            json!("n1:x")
        );
    }
    assert_eq!(
        nodes[1]
            .command(&ClusterCmd::RegExitReason {
                name: "leader".into()
            })
            .await
            .unwrap(),
        Value::Null
    );
}
