//! The cluster registry over real node processes: propagation, remote refs, taken names,
//! unregistration, actor stop and node death.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use actor_cluster_tests::cluster_node::ClusterCmd;
use std::time::Duration;

use actor_testkit::{wait_until, TestNode};
use common::*;
use serde_json::{json, Value};

async fn owner(node: &TestNode, name: &str) -> Value {
    node.command(&ClusterCmd::RegOwner { name: name.into() })
        .await
        .unwrap()
}

async fn wait_owner(nodes: &[TestNode], name: &str, expect: Value) {
    for n in nodes {
        let expect = expect.clone();
        wait_until(
            &format!("{} sees {name} owned by {expect}", n.name()),
            Duration::from_secs(5),
            || {
                let expect = expect.clone();
                async move { Ok(owner(n, name).await == expect) }
            },
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_reach_every_node_within_milliseconds() {
    let mut nodes = chain(5, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    // Registry replicas exchange state when they see each other; let the first digests pass.
    let n = 1000u64;
    let times: Vec<u64> = serde_json::from_value(
        nodes[0]
            .command(&ClusterCmd::RegRegisterMany {
                prefix: "svc-".into(),
                count: n,
            })
            .await
            .unwrap(),
    )
    .unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("svc-{i}")).collect();
    let mut lat = Vec::new();
    for node in &nodes[1..] {
        let seen_all = ClusterCmd::RegSeen {
            names: names.clone(),
        };
        wait_until(
            &format!("{} sees all {n} names", node.name()),
            Duration::from_secs(10),
            || async {
                let seen: Vec<Option<u64>> = node.command_as(&seen_all).await?;
                Ok(seen.iter().all(Option::is_some))
            },
        )
        .await
        .unwrap();
        let seen: Vec<Option<u64>> = node.command_as(&seen_all).await.unwrap();
        for (t_reg, t_seen) in times.iter().zip(seen) {
            lat.push(t_seen.unwrap().saturating_sub(*t_reg) as f64 / 1e3);
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    println!(
        "registration visible on the other 4 nodes: p50 {:.0} us, p99 {:.0} us, max {:.0} us over {} observations",
        p(0.5),
        p(0.99),
        p(1.0),
        lat.len()
    );

    // A remote lookup gives a working ref.
    assert_eq!(
        nodes[3]
            .command(&ClusterCmd::RegCall {
                name: "svc-7".into(),
                text: "hi".into()
            })
            .await
            .unwrap(),
        json!("n0:hi")
    );
    // A taken name is refused with its holder, on any node.
    let err = nodes[2]
        .command(&ClusterCmd::RegRegister {
            name: "svc-7".into(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AlreadyRegistered:n0"), "{err}");

    // Unregistering removes the name everywhere.
    nodes[0]
        .command(&ClusterCmd::RegUnregister {
            name: "svc-1".into(),
        })
        .await
        .unwrap();
    wait_owner(&nodes, "svc-1", Value::Null).await;
    // An actor that stops loses its names everywhere.
    nodes[0]
        .command(&ClusterCmd::RegStopActor {
            name: "svc-2".into(),
        })
        .await
        .unwrap();
    wait_owner(&nodes, "svc-2", Value::Null).await;
    // And the name is free again.
    nodes[4]
        .command(&ClusterCmd::RegRegister {
            name: "svc-2".into(),
        })
        .await
        .unwrap();
    wait_owner(&nodes, "svc-2", json!("n4")).await;

    // A node that dies loses its entries on the survivors.
    nodes[4].kill().await.unwrap();
    wait_owner(&nodes[..4], "svc-2", Value::Null).await;
    wait_owner(&nodes[..4], "svc-3", json!("n0")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_later_gets_the_full_state() {
    let mut nodes = chain(2, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    nodes[0]
        .command(&ClusterCmd::RegRegisterMany {
            prefix: "a-".into(),
            count: 50,
        })
        .await
        .unwrap();
    nodes[1]
        .command(&ClusterCmd::RegRegisterMany {
            prefix: "b-".into(),
            count: 50,
        })
        .await
        .unwrap();
    let late = TestNode::start(BIN, "late", &args(&["--seed", &nodes[0].addr()]))
        .await
        .unwrap();
    wait_until(
        "the late node sees all 100 names",
        Duration::from_secs(5),
        || async {
            let names: Vec<String> =
                serde_json::from_value(late.command(&ClusterCmd::RegNames).await?)
                    .unwrap_or_default();
            Ok(names.len() == 100)
        },
    )
    .await
    .unwrap();
    assert_eq!(owner(&late, "b-49").await, json!("n1"));
}
