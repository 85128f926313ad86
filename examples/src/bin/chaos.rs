//! The chaos run: 5 node processes run poker ranking actors and cache flags while tournaments are
//! played and flags change all the time, and a seeded schedule of faults hits the nodes: kill -9
//! (and a restart), SIGSTOP/SIGCONT, partitions and heals, graceful restarts, slow and lossy
//! links (delay, jitter, lost probe frames), a node's clock 5 s off, and join storms (two nodes
//! killed and started again at once); ranking handlers fail on some hands (about one new hand
//! in `--fail-hand-one-in`) and restart from the database. The schedule is printed first, so a run can be replayed
//! with `--seed`; `--seeds A..B` runs a range, `--random-seed` one seed drawn now. After the faults stop and the cluster
//! settles, it checks:
//!
//! 1. exactly one live ranking actor per running tournament, on the node the registry names;
//! 2. no name registered twice: every node's registry agrees with every other's;
//! 3. every node's flags equal the store;
//! 4. every tournament, once finished, has final standings equal to a recomputation from the
//!    database.
//!
//! It prints a summary and exits non-zero on a violation.
//!
//! ```sh
//! cargo run --release -p examples --bin chaos -- --seed 7 --duration 600
//! cargo run --release -p examples --bin chaos -- --seeds 1..20 --duration 60
//! ```
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster_launch::{unix_ns, wait_until, NodeProcess};
use actor_flags::admin::FlagJson;
use actor_poker::driver::{open_tournament, play_tournament, DriverOptions, Progress};
use actor_poker::{child_id, SimConfig, TournamentSim};
use clap::Parser;
use examples::app::child::AppCmd;
use examples::app::{App, NodeConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

#[derive(Parser, Debug, Clone)]
#[command(about = "Randomized faults under load, then invariants checked against the database")]
struct Cli {
    /// Seed of the fault schedule and the tournaments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runs every seed of a range, `A..B` (B included), one after another.
    #[arg(long, value_parser = parse_seeds, conflicts_with = "random_seed")]
    seeds: Option<(u64, u64)>,
    /// Runs one seed drawn at start (printed, for a replay with `--seed`).
    #[arg(long)]
    random_seed: bool,
    /// Seconds of faults.
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// Node processes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Tournaments played at once (a finished one is replaced while faults run).
    #[arg(long, default_value_t = 8)]
    tournaments: usize,
    /// Players per tournament.
    #[arg(long, default_value_t = 300)]
    players: u32,
    /// The database (default: a new SQLite file in the temporary directory).
    #[arg(long)]
    store: Option<String>,
    /// Ranking handlers fail on about one new hand in this many and restart from the
    /// database (0: never).
    #[arg(long, default_value_t = 2000)]
    fail_hand_one_in: u64,
    /// Checks the checker: after the faults, change a flag behind the caches' back and swap
    /// two rows of a tournament's stored standings. The run must then FAIL.
    #[arg(long, hide = true)]
    sabotage: bool,
}

fn parse_seeds(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("--seeds takes a range like 1..20, not {s:?}"))?;
    let a: u64 = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
    if b < a {
        return Err(format!("--seeds {s}: the range is empty"));
    }
    Ok((a, b))
}

#[derive(Debug, Clone)]
enum Fault {
    Kill(usize),
    Freeze(usize),
    Partition(Vec<usize>),
    Restart(usize),
    /// Every link slow (ms of delay, ms of jitter) and losing a share of probe frames.
    SlowLinks(u64, u64, f64),
    /// One node's clock off by this many ms.
    Skew(usize, i64),
    /// Two nodes killed, then started again at once.
    JoinStorm(usize, usize),
}

/// A fault at `at` seconds, undone (restarted, thawed, healed) `hold` seconds later.
#[derive(Debug, Clone)]
struct Step {
    at: f64,
    hold: f64,
    fault: Fault,
}

