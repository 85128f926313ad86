//! The cluster registry over real node processes: propagation, remote refs, taken names,
//! unregistration, actor stop and node death.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::time::Duration;

use actor_testkit::{wait_until, TestNode};
use common::*;
use serde_json::{json, Value};

async fn owner(node: &TestNode, name: &str) -> Value {
    node.custom("reg_owner", json!({ "name": name }))
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
            .custom("reg_register_many", json!({"prefix": "svc-", "count": n}))
            .await
            .unwrap(),
    )
    .unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("svc-{i}")).collect();
    let mut lat = Vec::new();
    for node in &nodes[1..] {
        let names_v = json!(names);
        wait_until(
            &format!("{} sees all {n} names", node.name()),
            Duration::from_secs(10),
            || {
                let names_v = names_v.clone();
                async move {
                    let seen: Vec<Option<u64>> = serde_json::from_value(
                        node.custom("reg_seen", json!({"names": names_v})).await?,
                    )
                    .unwrap_or_default();
                    Ok(seen.iter().all(Option::is_some))
                }
            },
        )
        .await
        .unwrap();
        let seen: Vec<Option<u64>> = serde_json::from_value(
            node.custom("reg_seen", json!({"names": names}))
                .await
                .unwrap(),
        )
        .unwrap();
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
            .custom("reg_call", json!({"name": "svc-7", "text": "hi"}))
            .await
            .unwrap(),
        json!("n0:hi")
    );
    // A taken name is refused with its holder, on any node.
    let err = nodes[2]
        .custom("reg_register", json!({"name": "svc-7"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AlreadyRegistered:n0"), "{err}");

    // Unregistering removes the name everywhere.
    nodes[0]
        .custom("reg_unregister", json!({"name": "svc-1"}))
        .await
        .unwrap();
    wait_owner(&nodes, "svc-1", Value::Null).await;
    // An actor that stops loses its names everywhere.
    nodes[0]
        .custom("reg_stop_actor", json!({"name": "svc-2"}))
        .await
        .unwrap();
    wait_owner(&nodes, "svc-2", Value::Null).await;
    // And the name is free again.
    nodes[4]
        .custom("reg_register", json!({"name": "svc-2"}))
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
        .custom("reg_register_many", json!({"prefix": "a-", "count": 50}))
        .await
        .unwrap();
    nodes[1]
        .custom("reg_register_many", json!({"prefix": "b-", "count": 50}))
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
                serde_json::from_value(late.custom("reg_names", json!({})).await?)
                    .unwrap_or_default();
            Ok(names.len() == 100)
        },
    )
    .await
    .unwrap();
    assert_eq!(owner(&late, "b-49").await, json!("n1"));
}
