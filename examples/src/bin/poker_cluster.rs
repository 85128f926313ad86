//! The poker workload on a small cluster: two nodes run ranking actors; a third member plays a
//! tournament against a SQLite database and subscribes to its standings from another node.
//! All three run in this process for brevity; the `demo` runs them as separate processes.
//!
//! `cargo run -p examples --bin poker_cluster`
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::supervisor::DistributedSupervisor;
use actor_cluster::Node;
use actor_poker::actor::{RankingOptions, StandingsUpdate};
use actor_poker::driver::{open_tournament, play_tournament, DriverOptions, Progress};
use actor_poker::{subscribe, PokerStore, SimConfig, TournamentSim};
use ractor::{Actor, ActorProcessingErr, ActorRef};

/// Prints the leader whenever the standings change.
struct Watcher;

impl Actor for Watcher {
    type Msg = StandingsUpdate;
    /// Players left at the last line printed.
    type State = u32;
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<StandingsUpdate>,
        _: (),
    ) -> Result<u32, ActorProcessingErr> {
        Ok(u32::MAX)
    }

    async fn handle(
        &self,
        _: ActorRef<StandingsUpdate>,
        msg: StandingsUpdate,
        last_alive: &mut u32,
    ) -> Result<(), ActorProcessingErr> {
        let StandingsUpdate::Update(d) = msg;
        // One line per 25 players busted, and one at the end.
        if d.alive / 25 != *last_alive / 25 || (d.alive == 1 && *last_alive != 1) {
            *last_alive = d.alive;
            if let Some(top) = d.top.first() {
                println!(
                    "hand {:>4}: {:>3} players left; leader player-{:05} with {} chips",
                    d.through, d.alive, top.player, top.stack
                );
            }
        }
        Ok(())
    }
}

async fn node(name: &str, seeds: Vec<String>) -> Result<Node, Box<dyn std::error::Error>> {
    Ok(Node::builder(name)
        .listen("127.0.0.1:0".parse()?)
        .cookie("poker")
        .seeds(seeds)
        .start()
        .await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = PokerStore::open(&dir.path().join("poker.db").display().to_string()).await?;

    // Two nodes that run ranking actors, and a member that plays the tournament.
    let n1 = node("n1", vec![]).await?;
    let n2 = node("n2", vec![n1.addr().to_string()]).await?;
    let player = node("table-server", vec![n1.addr().to_string()]).await?;
    let s1 = actor_poker::start_supervisor(&n1, &store, RankingOptions::default()).await?;
    let s2 = actor_poker::start_supervisor(&n2, &store, RankingOptions::default()).await?;
    let sup = DistributedSupervisor::builder(actor_poker::SUPERVISOR)
        .start(&player)
        .await?;
    while sup.eligible_members().await?.len() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A subscriber on n2 (pg groups span the cluster, so it could be on any node).
    let (watcher, _) = Actor::spawn(None, Watcher, ()).await?;
    subscribe(1, &watcher);

    let sim = TournamentSim::new(1, SimConfig::new(200).turbo().seed(11));
    let opts = DriverOptions::default();
    let on = open_tournament(&store, &sup, &sim, "Sunday Turbo", &opts).await?;
    println!("the ranking actor of tournament 1 runs on {on}");
    let out = play_tournament(&store, &sup, sim, &opts, &Arc::new(Progress::default())).await?;
    println!(
        "finished after {} hands; the final standings are stored (the actor read the database {} time)",
        out.hands, out.ranking.loads
    );
    for row in store.final_standings(1).await?.iter().take(5) {
        println!("  {}. player-{:05}", row.position, row.player);
    }
    let truth = store.snapshot(1).await?.recompute();
    println!(
        "stored standings equal a recomputation from the database: {}",
        store.final_standings(1).await? == truth
    );
    s1.stop();
    s2.stop();
    Ok(())
}
