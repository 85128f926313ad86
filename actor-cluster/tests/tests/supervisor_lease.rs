//! Leases over real node processes: with quorum placement, a node frozen (SIGSTOP) for longer
//! than its lease does no work for its entities once it runs again, though it has not yet
//! noticed that it lost its majority: the entities' work, logged with wall-clock times, never
//! overlaps between the frozen node and the majority that took them over.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use actor_cluster_tests::cluster_node::tally::{EntCmd, TallyInfo};
use actor_cluster_tests::cluster_node::ClusterCmd;
use actor_testkit::{unix_ns, wait_until, TestNode};
use common::*;
use serde_json::Value;

async fn ent(n: &TestNode, cmd: EntCmd) -> Value {
    n.command(&ClusterCmd::Ent(cmd)).await.unwrap()
}

/// Each tick of a tally: (ns since the Unix epoch, node).
fn ticks(dir: &Path, id: &str) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(dir.join(format!("{id}.log"))).unwrap_or_default();
    let mut out: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("tick")).then_some(())?;
            Some((w.next()?.parse().ok()?, w.next()?.to_owned()))
        })
        .collect();
    out.sort();
    out
}

/// Whether each of `ids` ticked at least `min` times after `since` (on nodes other than
/// `not_on`).
fn ticked(dir: &Path, ids: &[String], since: u64, not_on: Option<&str>, min: usize) -> bool {
    ids.iter().all(|id| {
        ticks(dir, id)
            .iter()
            .filter(|(t, n)| *t > since && not_on != Some(n.as_str()))
            .count()
            >= min
    })
}

/// The runs of one tally's ticks: consecutive ticks on one node, in time order.
fn runs(ticks: &[(u64, String)]) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    for (t, n) in ticks {
        match out.last_mut() {
            Some((node, _, end)) if node == n => *end = *t,
            _ => out.push((n.clone(), *t, *t)),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_frozen_past_its_lease_does_no_work_once_it_thaws() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let mut nodes = chain(3, &["--tally-dir", &d, "--quorum", "n0,n1,n2"]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(10)).await;
    wait_eligible(&nodes.iter().collect::<Vec<_>>(), 3).await;
    let ids: Vec<String> = (0..15).map(|i| format!("t{i}")).collect();
    for id in &ids {
        let r = ent(
            &nodes[0],
            EntCmd::Start {
                id: id.clone(),
                label: "tick".into(),
                tick_ms: 20,
            },
        )
        .await;
        assert!(r["err"].is_null(), "start {id}: {r}");
    }
    let mut on: BTreeMap<String, String> = BTreeMap::new();
    for id in &ids {
        let r = ent(&nodes[0], EntCmd::Info { id: id.clone() }).await;
        let info: TallyInfo = serde_json::from_value(r["ok"].clone()).unwrap();
        on.insert(id.clone(), info.node);
    }
    let victim = ["n2", "n1"]
        .into_iter()
        .find(|v| on.values().any(|n| n == v))
        .expect("some tally runs on n1 or n2");
    let vi = nodes.iter().position(|n| n.name() == victim).unwrap();
    let theirs: Vec<String> = on
        .iter()
        .filter(|(_, n)| *n == victim)
        .map(|(id, _)| id.clone())
        .collect();
    wait_until("every tally ticks", Duration::from_secs(10), || async {
        Ok(ids.iter().all(|id| ticks(dir.path(), id).len() >= 5))
    })
    .await
    .unwrap();

    let frozen_at = unix_ns();
    nodes[vi].freeze().unwrap();
    let p = dir.path();
    let took = wait_until(
        "the majority runs the frozen node's tallies",
        Duration::from_secs(20),
        || async { Ok(ticked(p, &theirs, frozen_at, Some(victim), 1)) },
    )
    .await
    .unwrap();
    println!(
        "{} tallies of {victim} tick on the majority {took:?} after the freeze",
        theirs.len()
    );
    wait_until(
        "they tick there a while",
        Duration::from_secs(10),
        || async { Ok(ticked(p, &theirs, frozen_at, Some(victim), 20)) },
    )
    .await
    .unwrap();
    let thawed_at = unix_ns();
    nodes[vi].thaw().unwrap();
    wait_until(
        &format!("{victim} runs none of its old tallies"),
        Duration::from_secs(20),
        || async { Ok(local(&nodes[vi]).await.is_empty()) },
    )
    .await
    .unwrap();
    // A while after the thaw, so that a copy still working on the thawed node would show.
    wait_until(
        "the tallies tick on after the thaw",
        Duration::from_secs(10),
        || async { Ok(ticked(p, &theirs, thawed_at, None, 25)) },
    )
    .await
    .unwrap();

    for id in &ids {
        let r = runs(&ticks(dir.path(), id));
        let mut seen: Vec<&str> = Vec::new();
        for (node, _, _) in &r {
            assert!(
                !seen.contains(&node.as_str()),
                "{id} worked on {node} again after another node: {r:?}"
            );
            seen.push(node);
        }
    }
    for id in &theirs {
        let r = runs(&ticks(dir.path(), id));
        let (first, second) = (&r[0], &r[1]);
        println!(
            "{id}: last tick on {victim} {} ms after the freeze, first on {} {} ms after the freeze",
            (first.2 as i64 - frozen_at as i64) / 1_000_000,
            second.0,
            (second.1 as i64 - frozen_at as i64) / 1_000_000
        );
        assert!(first.2 < second.1);
    }
}
