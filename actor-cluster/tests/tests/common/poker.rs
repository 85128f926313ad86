//! The reference workload's test cluster: poker node processes that run the ranking actors,
//! and this process as a driver member that runs none.

use std::time::Duration;

use actor_cluster::supervisor::DistributedSupervisor;
use actor_cluster::Node;
use actor_cluster_tests::poker_node::PokerCmd;
use actor_testkit::{wait_until, TestNode};

pub const POKER_BIN: &str = env!("CARGO_BIN_EXE_poker-testnode");

/// `n` poker nodes named `{label}-n{i}` on the store `url` (each joining the first), a driver
/// node in this process and its supervisor; returns once every member sees the others and the
/// driver knows every node's supervisor.
pub async fn poker_cluster(
    url: &str,
    label: &str,
    n: usize,
) -> (Vec<TestNode>, Node, DistributedSupervisor) {
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..n {
        let mut args = vec!["--store".to_string(), url.to_string()];
        if let Some(first) = nodes.first() {
            args.extend(["--seed".to_string(), first.addr()]);
        }
        nodes.push(
            TestNode::start(POKER_BIN, &format!("{label}-n{i}"), &args)
                .await
                .unwrap(),
        );
    }
    let driver = Node::builder(format!("{label}-driver"))
        .listen("127.0.0.1:0".parse().unwrap())
        .cookie("poker")
        .seeds([nodes[0].addr()])
        .start()
        .await
        .unwrap();
    let dsup = DistributedSupervisor::builder(actor_poker::SUPERVISOR)
        .start(&driver)
        .await
        .unwrap();
    dsup.wait_for_members(n + 1, Duration::from_secs(20))
        .await
        .unwrap();
    for node in &nodes {
        wait_until("full mesh", Duration::from_secs(20), || async {
            Ok(node.up_members().await?.len() == n)
        })
        .await
        .unwrap();
    }
    (nodes, driver, dsup)
}

/// The ranking actors running on each node, and the index of the node with the most.
pub async fn most_ranking_actors(nodes: &[TestNode]) -> (usize, Vec<String>) {
    let mut most = (0, Vec::new());
    for (i, n) in nodes.iter().enumerate() {
        let local: Vec<String> =
            serde_json::from_value(n.command(&PokerCmd::Local).await.unwrap()).unwrap();
        if local.len() > most.1.len() {
            most = (i, local);
        }
    }
    most
}
