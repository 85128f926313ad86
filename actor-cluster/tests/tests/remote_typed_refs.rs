//! Typed remote refs: found by group name on other nodes, checked by message type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use actor_cluster_tests::cluster_node::ClusterCmd;
use std::time::Duration;

use actor_testkit::wait_until;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_refs_reach_remote_actors_and_a_wrong_type_finds_nothing() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let n0 = &nodes[0];
    wait_until(
        "n0 sees both remote echo actors",
        Duration::from_secs(5),
        || async { Ok(n0.command(&ClusterCmd::CountEcho { other: false }).await? == json!(2)) },
    )
    .await
    .unwrap();
    assert_eq!(
        n0.command(&ClusterCmd::CallEcho { text: "hi".into() })
            .await
            .unwrap(),
        json!(["n1:hi", "n2:hi"])
    );
    // Same group, same shape, another message type: not found (an unchecked conversion would
    // have given refs whose every message is dropped remotely).
    assert_eq!(
        n0.command(&ClusterCmd::CountEcho { other: true })
            .await
            .unwrap(),
        json!(0)
    );
}