fn schedule(seed: u64, duration: f64, nodes: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut t = 2.0;
    while t < duration - 4.0 {
        let hold = rng.random_range(1.0..3.5);
        let n = rng.random_range(0..nodes);
        let fault = match rng.random_range(0..7) {
            0 => Fault::Kill(n),
            1 => Fault::Freeze(n),
            4 => Fault::SlowLinks(
                rng.random_range(20..120),
                rng.random_range(0..80),
                rng.random_range(0.0..0.3),
            ),
            5 => Fault::Skew(n, if rng.random_bool(0.5) { 5_000 } else { -5_000 }),
            6 => Fault::JoinStorm(n, (n + rng.random_range(1..nodes)) % nodes),
            2 => {
                let size = rng.random_range(1..=(nodes - 1) / 2);
                let mut side: Vec<usize> = (0..nodes).collect();
                for i in (1..side.len()).rev() {
                    side.swap(i, rng.random_range(0..=i));
                }
                side.truncate(size);
                side.sort();
                Fault::Partition(side)
            }
            _ => Fault::Restart(n),
        };
        out.push(Step { at: t, hold, fault });
        t += hold + rng.random_range(0.5..2.5);
    }
    out
}

fn names(nodes: &[NodeProcess], idx: &[usize]) -> Vec<String> {
    idx.iter().map(|i| nodes[*i].name().to_owned()).collect()
}

/// Every node's links from every other node slow (zeros: back to normal).
async fn slow_links(nodes: &[NodeProcess], delay_ms: u64, jitter_ms: u64, loss: f64) {
    for x in nodes {
        let peers: Vec<&str> = nodes
            .iter()
            .map(NodeProcess::name)
            .filter(|p| *p != x.name())
            .collect();
        let _ = x.slow_link(&peers, delay_ms, jitter_ms, loss).await;
    }
}

async fn local(n: &NodeProcess) -> Option<Vec<String>> {
    serde_json::from_value(n.command(&AppCmd::Local).await.ok()?).ok()
}

