//! Typed entities over real node processes: a handler error reaches its caller and restarts
//! the entity once, an unknown id is answered at once, start-or-get says what it found, a call
//! is handled at most once when the entity's node is killed between delivery and reply, and a
//! drained entity moves with its state.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::path::Path;
use std::time::Duration;

use actor_cluster_tests::cluster_node::tally::{EntCmd, TallyInfo};
use actor_cluster_tests::cluster_node::ClusterCmd;
use actor_testkit::{wait_until, TestNode};
use common::*;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct Timed<T> {
    ok: Option<T>,
    err: Option<String>,
    micros: u64,
}

async fn ent<T: serde::de::DeserializeOwned>(n: &TestNode, cmd: EntCmd) -> Timed<T> {
    let v: Value = n.command(&ClusterCmd::Ent(cmd)).await.unwrap();
    serde_json::from_value(v).unwrap()
}

async fn count(n: &TestNode, id: &str, hold_ms: u64, timeout_ms: u64) -> Timed<u64> {
    ent(
        n,
        EntCmd::Count {
            id: id.into(),
            hold_ms,
            timeout_ms,
        },
    )
    .await
}

async fn start(n: &TestNode, id: &str, label: &str) -> (String, String) {
    let r: Timed<(String, String)> = ent(
        n,
        EntCmd::Start {
            id: id.into(),
            label: label.into(),
            tick_ms: 0,
        },
    )
    .await;
    r.ok.unwrap_or_else(|| panic!("start {id}: {:?}", r.err))
}

/// The lines a tally wrote: how many starts and how many calls handled.
fn lines(dir: &Path, id: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(dir.join(format!("{id}.log"))).unwrap_or_default();
    let starts = text.lines().filter(|l| l.starts_with("start ")).count();
    let calls = text.lines().filter(|l| l.starts_with("call ")).count();
    (starts, calls)
}

/// One test's cluster at a time: the timings they report are the toolkit's, not the load of
/// five clusters on two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn cluster(n: usize, dir: &Path) -> Vec<TestNode> {
    let d = dir.display().to_string();
    let mut nodes = chain(n, &["--tally-dir", &d, "--down-ms", "800"]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(10)).await;
    wait_eligible(&nodes.iter().collect::<Vec<_>>(), nodes.len()).await;
    nodes
}

/// Waits until every node's table holds `id` (a start is replicated, not instantaneous).
async fn seen_everywhere(nodes: &[TestNode], id: &str) {
    for n in nodes {
        wait_until(
            &format!("{} knows {id}", n.name()),
            Duration::from_secs(5),
            || async {
                let r = ent::<TallyInfo>(n, EntCmd::Info { id: id.into() }).await;
                Ok(r.ok.is_some())
            },
        )
        .await
        .unwrap();
    }
}

