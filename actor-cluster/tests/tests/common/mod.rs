//! Helpers shared by the multi-process cluster tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

pub mod poker;

use actor_cluster_tests::cluster_node::ClusterCmd;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actor_cluster::{DownReason, MemberEvent};
use actor_testkit::{wait_until, TestNode};

pub const BIN: &str = env!("CARGO_BIN_EXE_cluster-testnode");

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Starts `n` nodes named n0..; node i > 0 gets node i-1 as its only seed.
pub async fn chain(n: usize, extra: &[&str]) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..n {
        let mut a = args(extra);
        if let Some(prev) = nodes.last() {
            a.push("--seed".into());
            a.push(prev.addr());
        }
        nodes.push(TestNode::start(BIN, &format!("n{i}"), &a).await.unwrap());
    }
    nodes
}

pub fn names(nodes: &[TestNode], except: &[&str]) -> BTreeSet<String> {
    nodes
        .iter()
        .map(|n| n.name().to_string())
        .filter(|n| !except.contains(&n.as_str()))
        .collect()
}

/// Waits until every node in `nodes` (except `except`) sees exactly the others as up.
pub async fn wait_mesh(nodes: &mut [TestNode], except: &[&str], timeout: Duration) -> Duration {
    let all = names(nodes, except);
    let began = std::time::Instant::now();
    for node in nodes.iter_mut() {
        if except.contains(&node.name()) {
            continue;
        }
        let mut expect = all.clone();
        expect.remove(node.name());
        let left = timeout.saturating_sub(began.elapsed());
        let name = node.name().to_string();
        let node: &TestNode = node;
        wait_until(&format!("{name} sees {expect:?}"), left, move || {
            let expect = expect.clone();
            async move { Ok(node.up_members().await? == expect) }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; log: {}", node.log_path().display()));
    }
    began.elapsed()
}

/// The wall-clock time (ns) at which `node` reported `victim` down, if it has.
pub fn down_at(node: &TestNode, victim: &str, after_ns: u64) -> Option<(u64, DownReason)> {
    node.events().into_iter().find_map(|(at, e)| match e {
        MemberEvent::MemberDown { node: n, reason } if n.name == victim && at >= after_ns => {
            Some((at, reason))
        }
        _ => None,
    })
}

/// The wall-clock time (ns) at which `node` reported `peer` up after `after_ns`.
pub fn up_at(node: &TestNode, peer: &str, after_ns: u64) -> Option<u64> {
    node.events().into_iter().find_map(|(at, e)| match e {
        MemberEvent::MemberUp(n) if n.name == peer && at >= after_ns => Some(at),
        _ => None,
    })
}

/// Waits until `cond` holds for every node listed (events are pushed by the nodes).
pub async fn wait_events(
    nodes: &[&TestNode],
    what: &str,
    timeout: Duration,
    cond: impl Fn(&TestNode) -> bool,
) {
    wait_until(what, timeout, || {
        let ok = nodes.iter().all(|n| cond(n));
        async move { Ok(ok) }
    })
    .await
    .unwrap();
}

/// The distributed supervisor's children running on `n`, by its own account.
pub async fn local(n: &TestNode) -> Vec<String> {
    serde_json::from_value(n.command(&ClusterCmd::DsupLocal).await.unwrap()).unwrap()
}

/// Waits until every node's supervisor knows the kinds of `count` supervisors.
pub async fn wait_eligible(nodes: &[&TestNode], count: usize) {
    for n in nodes {
        wait_until(
            &format!("{} knows every supervisor", n.name()),
            Duration::from_secs(5),
            || async {
                let v: Vec<String> =
                    serde_json::from_value(n.command(&ClusterCmd::DsupEligible).await?)
                        .unwrap_or_default();
                Ok(v.len() == count)
            },
        )
        .await
        .unwrap();
    }
}

/// Where each id runs, by the nodes' own account; an error if an id runs twice or one of `ids`
/// runs nowhere (or an unexpected id runs).
pub async fn placement(
    nodes: &[&TestNode],
    ids: &BTreeSet<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut seen = BTreeMap::new();
    for n in nodes {
        for id in local(n).await {
            if let Some(other) = seen.insert(id.clone(), n.name().to_string()) {
                return Err(format!("{id} runs on {other} and {}", n.name()));
            }
        }
    }
    if seen.keys().cloned().collect::<BTreeSet<_>>() != *ids {
        return Err(format!("{} of {} run", seen.len(), ids.len()));
    }
    Ok(seen)
}

/// Cuts `nodes[i]` off from every other node (fault injection on both sides) and waits until
/// each side has the other down.
pub async fn isolate(nodes: &[TestNode], i: usize) {
    let t_cut = actor_testkit::unix_ns();
    let lone = nodes[i].name().to_owned();
    let rest: Vec<String> = nodes
        .iter()
        .filter(|n| n.name() != lone)
        .map(|n| n.name().to_owned())
        .collect();
    let rest_refs: Vec<&str> = rest.iter().map(String::as_str).collect();
    nodes[i].block(&rest_refs).await.unwrap();
    for n in nodes.iter().filter(|n| n.name() != lone) {
        n.block(&[lone.as_str()]).await.unwrap();
    }
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_events(&all, "the partition is seen", Duration::from_secs(4), |n| {
        if n.name() == lone {
            rest.iter().all(|o| down_at(n, o, t_cut).is_some())
        } else {
            down_at(n, &lone, t_cut).is_some()
        }
    })
    .await;
}