#[tokio::main]
async fn run(cli: Cli) -> Result<i32, Box<dyn std::error::Error>> {
    let n = cli.nodes.max(3);
    // A database per seed: a run of several seeds must not start on the last one's tables.
    let dir = std::env::temp_dir().join(format!(
        "actor-toolkit-chaos-{}-{}",
        std::process::id(),
        cli.seed
    ));
    std::fs::create_dir_all(&dir)?;
    let store_url = cli
        .store
        .clone()
        .unwrap_or_else(|| dir.join("chaos.db").display().to_string());
    let plan = schedule(cli.seed, cli.duration as f64, n);
    println!(
        "chaos run: seed {}, {} s of faults, {n} nodes, {} tournaments of {} players at a time, store {store_url}",
        cli.seed, cli.duration, cli.tournaments, cli.players
    );
    println!("schedule ({} faults):", plan.len());
    for s in &plan {
        println!("  t={:6.1}s for {:.1}s: {:?}", s.at, s.hold, s.fault);
    }

    drop(actor_poker::PokerStore::open(&store_url).await?);
    let flag_store = examples::app::flag_store(&store_url).await?;
    let exe = std::env::current_exe()?;
    let node_args = |seeds: &[String]| {
        let fail = cli.fail_hand_one_in.to_string();
        let mut a: Vec<String> = [
            "--role",
            "node",
            "--store",
            &store_url,
            "--cookie",
            "chaos",
            "--fail-hand-one-in",
            &fail,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for s in seeds {
            a.extend(["--seed".to_string(), s.clone()]);
        }
        a
    };
    let mut nodes: Vec<NodeProcess> = Vec::new();
    for i in 0..n {
        let seeds: Vec<String> = nodes.iter().map(NodeProcess::addr).collect();
        nodes.push(NodeProcess::start(&exe, &format!("c{i}"), &node_args(&seeds)).await?);
    }
    let all_addrs: Vec<String> = nodes.iter().map(NodeProcess::addr).collect();
    let driver = App::start(
        &NodeConfig::local("chaos-driver", &store_url, "chaos", all_addrs.clone()),
        false,
    )
    .await?;
    let node_names: Vec<String> = nodes.iter().map(|x| x.name().to_owned()).collect();
    driver
        .wait_for_nodes(&node_names, Duration::from_secs(30))
        .await?;

    // Load: tournaments, replaced as they finish while the faults run; flag changes.
    let progress = Arc::new(Progress::default());
    let opts = DriverOptions {
        hand_delay: Some(Duration::from_millis(5)),
        deliver_timeout: Duration::from_secs(60),
        ..DriverOptions::default()
    };
    let faults_end = Instant::now() + Duration::from_secs(cli.duration);
    let base = unix_ns() / 1_000_000 % 1_000_000_000 * 1000;
    let started_ids = Arc::new(parking_lot::Mutex::new(Vec::<u64>::new()));
    let errors = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let mut lanes = Vec::new();
    for lane in 0..cli.tournaments {
        let (app, opts, progress, ids, errors) = (
            driver.clone(),
            opts.clone(),
            progress.clone(),
            started_ids.clone(),
            errors.clone(),
        );
        let (players, seed) = (cli.players, cli.seed);
        lanes.push(tokio::spawn(async move {
            let mut k = 0u64;
            while Instant::now() < faults_end {
                let id = base + lane as u64 * 10_000 + k;
                k += 1;
                let sim = TournamentSim::new(id, SimConfig::new(players).hyper().seed(seed ^ id));
                ids.lock().push(id);
                let r = async {
                    open_tournament(&app.store, &app.dsup, &sim, &format!("chaos {id}"), &opts)
                        .await?;
                    play_tournament(&app.store, &app.dsup, sim, &opts, &progress).await
                }
                .await;
                if let Err(e) = r {
                    errors.lock().push(format!("tournament {id}: {e}"));
                }
            }
        }));
    }
    let flags_app = driver.clone();
    let flag_seed = cli.seed;
    let flag_task = tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(flag_seed ^ 0xf1a9);
        let mut changes = 0u64;
        while Instant::now() < faults_end {
            let flag = format!("chaos_flag_{}", rng.random_range(0..5));
            let r = match rng.random_range(0..4) {
                0 => flags_app.flags.enable(&flag).await,
                1 => flags_app.flags.disable(&flag).await,
                2 => {
                    flags_app
                        .flags
                        .set_for_actor(
                            &flag,
                            &format!("user:{}", rng.random_range(0..20)),
                            rng.random_bool(0.5),
                        )
                        .await
                }
                _ => {
                    flags_app
                        .flags
                        .enable_percentage_of_actors(&flag, rng.random_range(0.0..1.0))
                        .await
                }
            };
            if r.is_ok() {
                changes += 1;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..600))).await;
        }
        changes
    });

    // The faults.
    let began = Instant::now();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for step in &plan {
        let wait = Duration::from_secs_f64(step.at).saturating_sub(began.elapsed());
        tokio::time::sleep(wait).await;
        let hold = Duration::from_secs_f64(step.hold);
        let stamp = began.elapsed().as_secs_f64();
        match &step.fault {
            Fault::Kill(i) => {
                println!("t={stamp:6.1}s kill -9 {}", nodes[*i].name());
                nodes[*i].kill().await?;
                *counts.entry("kill -9").or_default() += 1;
                tokio::time::sleep(hold).await;
                nodes[*i].restart().await?;
                println!(
                    "t={:6.1}s {} restarted",
                    began.elapsed().as_secs_f64(),
                    nodes[*i].name()
                );
            }
            Fault::Freeze(i) => {
                println!("t={stamp:6.1}s SIGSTOP {}", nodes[*i].name());
                nodes[*i].freeze()?;
                *counts.entry("SIGSTOP").or_default() += 1;
                tokio::time::sleep(hold).await;
                nodes[*i].thaw()?;
                println!(
                    "t={:6.1}s SIGCONT {}",
                    began.elapsed().as_secs_f64(),
                    nodes[*i].name()
                );
            }
            Fault::Partition(side) => {
                let a = names(&nodes, side);
                let others: Vec<usize> = (0..n).filter(|i| !side.contains(i)).collect();
                let b = names(&nodes, &others);
                println!("t={stamp:6.1}s partition {a:?} | {b:?}");
                for i in side {
                    let _ = nodes[*i]
                        .block(&b.iter().map(String::as_str).collect::<Vec<_>>())
                        .await;
                }
                for i in &others {
                    let _ = nodes[*i]
                        .block(&a.iter().map(String::as_str).collect::<Vec<_>>())
                        .await;
                }
                *counts.entry("partition").or_default() += 1;
                tokio::time::sleep(hold).await;
                for x in nodes.iter() {
                    let _ = x.unblock_all().await;
                }
                println!("t={:6.1}s healed", began.elapsed().as_secs_f64());
            }
            Fault::SlowLinks(delay, jitter, loss) => {
                println!("t={stamp:6.1}s slow links: {delay} ms + up to {jitter} ms, {:.0} % of probes lost", loss * 100.0);
                slow_links(&nodes, *delay, *jitter, *loss).await;
                *counts.entry("slow links").or_default() += 1;
                tokio::time::sleep(hold).await;
                slow_links(&nodes, 0, 0, 0.0).await;
                println!("t={:6.1}s links normal", began.elapsed().as_secs_f64());
            }
            Fault::Skew(i, ms) => {
                println!(
                    "t={stamp:6.1}s clock of {} off by {ms} ms",
                    nodes[*i].name()
                );
                nodes[*i].skew_clock(*ms).await?;
                *counts.entry("clock skew").or_default() += 1;
                tokio::time::sleep(hold).await;
                nodes[*i].skew_clock(0).await?;
                println!(
                    "t={:6.1}s clock of {} right again",
                    began.elapsed().as_secs_f64(),
                    nodes[*i].name()
                );
            }
            Fault::JoinStorm(a, b) => {
                println!(
                    "t={stamp:6.1}s kill -9 {} and {}, then both join at once",
                    nodes[*a].name(),
                    nodes[*b].name()
                );
                nodes[*a].kill().await?;
                nodes[*b].kill().await?;
                *counts.entry("join storm").or_default() += 1;
                tokio::time::sleep(hold).await;
                let (x, y) = if a < b {
                    let (l, r) = nodes.split_at_mut(*b);
                    (&mut l[*a], &mut r[0])
                } else {
                    let (l, r) = nodes.split_at_mut(*a);
                    (&mut r[0], &mut l[*b])
                };
                let (ra, rb) = tokio::join!(x.restart(), y.restart());
                ra?;
                rb?;
                println!("t={:6.1}s both back", began.elapsed().as_secs_f64());
            }
            Fault::Restart(i) => {
                println!("t={stamp:6.1}s graceful restart of {}", nodes[*i].name());
                let _ = nodes[*i].leave().await;
                *counts.entry("graceful restart").or_default() += 1;
                tokio::time::sleep(hold).await;
                nodes[*i].restart().await?;
                println!(
                    "t={:6.1}s {} back",
                    began.elapsed().as_secs_f64(),
                    nodes[*i].name()
                );
            }
        }
    }
    tokio::time::sleep(faults_end.saturating_duration_since(Instant::now())).await;
    println!(
        "faults over after {:.1} s; waiting for the cluster to settle",
        began.elapsed().as_secs_f64()
    );

    // Settle: a full mesh, nothing left to decide on any node.
    let settle = Instant::now();
    let mut violations = Vec::new();
    let settled = wait_until("the cluster settles", Duration::from_secs(60), || async {
        for x in &nodes {
            if x.up_members().await?.len() != n {
                return Ok(false);
            }
            if x.command(&AppCmd::Pending).await? != json!(0) {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await;
    if let Err(e) = settled {
        violations.push(format!("the cluster did not settle: {e}"));
    }
    println!("settled in {:.1} s", settle.elapsed().as_secs_f64());

    // 1 and 2: one live ranking actor per running tournament, and one owner per name.
    let mut checks = 0;
    let check_registry = wait_until(
        "one ranking actor per running tournament",
        Duration::from_secs(15),
        || async {
            let mut running_on: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut views = Vec::new();
            for x in &nodes {
                for id in local(x).await.unwrap_or_default() {
                    running_on.entry(id).or_default().push(x.name().to_owned());
                }
                views.push(x.command(&AppCmd::Owners).await?);
            }
            let running: BTreeSet<String> = driver
                .store
                .tournaments()
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|t| t.status == actor_poker::model::TournamentStatus::Running)
                .map(|t| child_id(t.id))
                .collect();
            let one_each = running
                .iter()
                .all(|id| running_on.get(id).is_some_and(|v| v.len() == 1))
                && running_on.values().all(|v| v.len() == 1);
            let agree = views.windows(2).all(|w| w[0] == w[1]);
            Ok(one_each && agree)
        },
    )
    .await;
    checks += 2;
    if let Err(e) = check_registry {
        violations.push(format!("ranking actors or registry: {e}"));
    }

    if cli.sabotage {
        examples::app::flag_store(&store_url)
            .await?
            .put(
                "chaos_sabotage",
                &actor_flags::Gate::Boolean(true),
                &actor_flags::Change {
                    by: "chaos --sabotage",
                    at_ms: 0,
                },
            )
            .await?;
    }
    // 3: every node's flags equal the store.
    let mut want: Vec<FlagJson> = flag_store
        .all_flags()
        .await?
        .iter()
        .map(FlagJson::from)
        .collect();
    want.sort_by(|a, b| a.name.cmp(&b.name));
    let want = serde_json::to_value(&want)?;
    let flags_ok = wait_until(
        "every node's flags equal the store",
        Duration::from_secs(15),
        || async {
            for x in &nodes {
                if x.command(&AppCmd::Flags).await? != want {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await;
    checks += 1;
    if let Err(e) = flags_ok {
        let mut differ = Vec::new();
        for x in &nodes {
            if let Ok(v) = x.command(&AppCmd::Flags).await {
                if v != want {
                    differ.push(format!("{}: {v}", x.name()));
                }
            }
        }
        violations.push(format!(
            "flags: {e}; store: {want}; differing: {}",
            differ.join("; ")
        ));
    }

    // 4: let every tournament finish, then compare with the database.
    for lane in lanes {
        let _ = tokio::time::timeout(Duration::from_secs(300), lane).await;
    }
    let flag_changes = flag_task.await.unwrap_or(0);
    for e in errors.lock().iter() {
        violations.push(e.clone());
    }
    let ids = started_ids.lock().clone();
    if cli.sabotage {
        if let Some(id) = ids.first() {
            let mut rows = driver.store.final_standings(*id).await?;
            if rows.len() >= 2 {
                let (a, b) = (rows[0].player, rows[1].player);
                rows[0].player = b;
                rows[1].player = a;
                driver.store.save_final_standings(*id, &rows).await?;
            }
        }
    }
    let mut finished = 0;
    for id in &ids {
        let snap = driver.store.snapshot(*id).await?;
        let truth = snap.recompute();
        let stored = driver.store.final_standings(*id).await?;
        checks += 1;
        if stored != truth {
            violations.push(format!(
                "tournament {id}: stored standings ({} rows) differ from the database ({} rows)",
                stored.len(),
                truth.len()
            ));
        } else {
            finished += 1;
        }
    }

    println!();
    println!("==== chaos summary (seed {}) ====", cli.seed);
    println!(
        "faults:      {} ({})",
        plan.len(),
        counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "load:        {} tournaments, {} hands, {flag_changes} flag changes",
        ids.len(),
        progress.hands.load(Ordering::Relaxed)
    );
    let mut failures = 0u64;
    for x in &nodes {
        if let Ok(v) = x.command(&AppCmd::Failures).await {
            failures += v.as_u64().unwrap_or(0);
        }
    }
    println!(
        "handlers:    {failures} failed on purpose (about one new hand in {}; counted on the nodes alive at the end)",
        cli.fail_hand_one_in
    );
    println!("checks:      {checks} ({finished} tournaments' standings equal the database)");
    if violations.is_empty() {
        println!("result:      PASS");
        Ok(0)
    } else {
        println!("result:      FAIL");
        for v in &violations {
            println!("  violation: {v}");
        }
        Ok(1)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if examples::app::child::is_node_process() {
        return examples::app::child::run();
    }
    examples::app::child::init_program_logging();
    let cli = Cli::parse();
    let seeds: Vec<u64> = match (cli.seeds, cli.random_seed) {
        (Some((a, b)), _) => (a..=b).collect(),
        (None, true) => {
            let seed = rand::random_range(1..1_000_000);
            println!("random seed: {seed} (replay: --seed {seed})");
            vec![seed]
        }
        (None, false) => vec![cli.seed],
    };
    let mut failed = Vec::new();
    for seed in &seeds {
        let code = match run(Cli {
            seed: *seed,
            seeds: None,
            random_seed: false,
            ..cli.clone()
        }) {
            Ok(code) => code,
            Err(e) => {
                // The run could not go on (a node did not start, a command failed): a failed
                // seed, and the next one still runs.
                println!("seed {seed}: the run stopped: {e}");
                println!("result:      FAIL");
                1
            }
        };
        if code != 0 {
            failed.push(*seed);
        }
        if cli.store.is_none() {
            let dir = std::env::temp_dir()
                .join(format!("actor-toolkit-chaos-{}-{seed}", std::process::id()));
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if seeds.len() > 1 {
        println!(
            "==== {} seeds ({}..{}): {} passed, failed: {failed:?}",
            seeds.len(),
            seeds[0],
            seeds[seeds.len() - 1],
            seeds.len() - failed.len()
        );
    }
    std::process::exit(i32::from(!failed.is_empty()));
}
