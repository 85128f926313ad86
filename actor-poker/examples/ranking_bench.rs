//! Ranking benchmark: events per second of the incremental ranking and of the naive design, for
//! 1,000 and 10,000 players, on SQLite and Postgres in one run, and memory per ranking actor.
//!
//! `cargo run --release -p actor-poker --example ranking_bench [-- --pg postgres://...]`
//!
//! Events come from the simulator, generated before the clock starts; database writes are
//! excluded. The tournament is stored as it stands half-way (table documents with their hand
//! history), and each actor starts from that: the incremental one loads it once and applies the
//! second half's events; the naive one reads every table of the tournament, parses, sorts and
//! publishes on every event. Output: one JSON line per figure.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use actor_poker::actor::{
    NaiveRanking, RankingArgs, RankingMsg, RankingOptions, TournamentRanking,
};
use actor_poker::model::HandFinished;
use actor_poker::{PokerStore, Ranking, SimConfig, TournamentSim, TournamentSnapshot};
use clap::Parser;
use ractor::Actor;
use serde_json::json;

#[derive(Parser, Debug)]
struct Args {
    /// Postgres database (a schema of its own is created in it, and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pg: String,
    /// Rounds of the in-process measurements (the median is printed).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

struct Workload {
    half: TournamentSnapshot,
    events: Vec<HandFinished>,
}

fn workload(players: u32) -> Workload {
    let mut sim = TournamentSim::new(u64::from(players), SimConfig::new(players).seed(42));
    let mut writes = Vec::new();
    while let Some(w) = sim.play_hand() {
        writes.push(w);
    }
    let half = writes.len() / 2;
    let mut sim = TournamentSim::new(u64::from(players), SimConfig::new(players).seed(42));
    for _ in 0..half {
        sim.play_hand();
    }
    Workload {
        half: sim.snapshot("bench"),
        events: writes.into_iter().skip(half).map(|w| w.event).collect(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn load(store: &PokerStore, w: &Workload) {
    let info = &w.half.info;
    assert!(store.create_tournament(info, &w.half.tables).await.unwrap());
}

fn actor_args(store: &PokerStore, w: &Workload) -> RankingArgs {
    RankingArgs {
        tournament: w.half.info.id,
        store: store.clone(),
        options: RankingOptions::default(),
    }
}

/// Events per second through a ranking actor's mailbox (cast them all, then one call that
/// queues behind them).
async fn actor_rate<A>(actor: A, a: RankingArgs, events: &[HandFinished], batch: usize) -> f64
where
    A: Actor<Msg = RankingMsg, Arguments = RankingArgs>,
{
    let (r, h) = Actor::spawn(None, actor, a).await.unwrap();
    // The load is done once the first call is answered.
    ractor::call_t!(r, RankingMsg::Summary, 600_000).unwrap();
    // Messages are built before the clock starts: on a node they arrive decoded.
    let msgs: Vec<RankingMsg> = if batch <= 1 {
        events.iter().map(|e| RankingMsg::Hand(e.clone())).collect()
    } else {
        events
            .chunks(batch)
            .map(|c| RankingMsg::Hands(c.to_vec()))
            .collect()
    };
    let t = Instant::now();
    for m in msgs {
        r.cast(m).unwrap();
    }
    let s = ractor::call_t!(r, RankingMsg::Summary, 600_000).unwrap();
    let el = t.elapsed();
    assert_eq!(s.applied as usize, events.len());
    r.stop(None);
    h.await.unwrap();
    events.len() as f64 / el.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().unwrap();
    let admin = sqlx::PgPool::connect(&args.pg)
        .await
        .expect("Postgres must be reachable (--pg)");
    let schema = format!("ranking_bench_{}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if args.pg.contains('?') { '&' } else { '?' };
    let pg_url = format!("{}{sep}options=-c%20search_path%3D{schema}", args.pg);
    let stores = [
        (
            "sqlite",
            PokerStore::open(&dir.path().join("bench.db").display().to_string())
                .await
                .unwrap(),
        ),
        ("postgres", PokerStore::open(&pg_url).await.unwrap()),
    ];

    for players in [1_000u32, 10_000] {
        let w = workload(players);
        let n = w.events.len();

        // The core alone.
        let mut rates = Vec::new();
        for _ in 0..args.rounds {
            let mut r = Ranking::from_snapshot(&w.half);
            let t = Instant::now();
            for e in &w.events {
                r.apply(e).unwrap();
            }
            let el = t.elapsed();
            std::hint::black_box(r.range(0, 10));
            rates.push(n as f64 / el.as_secs_f64());
        }
        let core = median(rates);
        println!(
            "{}",
            json!({"bench": "ranking", "design": "incremental", "layer": "core", "players": players,
                   "events": n, "events_per_sec": core.round(), "ns_per_event": (1e9 / core).round()})
        );

        // Memory: the ranking state's heap, from its capacities (an RSS difference cannot
        // isolate it: the allocator reuses what generating the workload freed).
        let one = Ranking::from_snapshot(&w.half);
        println!(
            "{}",
            json!({"bench": "ranking", "metric": "memory_per_actor", "players": players,
                   "bytes": one.heap_bytes() + std::mem::size_of::<Ranking>()})
        );

        for (label, store) in &stores {
            load(store, &w).await;
            let mut inc = 0.0;
            for batch in [1usize, 64] {
                let mut rates = Vec::new();
                for _ in 0..args.rounds {
                    rates.push(
                        actor_rate(TournamentRanking, actor_args(store, &w), &w.events, batch)
                            .await,
                    );
                }
                let rate = median(rates);
                if batch == 1 {
                    inc = rate;
                }
                println!(
                    "{}",
                    json!({"bench": "ranking", "design": "incremental", "layer": "actor", "store": label,
                           "players": players, "events": n, "events_per_message": batch,
                           "events_per_sec": rate.round(), "ns_per_event": (1e9 / rate).round()})
                );
            }
            // The naive design reads the whole tournament per event: a bounded sample of events.
            let budget = Duration::from_secs(3);
            let sample = {
                let probe =
                    actor_rate(NaiveRanking, actor_args(store, &w), &w.events[..5], 1).await;
                ((budget.as_secs_f64() * probe) as usize)
                    .clamp(20, 2_000)
                    .min(n)
            };
            let naive =
                actor_rate(NaiveRanking, actor_args(store, &w), &w.events[..sample], 1).await;
            println!(
                "{}",
                json!({"bench": "ranking", "design": "naive", "layer": "actor", "store": label,
                       "players": players, "events": sample, "events_per_sec": (naive * 10.0).round() / 10.0,
                       "ms_per_event": 1e3 / naive})
            );
            println!(
                "{}",
                json!({"bench": "ranking", "metric": "speedup", "store": label, "players": players,
                       "incremental_over_naive": (inc / naive).round()})
            );
        }
    }
    for (_, s) in &stores {
        s.close().await;
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
