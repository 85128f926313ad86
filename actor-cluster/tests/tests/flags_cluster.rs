//! Flags across node processes: a change on one node is visible on all; a restarted node
//! serves the current flags before it reports ready; with the store stopped, reads go on and
//! writes fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use actor_cluster_tests::flags_node::FlagsCmd;
use actor_testkit::redis::OwnRedis;
use std::time::{Duration, Instant};

use actor_testkit::{wait_until, TestNode};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_flags-testnode");

async fn cluster(n: usize, store: &str) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..n {
        let mut a = vec!["--store".to_string(), store.to_string()];
        if let Some(first) = nodes.first() {
            a.extend(["--seed".to_string(), first.addr()]);
        }
        nodes.push(TestNode::start(BIN, &format!("f{i}"), &a).await.unwrap());
    }
    for node in &nodes {
        wait_until("full mesh", Duration::from_secs(5), || async {
            Ok(node.up_members().await?.len() == n - 1)
        })
        .await
        .unwrap();
    }
    nodes
}

async fn check(n: &TestNode, flag: &str) -> bool {
    n.command(&FlagsCmd::Check { flag: flag.into() })
        .await
        .unwrap()
        == json!(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_every_node_and_a_restarted_node_serves_current_flags() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flags.db").display().to_string();
    let mut nodes = cluster(5, &db).await;
    let t = Instant::now();
    nodes[0]
        .command(&FlagsCmd::Enable {
            flag: "checkout_v2".into(),
        })
        .await
        .unwrap();
    for n in &nodes {
        wait_until(
            &format!("{} sees the flag on", n.name()),
            Duration::from_secs(2),
            || async { Ok(check(n, "checkout_v2").await) },
        )
        .await
        .unwrap();
    }
    println!(
        "enabled on f0, on everywhere after {:?} (including the control round trips)",
        t.elapsed()
    );
    nodes[3]
        .command(&FlagsCmd::Disable {
            flag: "checkout_v2".into(),
        })
        .await
        .unwrap();
    for n in &nodes {
        wait_until("off everywhere", Duration::from_secs(2), || async {
            Ok(!check(n, "checkout_v2").await)
        })
        .await
        .unwrap();
    }
    nodes[1]
        .command(&FlagsCmd::Enable {
            flag: "checkout_v2".into(),
        })
        .await
        .unwrap();
    for n in &nodes {
        wait_until("on everywhere", Duration::from_secs(2), || async {
            Ok(check(n, "checkout_v2").await)
        })
        .await
        .unwrap();
    }
    // A node killed and restarted answers with the current state at once: it loads every flag
    // before it reports ready.
    nodes[4].kill().await.unwrap();
    nodes[4].restart().await.unwrap();
    assert!(
        check(&nodes[4], "checkout_v2").await,
        "the restarted node serves the current flags"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_stopped_reads_go_on_and_writes_fail() {
    let mut redis = OwnRedis::start().expect("redis-server on the PATH");
    let url = format!("redis://127.0.0.1:{}", redis.port);
    wait_until("own redis answers", Duration::from_secs(10), || async {
        Ok(std::net::TcpStream::connect(("127.0.0.1", redis.port)).is_ok())
    })
    .await
    .unwrap();
    let nodes = cluster(3, &url).await;
    nodes[0]
        .command(&FlagsCmd::Enable {
            flag: "kept".into(),
        })
        .await
        .unwrap();
    for n in &nodes {
        wait_until("on everywhere", Duration::from_secs(2), || async {
            Ok(check(n, "kept").await)
        })
        .await
        .unwrap();
    }
    redis.child.kill().unwrap();
    redis.child.wait().unwrap();
    for n in &nodes {
        assert!(check(n, "kept").await, "{} still serves the flag", n.name());
        let err = n
            .command(&FlagsCmd::Disable {
                flag: "kept".into(),
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("flag store"), "{err}");
        assert!(check(n, "kept").await);
    }
}
