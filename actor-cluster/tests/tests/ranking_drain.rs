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

mod common;

use actor_cluster_tests::poker_node::PokerCmd;
use common::poker::{most_ranking_actors, poker_cluster};
use std::sync::Arc;
use std::time::Duration;

use actor_poker::driver::{open_tournament, play_tournament, DriverOptions, Progress};
use actor_poker::{child_id, PokerStore, SimConfig, TournamentSim};
use actor_testkit::wait_until;

const TOURNAMENTS: u64 = 10;
const PLAYERS: u32 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_ranking_actor_moves_with_its_standings_and_reads_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("poker.db").display().to_string();
    let store = PokerStore::open_with(&url, 8).await.unwrap();
    let (nodes, _driver, dsup) = poker_cluster(&url, "drain", 2).await;

    let opts = DriverOptions::default();
    let mut sims = Vec::new();
    for t in 0..TOURNAMENTS {
        let sim = TournamentSim::new(900 + t, SimConfig::new(PLAYERS).hyper().seed(t));
        open_tournament(&store, &dsup, &sim, &format!("drain #{t}"), &opts)
            .await
            .unwrap();
        sims.push(sim);
    }
    let most = most_ranking_actors(&nodes).await;
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