fn index_of(nodes: &[TestNode], name: &str) -> usize {
    nodes.iter().position(|n| n.name() == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_reaches_the_caller_and_restarts_the_entity_once() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(2, dir.path()).await;
    let (_, owner) = start(&nodes[0], "t1", "a").await;
    let other = 1 - index_of(&nodes, &owner);
    seen_everywhere(&nodes, "t1").await;
    let first = count(&nodes[other], "t1", 0, 5000).await;
    assert_eq!(first.ok, Some(1), "{:?}", first.err);

    // From the other node (a remote call) and from its own (a local one).
    for (round, caller) in [other, 1 - other].into_iter().enumerate() {
        let bad = ent::<u64>(&nodes[caller], EntCmd::Bad { id: "t1".into() }).await;
        let err = bad.err.expect("a failing handler is an error");
        assert!(
            err.contains("exited while handling") && err.contains("bad request"),
            "{err}"
        );
        println!("handler error seen by the caller after {} µs", bad.micros);
        assert!(bad.micros < 2_000_000, "{} µs", bad.micros);
        // One restart per bad request: the message is not delivered again.
        let want = round + 2;
        wait_until(
            "the tally restarts once",
            Duration::from_secs(5),
            || async { Ok(lines(dir.path(), "t1").0 == want) },
        )
        .await
        .unwrap();
        let info = ent::<TallyInfo>(&nodes[caller], EntCmd::Info { id: "t1".into() }).await;
        assert!(info.ok.is_some(), "{:?}", info.err);
    }
    // Still live, not failed, and not restarted again.
    let which: Vec<(String, Option<String>, String)> =
        serde_json::from_value(nodes[0].command(&ClusterCmd::DsupWhich).await.unwrap()).unwrap();
    let row = which.iter().find(|r| r.0 == "t1").unwrap();
    assert_eq!(row.2, "Live", "{which:?}");
    assert_eq!(lines(dir.path(), "t1"), (3, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_id_is_not_found_at_once_and_an_autostart_id_starts() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(2, dir.path()).await;
    let mut times = Vec::new();
    for caller in &nodes {
        let r = count(caller, "nobody", 0, 3000).await;
        let err = r.err.expect("an unknown id is an error");
        assert!(err.contains("no child \"nobody\""), "{err}");
        times.push(r.micros);
    }
    println!("not found answered after {times:?} µs");
    assert!(times.iter().all(|t| *t < 10_000), "{times:?} µs");
    // A kind with autostart starts the entity on its first message.
    assert_eq!(count(&nodes[1], "auto:x", 0, 5000).await.ok, Some(1));
    assert_eq!(count(&nodes[0], "auto:x", 0, 5000).await.ok, Some(2));
    assert_eq!(lines(dir.path(), "auto:x").0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_or_get_reports_already_started_and_different_args() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(2, dir.path()).await;
    let (first, node) = start(&nodes[0], "s1", "a").await;
    assert_eq!(first, "created");
    seen_everywhere(&nodes, "s1").await;
    let (again, node2) = start(&nodes[1], "s1", "a").await;
    assert_eq!((again.as_str(), &node2), ("already_started", &node));
    let (differ, _) = start(&nodes[1], "s1", "b").await;
    assert_eq!(differ, "args_differ");
    // The running entity keeps its own arguments.
    let info = ent::<TallyInfo>(&nodes[1], EntCmd::Info { id: "s1".into() }).await;
    assert_eq!(info.ok.map(|i| i.label), Some("a".to_owned()));
    assert_eq!(lines(dir.path(), "s1").0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_handled_at_most_once_when_its_node_is_killed_between_delivery_and_reply() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(3, dir.path()).await;
    let (_, owner) = start(&nodes[0], "k1", "a").await;
    seen_everywhere(&nodes, "k1").await;
    let victim = index_of(&nodes, &owner);
    let caller = (victim + 1) % 3;
    let (v, c) = if victim < caller {
        let (a, b) = nodes.split_at_mut(caller);
        (&mut a[victim], &b[0])
    } else {
        let (a, b) = nodes.split_at_mut(victim);
        (&mut b[0], &a[caller])
    };
    // The handler holds the reply for 4 s; its node is killed once the call was delivered.
    let call = count(c, "k1", 4000, 15_000);
    let kill = async {
        wait_until(
            "the call reached the tally",
            Duration::from_secs(5),
            || async { Ok(lines(dir.path(), "k1").1 == 1) },
        )
        .await
        .unwrap();
        v.kill().await.unwrap();
    };
    let (r, ()) = tokio::join!(call, kill);
    let err = r.err.expect("the call's entity died while handling it");
    assert!(err.contains("exited while handling"), "{err}");
    println!("caller told after {} ms: {err}", r.micros / 1000);
    // It restarts on a survivor; the call was not delivered there again.
    let survivor = &nodes[caller];
    let info = ent::<TallyInfo>(survivor, EntCmd::Info { id: "k1".into() }).await;
    let info = info.ok.unwrap_or_else(|| panic!("{:?}", info.err));
    assert_ne!(info.node, owner);
    assert_eq!(
        lines(dir.path(), "k1"),
        (2, 1),
        "one start per node, one call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_entity_moves_with_its_state() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(2, dir.path()).await;
    let (_, owner) = start(&nodes[0], "h1", "a").await;
    seen_everywhere(&nodes, "h1").await;
    let o = index_of(&nodes, &owner);
    for i in 1..=3 {
        assert_eq!(count(&nodes[1 - o], "h1", 0, 5000).await.ok, Some(i));
    }
    nodes[o].command(&ClusterCmd::DsupDrain).await.unwrap();
    let info = ent::<TallyInfo>(&nodes[1 - o], EntCmd::Info { id: "h1".into() }).await;
    let info = info.ok.unwrap_or_else(|| panic!("{:?}", info.err));
    assert_eq!(info.node, nodes[1 - o].name());
    assert!(info.handed_off, "{info:?}");
    assert_eq!(info.count, 3, "the count moved with the entity");
}
