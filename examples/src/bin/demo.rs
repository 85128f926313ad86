//! The one-command demo: a local cluster of node processes on the embedded SQLite store plays
//! poker tournaments while you watch. Mid-run it switches a feature flag on and measures how
//! fast every node's cache has it, then kills (SIGKILL) the node holding the most ranking
//! actors and shows them restarted elsewhere. At the end it checks every tournament's final
//! standings against the database and prints a report.
//!
//! ```sh
//! cargo run -p examples --bin demo
//! cargo run -p examples --bin demo -- --nodes 5 --tournaments 20 --players 2000
//! cargo run -p examples --bin demo -- --store postgres://postgres@127.0.0.1:5432/test
//! cargo run -p examples --bin demo -- --keep-running     # then open the admin pages
//! ```
#![allow(clippy::print_stdout)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster_launch::{unix_ns, wait_until, NodeProcess};
use actor_poker::driver::{open_tournament, play_tournament, DriverOptions, Progress};
use actor_poker::{child_id, SimConfig, TournamentSim};
use clap::Parser;
use examples::app::child::AppCmd;
use examples::app::{App, NodeConfig};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The flag the demo switches on mid-run.
const FLAG: &str = "new_ranking_ui";

#[derive(Parser, Debug)]
#[command(about = "A local multi-node cluster playing poker tournaments, with a failover")]
struct Cli {
    /// Node processes to start.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Tournaments to play.
    #[arg(long, default_value_t = 12)]
    tournaments: u64,
    /// Players per tournament.
    #[arg(long, default_value_t = 1000)]
    players: u32,
    /// Roughly how long the tournaments play, in seconds.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// The database: a SQLite file or `postgres://...` (default: a new SQLite file in the
    /// system's temporary directory).
    #[arg(long)]
    store: Option<String>,
    /// RNG seed of the tournaments.
    #[arg(long, default_value_t = 1)]
    rng_seed: u64,
    /// After the report, keep the cluster running and serve the admin pages until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
    /// Three fifths in, a rolling deploy: each live node in turn gets SIGTERM, drains (its
    /// ranking actors move with their standings) and a fresh process takes its place.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    rolling_deploy: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if examples::app::child::is_node_process() {
        return examples::app::child::run();
    }
    examples::app::child::init_program_logging();
    let rt = tokio::runtime::Runtime::new()?;
    let code = rt.block_on(run_demo(Cli::parse()))?;
    drop(rt);
    std::process::exit(code);
}

// ---- the demo ----

struct Failover {
    node: String,
    /// The ranking actors that ran on the killed node.
    ids: Vec<String>,
    actors: usize,
    to: Vec<String>,
    took: Duration,
}

/// One node's turn in the rolling deploy.
struct Redeploy {
    node: String,
    moved: Vec<String>,
    /// SIGTERM until every moved ranking actor ran on another node.
    handoff: Duration,
    /// Until the fresh process's supervisor was known to the driver.
    back: Duration,
}

/// SIGTERM to `node`, which drains and leaves; returns once every one of `moved` runs on
/// another node (woken by the driver's registry events) and the process exited.
async fn redeploy_one(
    node: &mut NodeProcess,
    fresh_args: &[String],
    driver: &App,
    names: &[String],
) -> Result<Redeploy, Box<dyn std::error::Error>> {
    let name = node.name().to_owned();
    let moved = local_children(node).await;
    let registry = driver.dsup.registry();
    let mut events = registry.subscribe();
    let began = Instant::now();
    node.terminate(Duration::from_secs(30)).await?;
    let elsewhere = |id: &String| registry.entry(id).is_some_and(|e| e.owner.node != name);
    tokio::time::timeout(Duration::from_secs(30), async {
        while !moved.iter().all(elsewhere) {
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = events.recv().await {
                break;
            }
        }
    })
    .await?;
    let handoff = began.elapsed();
    // The new version: a fresh process under the same name, joining the live nodes.
    *node = NodeProcess::start(std::env::current_exe()?, &name, fresh_args).await?;
    driver
        .wait_for_nodes(names, Duration::from_secs(30))
        .await?;
    Ok(Redeploy {
        node: name,
        moved,
        handoff,
        back: began.elapsed(),
    })
}

