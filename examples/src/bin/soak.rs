//! The soak run: a local cluster plays tournaments and changes flags for a long time (10 minutes
//! by default) while the resident memory of every process is sampled. It prints RSS over time
//! and the growth after warm-up (the first fifth of the run), and exits non-zero if any process
//! grew by 10 % or more.
//!
//! `cargo run --release -p examples --bin soak -- --minutes 10`
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster_launch::{unix_ns, NodeProcess};
use actor_poker::driver::{open_tournament, play_tournament, DriverOptions, Progress};
use actor_poker::{SimConfig, TournamentSim};
use clap::Parser;
use examples::app::{App, NodeConfig};

#[derive(Parser, Debug)]
struct Cli {
    /// How long to run.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Node processes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Tournaments played at once.
    #[arg(long, default_value_t = 6)]
    tournaments: usize,
    /// Players per tournament.
    #[arg(long, default_value_t = 500)]
    players: u32,
    /// Seconds between samples.
    #[arg(long, default_value_t = 30)]
    every: u64,
}

fn rss_mb(pid: u32) -> Option<f64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0 / 1_048_576.0)
}

#[tokio::main]
async fn run(cli: Cli) -> Result<i32, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("actor-toolkit-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = dir.join("soak.db").display().to_string();
    drop(actor_poker::PokerStore::open(&store).await?);
    examples::app::flag_store(&store).await?;
    let exe = std::env::current_exe()?;
    let mut nodes: Vec<NodeProcess> = Vec::new();
    for i in 0..cli.nodes {
        let mut a: Vec<String> = ["--role", "node", "--store", &store, "--cookie", "soak"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(first) = nodes.first() {
            a.extend(["--seed".to_string(), first.addr()]);
        }
        nodes.push(NodeProcess::start(&exe, &format!("s{i}"), &a).await?);
    }
    let driver = App::start(
        &NodeConfig::local("soak-driver", &store, "soak", vec![nodes[0].addr()]),
        false,
    )
    .await?;
    let names: Vec<String> = nodes.iter().map(|n| n.name().to_owned()).collect();
    driver
        .wait_for_nodes(&names, Duration::from_secs(30))
        .await?;
    let total = Duration::from_secs_f64(cli.minutes * 60.0);
    let end = Instant::now() + total;
    let progress = Arc::new(Progress::default());
    let opts = DriverOptions {
        hand_delay: Some(Duration::from_millis(10)),
        ..DriverOptions::default()
    };
    let base = unix_ns() / 1_000_000 % 1_000_000_000 * 1000;
    for lane in 0..cli.tournaments {
        let (app, opts, progress, players) =
            (driver.clone(), opts.clone(), progress.clone(), cli.players);
        tokio::spawn(async move {
            let mut k = 0;
            while Instant::now() < end {
                let id = base + lane as u64 * 100_000 + k;
                k += 1;
                let sim = TournamentSim::new(id, SimConfig::new(players).hyper().seed(id));
                if open_tournament(&app.store, &app.dsup, &sim, "soak", &opts)
                    .await
                    .is_ok()
                {
                    let _ = play_tournament(&app.store, &app.dsup, sim, &opts, &progress).await;
                }
            }
        });
    }
    let flags = driver.flags.clone();
    tokio::spawn(async move {
        let mut i = 0u64;
        while Instant::now() < end {
            let f = format!("soak_flag_{}", i % 10);
            let _ = if i % 2 == 0 {
                flags.enable(&f).await
            } else {
                flags.disable(&f).await
            };
            i += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    let mut pids: Vec<(String, u32)> = nodes
        .iter()
        .filter_map(|n| n.process_id().map(|p| (n.name().to_owned(), p)))
        .collect();
    pids.push(("driver".into(), std::process::id()));
    println!(
        "{:>7}  {}  hands  finished",
        "time",
        pids.iter()
            .map(|(n, _)| format!("{n:>12}"))
            .collect::<String>()
    );
    let began = Instant::now();
    let warm_at = total / 5;
    let mut warm: Option<Vec<f64>> = None;
    let mut last;
    loop {
        let sample: Vec<f64> = pids
            .iter()
            .map(|(_, p)| rss_mb(*p).unwrap_or(0.0))
            .collect();
        println!(
            "{:>6.0}s  {}  {:>5}  {:>8}",
            began.elapsed().as_secs_f64(),
            sample
                .iter()
                .map(|m| format!("{m:>9.1} MB"))
                .collect::<String>(),
            progress.hands.load(std::sync::atomic::Ordering::Relaxed),
            progress.finished.load(std::sync::atomic::Ordering::Relaxed),
        );
        if warm.is_none() && began.elapsed() >= warm_at {
            warm = Some(sample.clone());
        }
        last = sample;
        if Instant::now() >= end {
            break;
        }
        tokio::time::sleep(
            Duration::from_secs(cli.every)
                .min(end.saturating_duration_since(Instant::now()) + Duration::from_millis(1)),
        )
        .await;
    }
    let warm = warm.unwrap_or_else(|| last.clone());
    let mut worst: f64 = 0.0;
    for (i, (name, _)) in pids.iter().enumerate() {
        let g = if warm[i] > 0.0 {
            (last[i] - warm[i]) / warm[i] * 100.0
        } else {
            0.0
        };
        worst = worst.max(g);
        println!(
            "{name}: {:.1} MB after warm-up, {:.1} MB at the end: {g:+.1} %",
            warm[i], last[i]
        );
    }
    let ok = worst < 10.0;
    println!(
        "growth after warm-up: at most {worst:+.1} % over {:.1} min: {}",
        began.elapsed().as_secs_f64() / 60.0,
        if ok {
            "PASS (under 10 %)"
        } else {
            "FAIL (10 % or more)"
        }
    );
    Ok(if ok { 0 } else { 1 })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if examples::app::child::is_node_process() {
        return examples::app::child::run();
    }
    examples::app::child::init_program_logging();
    let code = run(Cli::parse())?;
    std::process::exit(code);
}
