//! A planned move of the reference workload: two node processes run the ranking actors of 10
//! tournaments; the node holding the most is drained before play, and its ranking actors move
//! to the other node with their standings, without reading the database. The tournaments are
//! then played to the end and checked against the database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use actor_cluster_tests::poker_node::PokerCmd;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::supervisor::DistributedSupervisor;
use actor_cluster::Node;
use actor_poker::driver::{open_tournament, play_tournament, DriverOptions, Progress};
use actor_poker::{child_id, PokerStore, SimConfig, TournamentSim};
use actor_testkit::{wait_until, TestNode};

const BIN: &str = env!("CARGO_BIN_EXE_poker-testnode");
const TOURNAMENTS: u64 = 10;
const PLAYERS: u32 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_ranking_actor_moves_with_its_standings_and_reads_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("poker.db").display().to_string();
    let store = PokerStore::open_with(&url, 8).await.unwrap();
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..2 {
        let mut args = vec!["--store".to_string(), url.clone()];
        if let Some(first) = nodes.first() {
            args.extend(["--seed".to_string(), first.addr()]);
        }
        nodes.push(TestNode::start(BIN, &format!("d{i}"), &args).await.unwrap());
    }
    let driver = Node::builder("drain-driver")
        .listen("127.0.0.1:0".parse().unwrap())
        .cookie("poker")
        .seeds([nodes[0].addr()])
        .start()
        .await
        .unwrap();
    driver
        .wait_for_members(2, Duration::from_secs(20))
        .await
        .unwrap();
    let dsup = DistributedSupervisor::builder(actor_poker::SUPERVISOR)
        .start(&driver)
        .await
        .unwrap();
    wait_until(
        "the driver knows both ranking nodes' supervisors",
        Duration::from_secs(20),
        || async {
            let known = dsup.eligible_members().await.unwrap_or_default();
            Ok(nodes.iter().all(|n| known.iter().any(|k| k == n.name())))
        },
    )
    .await
    .unwrap();
    for n in &nodes {
        wait_until("full mesh", Duration::from_secs(20), || async {
            Ok(n.up_members().await?.len() == 2)
        })
        .await
        .unwrap();
    }

    let opts = DriverOptions::default();
    let mut sims = Vec::new();
    for t in 0..TOURNAMENTS {
        let sim = TournamentSim::new(900 + t, SimConfig::new(PLAYERS).hyper().seed(t));
        open_tournament(&store, &dsup, &sim, &format!("drain #{t}"), &opts)
            .await
            .unwrap();
        sims.push(sim);
    }
    let mut most = (0, Vec::new());
    for (i, n) in nodes.iter().enumerate() {
        let local: Vec<String> =
            serde_json::from_value(n.command(&PokerCmd::Local).await.unwrap()).unwrap();
        if local.len() > most.1.len() {
            most = (i, local);
        }
    }
    let (drained, moved) = most;
    assert!(!moved.is_empty());
    nodes[drained].command(&PokerCmd::Drain).await.unwrap();
    let other = nodes[1 - drained].name().to_owned();
    wait_until(
        "the drained node's ranking actors run on the other node",
        Duration::from_secs(10),
        || async {
            Ok(moved.iter().all(|id| {
                dsup.registry()
                    .entry(id)
                    .is_some_and(|e| e.owner.node == other)
            }))
        },
    )
    .await
    .unwrap();

    let progress = Arc::new(Progress::default());
    let mut tasks = Vec::new();
    for sim in sims {
        let (store, dsup, opts, progress) =
            (store.clone(), dsup.clone(), opts.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let id = sim.id();
            (
                id,
                play_tournament(&store, &dsup, sim, &opts, &progress).await,
            )
        }));
    }
    let (mut loads, mut handoffs) = (0, 0);
    for task in tasks {
        let (id, out) = tokio::time::timeout(Duration::from_secs(300), task)
            .await
            .expect("tournament finished in time")
            .unwrap();
        let out = out.unwrap_or_else(|e| panic!("tournament {id}: {e}"));
        let snap = store.snapshot(id).await.unwrap();
        assert_eq!(snap.info.seq, out.hands);
        let stored = store.final_standings(id).await.unwrap();
        assert_eq!(stored, snap.recompute(), "tournament {id}: final standings");
        let was_moved = moved.contains(&child_id(id));
        // One read of the database when it opened; a planned move adds none.
        assert_eq!(out.ranking.loads, 1, "tournament {id}: {:?}", out.ranking);
        assert_eq!(
            out.ranking.handoffs,
            u64::from(was_moved),
            "tournament {id}: {:?}",
            out.ranking
        );
        loads += out.ranking.loads;
        handoffs += out.ranking.handoffs;
    }
    println!(
        "drained {} holding {} of {TOURNAMENTS} ranking actors: {handoffs} moved with their \
         standings; database reads by all ranking actors {loads} (one each, at open)",
        nodes[drained].name(),
        moved.len()
    );
    dsup.stop();
    store.close().await;
}