async fn local_children(n: &NodeProcess) -> Vec<String> {
    match n.command(&AppCmd::Local).await {
        Ok(v) => serde_json::from_value(v).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// A line above the progress bars (or plain, when they are not drawn: not a terminal).
fn say(mp: &MultiProgress, line: String) {
    if mp.is_hidden() {
        println!("{line}");
    } else {
        let _ = mp.println(line);
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn run_demo(cli: Cli) -> Result<i32, Box<dyn std::error::Error>> {
    let nodes_wanted = cli.nodes.max(1);
    let dir = std::env::temp_dir().join(format!("actor-toolkit-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store_url = cli
        .store
        .clone()
        .unwrap_or_else(|| dir.join("demo.db").display().to_string());
    let token = format!("demo-{:x}", unix_ns() ^ u64::from(std::process::id()));
    println!(
        "actor toolkit demo: {nodes_wanted} nodes, {} tournaments of {} players, store {store_url}",
        cli.tournaments, cli.players
    );

    // The driver: a cluster member of its own that runs no ranking actor. It opens the
    // database first, so the schema exists before the nodes start.
    let driver_cfg = NodeConfig::local("demo-driver", &store_url, "actor-toolkit-demo", Vec::new());
    let mp = MultiProgress::new();
    let spin = mp.add(ProgressBar::new_spinner());
    spin.enable_steady_tick(Duration::from_millis(100));
    spin.set_message("starting the driver");
    let driver_app_cfg = driver_cfg.clone();
    let exe = std::env::current_exe()?;
    let mut nodes: Vec<NodeProcess> = Vec::new();
    // Start the first node, then the driver and the others joining it.
    let node_args = |seed: Option<String>| {
        let mut a = vec![
            "--role".to_string(),
            "node".into(),
            "--store".into(),
            store_url.clone(),
            "--cookie".into(),
            "actor-toolkit-demo".into(),
            "--admin".into(),
            "127.0.0.1:0".into(),
            "--admin-token".into(),
            token.clone(),
        ];
        if let Some(s) = seed {
            a.extend(["--seed".to_string(), s]);
        }
        a
    };
    // The schema first (one process creates it).
    drop(actor_poker::PokerStore::open(&store_url).await?);
    examples::app::flag_store(&store_url).await?;
    for i in 0..nodes_wanted {
        spin.set_message(format!("starting node n{i}"));
        let seed = nodes.first().map(NodeProcess::addr);
        nodes.push(NodeProcess::start(&exe, &format!("n{i}"), &node_args(seed)).await?);
    }
    let driver = App::start(
        &NodeConfig {
            seeds: vec![nodes[0].addr()],
            ..driver_app_cfg
        },
        false,
    )
    .await?;
    spin.set_message("waiting for the cluster to form");
    let names: Vec<String> = nodes.iter().map(|n| n.name().to_owned()).collect();
    let formed = driver
        .wait_for_nodes(&names, Duration::from_secs(30))
        .await?;
    say(
        &mp,
        format!(
            "cluster formed: {} ({} + the driver) in {}",
            names.join(", "),
            nodes_wanted,
            ms(formed)
        ),
    );

    // Tournaments: play them in memory first to know the hand counts (the bars' totals).
    let base = unix_ns() / 1_000_000 % 1_000_000_000 * 1000;
    let mut sims = Vec::new();
    let mut total_hands = 0u64;
    let mut longest = 0u64;
    for t in 0..cli.tournaments {
        let cfg = SimConfig::new(cli.players).hyper().seed(cli.rng_seed + t);
        let sim = TournamentSim::new(base + t, cfg);
        let mut dry = sim.clone();
        let mut n = 0;
        while dry.play_hand().is_some() {
            n += 1;
        }
        total_hands += n;
        longest = longest.max(n);
        sims.push(sim);
    }
    let opts = DriverOptions {
        hand_delay: Some(Duration::from_secs_f64(
            cli.duration as f64 / longest.max(1) as f64,
        )),
        ..DriverOptions::default()
    };
    spin.set_message("starting a ranking actor per tournament");
    for (t, sim) in sims.iter().enumerate() {
        open_tournament(
            &driver.store,
            &driver.dsup,
            sim,
            &format!("Sunday Hyper #{t}"),
            &opts,
        )
        .await?;
    }
    spin.finish_and_clear();

    let hands_bar = mp.add(ProgressBar::new(total_hands));
    hands_bar.set_style(ProgressStyle::with_template(
        "hands       [{bar:40}] {pos}/{len} {per_sec}",
    )?);
    let done_bar = mp.add(ProgressBar::new(cli.tournaments));
    done_bar.set_style(ProgressStyle::with_template(
        "tournaments [{bar:40}] {pos}/{len} finished, standings stored",
    )?);
    let nodes_bar = mp.add(ProgressBar::new_spinner());
    nodes_bar.set_style(ProgressStyle::with_template("{msg}")?);

    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for sim in sims {
        let (store, dsup, opts, progress) = (
            driver.store.clone(),
            driver.dsup.clone(),
            opts.clone(),
            progress.clone(),
        );
        tasks.push(tokio::spawn(async move {
            play_tournament(&store, &dsup, sim, &opts, &progress).await
        }));
    }

    let mut flag_result: Option<(Duration, Vec<(String, Duration)>)> = None;
    let mut failover: Option<Failover> = None;
    let mut killed: Option<usize> = None;
    let mut redeploys: Option<Vec<Redeploy>> = None;
    let mut last_nodes = Instant::now() - Duration::from_secs(1);
    while progress.finished.load(Ordering::Relaxed) < cli.tournaments
        && !tasks.iter().all(|t| t.is_finished())
    {
        let hands = progress.hands.load(Ordering::Relaxed);
        hands_bar.set_position(hands);
        done_bar.set_position(progress.finished.load(Ordering::Relaxed));
        if last_nodes.elapsed() >= Duration::from_millis(300) {
            last_nodes = Instant::now();
            let mut parts = Vec::new();
            for (i, n) in nodes.iter().enumerate() {
                if killed == Some(i) {
                    parts.push(format!("{}: killed", n.name()));
                } else {
                    parts.push(format!(
                        "{}: {} ranking actors",
                        n.name(),
                        local_children(n).await.len()
                    ));
                }
            }
            nodes_bar.set_message(parts.join("   "));
        }
        // A quarter in: switch the flag on from the driver, and time every node's cache.
        if flag_result.is_none() && hands >= total_hands / 4 {
            let t0 = unix_ns();
            driver.flags.enable(FLAG).await?;
            let version = driver.flags.version(FLAG);
            let mut per_node = Vec::new();
            for n in nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| killed != Some(*i))
                .map(|(_, n)| n)
            {
                let mut at = None;
                let deadline = Instant::now() + Duration::from_secs(10);
                while at.is_none() && Instant::now() < deadline {
                    at = n
                        .command(&AppCmd::Seen {
                            flag: FLAG.into(),
                            version,
                        })
                        .await
                        .ok()
                        .and_then(|v| v.as_u64());
                    if at.is_none() {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                if let Some(at) = at {
                    per_node.push((
                        n.name().to_owned(),
                        Duration::from_nanos(at.saturating_sub(t0)),
                    ));
                }
            }
            let slowest = per_node.iter().map(|p| p.1).max().unwrap_or_default();
            say(
                &mp,
                format!(
                    "flag {FLAG} switched on: every node's cache had it {} later ({})",
                    ms(slowest),
                    per_node
                        .iter()
                        .map(|(n, d)| format!("{n} {}", ms(*d)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            flag_result = Some((slowest, per_node));
        }
        // Two fifths in: kill the node holding the most ranking actors.
        if killed.is_none() && nodes.len() >= 2 && hands >= total_hands * 2 / 5 {
            let mut most = (0usize, Vec::new());
            for (i, n) in nodes.iter().enumerate() {
                let l = local_children(n).await;
                if l.len() > most.1.len() {
                    most = (i, l);
                }
            }
            let (victim, moved) = most;
            let name = nodes[victim].name().to_owned();
            say(
                &mp,
                format!("kill -9 {name}, which runs {} ranking actors", moved.len()),
            );
            nodes[victim].kill().await?;
            killed = Some(victim);
            let took = wait_until("failover", Duration::from_secs(30), || async {
                Ok(moved.iter().all(|id| {
                    driver
                        .dsup
                        .registry()
                        .entry(id)
                        .is_some_and(|e| e.owner.node != name)
                        || driver.dsup.registry().entry(id).is_none()
                            && progress.finished.load(Ordering::Relaxed) == cli.tournaments
                }))
            })
            .await?;
            let mut to: Vec<String> = moved
                .iter()
                .filter_map(|id| driver.dsup.registry().entry(id).map(|e| e.owner.node))
                .collect();
            to.sort();
            to.dedup();
            say(&mp, format!(
                "failover: {name}'s {} ranking actors run on {} again, {} after the kill; each re-read its tournament from the database",
                moved.len(),
                to.join(", "),
                ms(took)
            ));
            failover = Some(Failover {
                node: name,
                actors: moved.len(),
                ids: moved.clone(),
                to,
                took,
            });
        }
        // Three fifths in: a rolling deploy of the live nodes.
        if cli.rolling_deploy
            && redeploys.is_none()
            && nodes.len() >= 2
            && hands >= total_hands * 3 / 5
        {
            let names: Vec<String> = nodes.iter().map(|n| n.name().to_owned()).collect();
            let live: Vec<String> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| killed != Some(*i))
                .map(|(_, n)| n.clone())
                .collect();
            let mut turns = Vec::new();
            for i in 0..nodes.len() {
                if killed == Some(i) {
                    continue;
                }
                let mut fresh_args = node_args(None);
                for (j, other) in nodes.iter().enumerate() {
                    if j != i && killed != Some(j) {
                        fresh_args.extend(["--seed".to_string(), other.addr()]);
                    }
                }
                let node = &mut nodes[i];
                say(&mp, format!("rolling deploy: SIGTERM to {}", node.name()));
                let r = redeploy_one(node, &fresh_args, &driver, &live).await?;
                say(&mp, format!(
                    "rolling deploy: {} handed {} ranking actors over in {}, a fresh {} was back after {}",
                    r.node,
                    r.moved.len(),
                    ms(r.handoff),
                    r.node,
                    ms(r.back)
                ));
                turns.push(r);
            }
            redeploys = Some(turns);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut failed = Vec::new();
    let mut loads = 0;
    let (mut handoffs, mut moved_loads, mut moved_count) = (0, 0, 0);
    let moved_ids: std::collections::BTreeSet<String> = redeploys
        .iter()
        .flatten()
        .flat_map(|r| r.moved.iter().cloned())
        .collect();
    for (t, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(Ok(out)) => {
                loads += out.ranking.loads;
                handoffs += out.ranking.handoffs;
                let id = child_id(out.ranking.tournament);
                if moved_ids.contains(&id) {
                    moved_count += 1;
                    // Beyond the load at start and a failover's reload: reads the planned
                    // moves caused (a hole to repair from a cast lost in the move).
                    let failed_over = failover.as_ref().is_some_and(|f| f.ids.contains(&id));
                    moved_loads += out.ranking.loads.saturating_sub(1 + u64::from(failed_over));
                }
            }
            Ok(Err(e)) => failed.push(format!("tournament #{t}: {e}")),
            Err(e) => failed.push(format!("tournament #{t}: {e}")),
        }
    }
    let played = started.elapsed();
    hands_bar.set_position(progress.hands.load(Ordering::Relaxed));
    hands_bar.finish();
    done_bar.set_position(progress.finished.load(Ordering::Relaxed));
    done_bar.finish();
    nodes_bar.finish_and_clear();

    // Check every tournament against the database.
    let mut mismatches = Vec::new();
    for t in 0..cli.tournaments {
        let id = base + t;
        let truth = driver.store.snapshot(id).await?.recompute();
        let stored = driver.store.final_standings(id).await?;
        if stored != truth {
            let first = stored
                .iter()
                .zip(&truth)
                .position(|(a, b)| a != b)
                .unwrap_or(stored.len().min(truth.len()));
            mismatches.push(format!(
                "tournament {id}: {} stored rows, {} computed; first difference at position {}",
                stored.len(),
                truth.len(),
                first + 1
            ));
        }
        let _ = child_id(id);
    }
    let hands = progress.hands.load(Ordering::Relaxed);
    println!();
    println!("==== report ====");
    println!(
        "cluster:      {nodes_wanted} node processes + the driver, on {}",
        if store_url.starts_with("postgres") {
            "Postgres"
        } else {
            "SQLite"
        }
    );
    println!(
        "tournaments:  {} of {} players, {hands} hands in {:.1} s ({:.0} hands/s written and ranked)",
        cli.tournaments,
        cli.players,
        played.as_secs_f64(),
        hands as f64 / played.as_secs_f64()
    );
    match &failover {
        Some(f) => println!(
            "failover:     kill -9 {}: its {} ranking actors ran on {} {} after the kill",
            f.node,
            f.actors,
            f.to.join(", "),
            ms(f.took)
        ),
        None => println!("failover:     none (one node)"),
    }
    match &flag_result {
        Some((slowest, _)) => println!(
            "flag:         {FLAG} switched on; in every node's cache after {}",
            ms(*slowest)
        ),
        None => println!("flag:         not switched (the run ended first)"),
    }
    match &redeploys {
        Some(turns) => {
            for r in turns {
                println!(
                    "deploy:       SIGTERM {}: {} ranking actors handed over in {}; the fresh process was back after {}",
                    r.node,
                    r.moved.len(),
                    ms(r.handoff),
                    ms(r.back)
                );
            }
            println!(
                "              {handoffs} of {} moves of {moved_count} ranking actors came with their standings; database reads the moves caused: {moved_loads}",
                turns.iter().map(|r| r.moved.len()).sum::<usize>()
            );
        }
        None => println!("deploy:       none"),
    }
    println!(
        "database reads by the ranking actors: {loads} (one load each at start, one per failover)"
    );
    let ok = mismatches.is_empty() && failed.is_empty();
    if ok {
        println!(
            "standings:    OK: all {} tournaments' final standings equal a recomputation from the database",
            cli.tournaments
        );
    } else {
        println!("standings:    MISMATCH");
        for m in failed.iter().chain(&mismatches) {
            println!("  {m}");
        }
    }
    if cli.keep_running {
        println!();
        println!("the cluster keeps running; admin pages (Ctrl-C to stop):");
        for (i, n) in nodes.iter().enumerate() {
            if killed == Some(i) {
                continue;
            }
            if let Ok(v) = n.command(&AppCmd::Admin).await {
                if let Some(a) = v.as_str() {
                    println!("  {}: http://{a}/#token={token}", n.name());
                }
            }
        }
        tokio::signal::ctrl_c().await?;
    }
    drop(nodes);
    Ok(if ok { 0 } else { 1 })
}
