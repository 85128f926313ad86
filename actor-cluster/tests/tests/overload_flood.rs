//! A flood of remote casts at one node. Bounded sends drop (and count) what does not fit the
//! peer's outbound queue, or wait for room; everything admitted arrives; a call made during
//! the flood gets an answer or an "overloaded" error, never a timeout; and no node is declared
//! down, not even under ractor's own unbounded casts, because heartbeats overtake queued data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use actor_cluster_tests::cluster_node::ClusterCmd;
use actor_testkit::flood::{FloodCmd, FloodMode};
use std::time::Duration;

use actor_cluster::MemberEvent;
use actor_testkit::{wait_until, TestNode};
use common::{chain, wait_mesh};
use serde_json::{json, Value};

const LIMIT: u64 = 2000;

fn downs(nodes: &[TestNode]) -> Vec<(String, MemberEvent)> {
    nodes
        .iter()
        .flat_map(|n| {
            n.events()
                .into_iter()
                .filter(|(_, e)| matches!(e, MemberEvent::MemberDown { .. }))
                .map(|(_, e)| (n.name().to_owned(), e))
        })
        .collect()
}

async fn received(n: &TestNode) -> u64 {
    n.command(&ClusterCmd::Flood(FloodCmd::SinkCount))
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

/// Floods `to` from `from` and waits until the flood is over and every admitted message
/// arrived. Returns the final status. (`all` are the nodes, for their downs in a failure.)
async fn flood(all: &[TestNode], from: &TestNode, to: &TestNode, n: u64, mode: FloodMode) -> Value {
    let before = received(to).await;
    from.command(&ClusterCmd::Flood(FloodCmd::Flood {
        n,
        mode,
        to: Some(to.name().into()),
    }))
    .await
    .unwrap();
    // A call during the flood: an answer or a clear "overloaded", within its timeout.
    let call = from
        .command(&ClusterCmd::Flood(FloodCmd::CallSink {
            timeout_ms: 20_000,
            to: Some(to.name().into()),
        }))
        .await
        .unwrap();
    println!("{mode:?}: call during the flood: {call}");
    assert!(
        call["ok"].is_u64() || call["overloaded"] == json!(true),
        "the call failed otherwise: {call}"
    );
    let status = std::sync::Arc::new(parking_lot::Mutex::new(Value::Null));
    wait_until(&format!("{mode:?} flood delivered"), Duration::from_secs(120), || {
        let status = status.clone();
        async move {
            let st = from.command(&ClusterCmd::Flood(FloodCmd::FloodStatus)).await?;
            let done = st["done"] == json!(true);
            let sent = st["sent"].as_u64().unwrap_or(0);
            let got = received(to).await - before;
            *status.lock() = json!({"sent": sent, "dropped": st["dropped"], "failed": st["failed"], "received": got});
            Ok(done && got >= sent)
        }
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; last status {}; downs {:?}; logs {} {}",
            status.lock(),
            downs(all),
            from.log_path().display(),
            to.log_path().display()
        )
    });
    let status = status.lock().clone();
    println!("{mode:?}: {status}");
    assert_eq!(status["failed"], json!(0));
    assert_eq!(
        status["sent"].as_u64().unwrap() + status["dropped"].as_u64().unwrap(),
        n,
        "every cast was either sent or counted as dropped"
    );
    assert_eq!(
        status["received"], status["sent"],
        "every admitted message arrived exactly once"
    );
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_bounded_and_nobody_is_declared_down() {
    let mut nodes = chain(3, &["--max-outbound", &LIMIT.to_string()]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(15)).await;
    // The sinks are registered through process groups: wait until n1 sees n0's.
    wait_until("n1 finds n0's sink", Duration::from_secs(10), || async {
        let r = nodes[1]
            .command(&ClusterCmd::Flood(FloodCmd::CallSink {
                timeout_ms: 1000,
                to: Some("n0".into()),
            }))
            .await?;
        Ok(r["ok"].is_u64())
    })
    .await
    .unwrap();
    let (target, flooder) = (&nodes[0], &nodes[1]);

    let st = flood(&nodes, flooder, target, 300_000, FloodMode::Try).await;
    assert!(
        st["dropped"].as_u64().unwrap() > 0,
        "a flood far above the bound drops some casts: {st}"
    );

    let st = flood(&nodes, flooder, target, 100_000, FloodMode::Wait).await;
    assert_eq!(st["dropped"], json!(0), "waiting sends drop nothing: {st}");

    // ractor's own unbounded casts: slow to drain, but heartbeats overtake the queue.
    flood(&nodes, flooder, target, 300_000, FloodMode::Raw).await;

    let members = nodes[2].up_members().await.unwrap();
    assert_eq!(
        members.len(),
        2,
        "the observer still sees both: {members:?}"
    );
    assert!(downs(&nodes).is_empty(), "false downs: {:?}", downs(&nodes));
}
