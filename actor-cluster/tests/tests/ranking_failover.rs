//! The reference workload across real processes, on SQLite and on Postgres: 3 node processes run
//! the ranking actors of 50 tournaments of 1,000 players while this process (a fourth cluster
//! member that runs no ranking actor) plays the tournaments against the database. Mid-play, the
//! node holding the most ranking actors is killed with SIGKILL. Every tournament must end with
//! final standings (stored by its ranking actor from memory) equal to a recomputation from the
//! database's table documents: no hand lost or counted twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use common::poker::{most_ranking_actors, poker_cluster};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_poker::driver::{open_tournament, play_tournament, DriverOptions, Progress};
use actor_poker::{child_id, PokerStore, SimConfig, TournamentSim};
use actor_testkit::wait_until;

const TOURNAMENTS: u64 = 50;
const PLAYERS: u32 = 1000;

/// One run at a time: each starts four cluster members and loads both cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn failover_run(url: &str, label: &str, seed: u64) {
    let store = PokerStore::open_with(url, 16).await.unwrap();
    let (mut nodes, _driver, dsup) = poker_cluster(url, label, 3).await;

    // 50 tournaments, each with its ranking actor somewhere in the cluster.
    let base = seed * 1000;
    let opts = DriverOptions::default();
    let progress = Arc::new(Progress::default());
    let mut sims = Vec::new();
    for t in 0..TOURNAMENTS {
        let sim = TournamentSim::new(base + t, SimConfig::new(PLAYERS).hyper().seed(seed + t));
        open_tournament(&store, &dsup, &sim, &format!("{label} #{t}"), &opts)
            .await
            .unwrap();
        sims.push(sim);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for sim in sims {
        let (store, dsup, opts, progress) =
            (store.clone(), dsup.clone(), opts.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            play_tournament(&store, &dsup, sim, &opts, &progress).await
        }));
    }

    // Mid-play: kill the node with the most ranking actors.
    let expected_hands = TOURNAMENTS * 1400;
    wait_until(
        "a third of the hands are played",
        Duration::from_secs(300),
        || async { Ok(progress.hands.load(Ordering::Relaxed) >= expected_hands / 3) },
    )
    .await
    .unwrap();
    let most = most_ranking_actors(&nodes).await;
    let (victim, moved) = most;
    let victim_name = nodes[victim].name().to_owned();
    let hands_at_kill = progress.hands.load(Ordering::Relaxed);
    nodes[victim].kill().await.unwrap();
    let failover = wait_until(
        "the victim's ranking actors run elsewhere",
        Duration::from_secs(30),
        || async {
            Ok(moved.iter().all(|id| {
                dsup.registry()
                    .entry(id)
                    .is_some_and(|e| e.owner.node != victim_name)
                    || actor_poker_finished(&progress)
            }))
        },
    )
    .await
    .unwrap();

    let mut outcomes = HashMap::new();
    for (t, task) in tasks.into_iter().enumerate() {
        let out = tokio::time::timeout(Duration::from_secs(600), task)
            .await
            .expect("tournament finished in time")
            .unwrap()
            .unwrap_or_else(|e| panic!("tournament {t}: {e}"));
        outcomes.insert(base + t as u64, out);
    }
    let run_time = started.elapsed();

    // Ground truth: every tournament's final standings, as its ranking actor stored them, equal
    // the recomputation from the table documents; every hand was applied once.
    let mut total_hands = 0;
    let (mut loads, mut dups) = (0, 0);
    for t in 0..TOURNAMENTS {
        let id = base + t;
        let snap = store.snapshot(id).await.unwrap();
        let out = outcomes[&id];
        assert_eq!(
            snap.info.status,
            actor_poker::model::TournamentStatus::Finished
        );
        assert_eq!(
            snap.info.seq, out.hands,
            "tournament {id}: hands in the database"
        );
        let truth = snap.recompute();
        assert_eq!(truth.len(), PLAYERS as usize);
        assert_eq!(truth.iter().filter(|r| !r.busted).count(), 1);
        assert_eq!(
            truth.iter().map(|r| r.stack).sum::<u64>(),
            u64::from(PLAYERS) * 10_000,
            "chips conserved"
        );
        let stored = store.final_standings(id).await.unwrap();
        assert_eq!(stored, truth, "tournament {id}: stored final standings");
        assert_eq!(out.ranking.through, snap.info.seq);
        assert!(out.ranking.finished);
        total_hands += out.hands;
        loads += out.ranking.loads;
        dups += out.ranking.duplicates;
        // Terminated through the supervisor: no ranking actor left.
        assert!(dsup.lookup_child(&child_id(id)).is_none());
    }
    println!(
        "{label}: {TOURNAMENTS} tournaments x {PLAYERS} players, {total_hands} hands in {:.1} s; \
         killed {victim_name} holding {} of the ranking actors after {hands_at_kill} hands; \
         they ran elsewhere {:.0} ms after the kill; database loads by the final actors {loads}, \
         duplicate events {dups}; all {TOURNAMENTS} final standings equal the recomputation",
        run_time.as_secs_f64(),
        moved.len(),
        failover.as_secs_f64() * 1000.0,
    );
    assert!(!moved.is_empty());
    dsup.stop();
    store.close().await;
}

fn actor_poker_finished(p: &Progress) -> bool {
    p.finished.load(Ordering::Relaxed) == TOURNAMENTS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_mid_play_loses_no_hand() {
    let _g = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("poker.db").display().to_string();
    failover_run(&db, "sqlite", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_mid_play_loses_no_hand() {
    let _g = SERIAL.lock().await;
    let schema = format!(
        "poker_test_{}_{}",
        std::process::id(),
        actor_testkit::unix_ns() % 1_000_000_000
    );
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .expect("Postgres on 127.0.0.1:5432 (database test) must be running for this test");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let url =
        format!("postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D{schema}");
    failover_run(&url, "postgres", 2).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
