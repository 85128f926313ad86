//! The scale benchmark: N real node processes of the application (this binary again, with
//! `--role node`: membership, the registry, the distributed supervisor with the poker ranking
//! kinds, the flag cache) on 127.0.0.1, one seed, one SQLite file. For each N it prints one JSON
//! line with:
//!
//! * `formed_s`: from the last process reporting ready until every node has every other up;
//! * `idle_cores` (all nodes together) and `idle_cores_per_node`, over `--idle-secs` of an
//!   idle cluster, from `/proc/<pid>/stat`; `rss_mb_median` and `rss_mb_max`;
//! * `reg_p50_ms` / `reg_p99_ms`: a name registered on one node, until each other node's replica
//!   publishes it (the owner's registration stamp to the observer's event, same machine clock);
//! * `kill_seen_ms_p50` / `_max`: `kill -9` of one node, until each other node emits its
//!   `MemberDown`; `failover_ms`: until the killed node's ranking actors are registered again
//!   elsewhere, as one survivor sees it;
//! * `stop_seen_ms_p50` / `_max`: the same for `SIGSTOP`;
//! * `false_downs_forming`, `false_downs_idle`, `false_downs`: `MemberDown` events about nodes
//!   that were neither killed nor stopped, seen by nodes that were neither.
//!
//! ```sh
//! cargo run --release -p examples --bin scale                     # N = 100
//! cargo run --release -p examples --bin scale -- --nodes 10,30,50,100
//! cargo run --release -p examples --bin scale -- --nodes 20 --check   # CI: exits 1 unless the
//!                                                                     # mesh forms, no false down
//! ```
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actor_cluster::MemberEvent;
use actor_cluster_launch::{unix_ns, wait_until, LaunchError, NodeProcess};
use clap::Parser;
use examples::app::child::AppCmd;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(about = "Starts N node processes and measures formation, idle cost and detection")]
struct Cli {
    /// Cluster sizes to measure, one after the other (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    nodes: Vec<usize>,
    /// Seconds of idle cluster to measure CPU over.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// Node processes started at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Probe names registered for the propagation figures.
    #[arg(long, default_value_t = 20)]
    names: usize,
    /// Assert behaviour instead of measuring only: exit 1 unless the mesh forms and no node is
    /// ever declared down without a fault (detection and idle figures are still printed).
    #[arg(long)]
    check: bool,
    /// Skip the kill -9 and SIGSTOP phases (formation, idle cost and propagation only).
    #[arg(long)]
    no_faults: bool,
}

/// Who each node sees up, replaying its events; and when the set last grew.
fn up_set(events: &[(u64, MemberEvent)]) -> (BTreeSet<String>, u64) {
    let mut up = BTreeSet::new();
    let mut last = 0;
    for (at, e) in events {
        match e {
            MemberEvent::MemberUp(n) => {
                up.insert(n.name.clone());
                last = *at;
            }
            MemberEvent::MemberDown { node, .. } | MemberEvent::MemberLeft(node) => {
                up.remove(&node.name);
            }
        }
    }
    (up, last)
}

/// `MemberDown` events about nodes not in `faulty`, seen by nodes not in `faulty`, after
/// `since` (ns). (A node thawed after a freeze finds its peers' connections closed and takes
/// them down: that is its freeze's doing, not a false down.)
fn false_downs(nodes: &[NodeProcess], faulty: &BTreeSet<String>, since: u64) -> Vec<String> {
    let mut out = Vec::new();
    for n in nodes.iter().filter(|n| !faulty.contains(n.name())) {
        for (at, e) in n.events() {
            if let MemberEvent::MemberDown { node, reason } = e {
                if at >= since && !faulty.contains(&node.name) {
                    out.push(format!("{} saw {} down ({reason:?})", n.name(), node.name));
                }
            }
        }
    }
    out
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// CPU ticks (user + system) of a process so far.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Waits until every other node has emitted `MemberDown` for `victim`; the delays from `at`.
async fn seen_down(
    nodes: &[NodeProcess],
    victim: &str,
    at: u64,
    timeout: Duration,
) -> Result<Vec<f64>, LaunchError> {
    let mut delays = Vec::new();
    for n in nodes.iter().filter(|n| n.name() != victim) {
        let events = n
            .wait_events(&format!("{victim} down"), timeout, |ev| {
                ev.iter().any(|(t, e)| {
                    *t >= at
                        && matches!(e, MemberEvent::MemberDown { node, .. } if node.name == victim)
                })
            })
            .await?;
        if let Some((t, _)) = events.iter().find(|(t, e)| {
            *t >= at && matches!(e, MemberEvent::MemberDown { node, .. } if node.name == victim)
        }) {
            delays.push(ms(t.saturating_sub(at)));
        }
    }
    Ok(delays)
}

type NamesSeen = BTreeMap<String, (u64, u64, String)>;

async fn names_seen(node: &NodeProcess, names: &[String]) -> Result<NamesSeen, LaunchError> {
    node.command_as(&AppCmd::NamesSeen {
        names: names.to_vec(),
    })
    .await
}

async fn run(cli: &Cli, n: usize) -> Result<Value, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("scale.db").display().to_string();
    drop(actor_poker::PokerStore::open(&store).await?);
    drop(examples::app::flag_store(&store).await?);
    let exe = std::env::current_exe()?;
    let args = |seeds: &[String]| {
        let mut a: Vec<String> = ["--role", "node", "--store", &store, "--cookie", "scale"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for s in seeds {
            a.extend(["--seed".to_string(), s.clone()]);
        }
        a
    };
    let name = |i: usize| format!("s{i:03}");
    let began = unix_ns();
    let seed = NodeProcess::start(&exe, &name(0), &args(&[])).await?;
    let seeds = vec![seed.addr()];
    let rest: Vec<Result<NodeProcess, LaunchError>> = stream::iter(1..n)
        .map(|i| {
            let (exe, a, nm) = (exe.clone(), args(&seeds), name(i));
            async move { NodeProcess::start(&exe, &nm, &a).await }
        })
        .buffer_unordered(cli.parallel.max(1))
        .collect()
        .await;
    let mut nodes = vec![seed];
    for r in rest {
        nodes.push(r?);
    }
    nodes.sort_by(|a, b| a.name().cmp(b.name()));
    let all_ready = unix_ns();

    // Formation: every node has every other up (replaying each node's events as they come).
    let form_timeout = Duration::from_secs(60 + n as u64);
    let mut formed_at = all_ready;
    for node in &nodes {
        let events = node
            .wait_events("the full mesh", form_timeout, |ev| {
                up_set(ev).0.len() + 1 >= n
            })
            .await?;
        formed_at = formed_at.max(up_set(&events).1);
    }
    let none = BTreeSet::new();
    let forming = false_downs(&nodes, &none, 0);

    // Idle cost: CPU over the window, then memory.
    let idle_from = unix_ns();
    let pids: Vec<u32> = nodes.iter().filter_map(NodeProcess::process_id).collect();
    let before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).collect();
    let window = Duration::from_secs(cli.idle_secs);
    let t0 = std::time::Instant::now();
    tokio::time::sleep(window).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let after: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).collect();
    let tck = clock_ticks_per_sec();
    let ticks: u64 = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .sum();
    let idle_cores = ticks as f64 / tck / elapsed;
    let mut rss: Vec<f64> = pids.iter().filter_map(|p| rss_mb(*p)).collect();
    let rss_median = percentile(&mut rss, 0.5);
    let rss_max = rss.iter().copied().fold(0.0, f64::max);
    let idle = false_downs(&nodes, &none, idle_from);

    // Registry propagation: probe names registered round-robin; each other node's replica
    // publishes them.
    let probe_names: Vec<String> = (0..cli.names).map(|i| format!("probe-{i}")).collect();
    for (i, nm) in probe_names.iter().enumerate() {
        nodes[i % n]
            .command(&AppCmd::Register { name: nm.clone() })
            .await?;
    }
    let mut reg = Vec::new();
    for node in &nodes {
        wait_until(
            &format!("{} sees every probe name", node.name()),
            Duration::from_secs(30),
            || async { Ok(names_seen(node, &probe_names).await?.len() == probe_names.len()) },
        )
        .await?;
        for (at, registered, owner) in names_seen(node, &probe_names).await?.into_values() {
            if owner != node.name() {
                reg.push(ms(at.saturating_sub(registered)));
            }
        }
    }
    let reg_p50 = percentile(&mut reg, 0.5);
    let reg_p99 = percentile(&mut reg, 0.99);

    let mut result = json!({
        "bench": "scale",
        "nodes": n,
        "started_s": (all_ready - began) as f64 / 1e9,
        "formed_s": formed_at.saturating_sub(all_ready) as f64 / 1e9,
        "idle_cores": idle_cores,
        "idle_cores_per_node": idle_cores / n as f64,
        "rss_mb_median": rss_median,
        "rss_mb_max": rss_max,
        "reg_p50_ms": reg_p50,
        "reg_p99_ms": reg_p99,
        "false_downs_forming": forming.len(),
        "false_downs_idle": idle.len(),
    });
    let mut problems: Vec<String> = forming.into_iter().chain(idle).collect();

    if !cli.no_faults && n >= 3 {
        // Ranking actors to fail over: opened from the seed, placed across the cluster.
        let ids: Vec<String> = nodes[0]
            .command_as(&AppCmd::Open {
                tournaments: (n as u64).min(40),
                players: 18,
            })
            .await?;
        let observer = &nodes[0];
        wait_until(
            "every ranking actor registered",
            Duration::from_secs(30),
            || async { Ok(names_seen(observer, &ids).await?.len() == ids.len()) },
        )
        .await?;
        let placed = names_seen(observer, &ids).await?;
        // The victim: the non-seed node running the most ranking actors.
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for (_, _, owner) in placed.values() {
            *count.entry(owner.clone()).or_default() += 1;
        }
        let victim_name = count
            .iter()
            .filter(|(nm, _)| **nm != name(0))
            .max_by_key(|(_, c)| **c)
            .map(|(nm, _)| nm.clone())
            .unwrap_or_else(|| name(n - 1));
        let moved: Vec<String> = placed
            .iter()
            .filter(|(_, (_, _, o))| *o == victim_name)
            .map(|(id, _)| id.clone())
            .collect();
        let stopped_name = nodes
            .iter()
            .map(|x| x.name().to_owned())
            .rfind(|nm| *nm != victim_name && *nm != name(0))
            .unwrap_or_else(|| name(1));
        let faulty: BTreeSet<String> = [victim_name.clone(), stopped_name.clone()].into();

        let k = nodes
            .iter()
            .position(|x| x.name() == victim_name)
            .ok_or("victim not found")?;
        let killed_at = unix_ns();
        nodes[k].kill().await?;
        let observer = &nodes[0];
        let mut kill = seen_down(&nodes, &victim_name, killed_at, Duration::from_secs(30)).await?;
        wait_until(
            "the killed node's ranking actors run elsewhere",
            Duration::from_secs(30),
            || async {
                let seen = names_seen(observer, &moved).await?;
                Ok(moved.iter().all(|id| {
                    seen.get(id)
                        .is_some_and(|(at, _, o)| *o != victim_name && *at >= killed_at)
                }))
            },
        )
        .await?;
        let seen = names_seen(observer, &moved).await?;
        let failover = seen
            .values()
            .map(|(at, _, _)| ms(at.saturating_sub(killed_at)))
            .fold(0.0, f64::max);

        let j = nodes
            .iter()
            .position(|x| x.name() == stopped_name)
            .ok_or("stopped node not found")?;
        let stopped_at = unix_ns();
        nodes[j].freeze()?;
        let others: Vec<&NodeProcess> = nodes.iter().filter(|x| x.name() != victim_name).collect();
        let mut stop = Vec::new();
        for x in others {
            stop.extend(
                seen_down(
                    std::slice::from_ref(x),
                    &stopped_name,
                    stopped_at,
                    Duration::from_secs(30),
                )
                .await?,
            );
        }
        nodes[j].thaw()?;
        problems.extend(false_downs(&nodes, &faulty, 0));
        result["killed"] = json!(victim_name);
        result["stopped"] = json!(stopped_name);
        result["moved_actors"] = json!(moved.len());
        result["failover_ms"] = json!(failover);
        result["kill_seen_ms_p50"] = json!(percentile(&mut kill, 0.5));
        result["kill_seen_ms_max"] = json!(kill.iter().copied().fold(0.0, f64::max));
        result["stop_seen_ms_p50"] = json!(percentile(&mut stop, 0.5));
        result["stop_seen_ms_max"] = json!(stop.iter().copied().fold(0.0, f64::max));
    }
    result["false_downs"] = json!(problems.len());
    if !problems.is_empty() {
        result["false_down_examples"] = json!(problems.iter().take(5).collect::<Vec<_>>());
    }
    drop(nodes);
    Ok(result)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if examples::app::child::is_node_process() {
        return examples::app::child::run();
    }
    examples::app::child::init_program_logging();
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut failed = false;
        for &n in &cli.nodes {
            match run(&cli, n).await {
                Ok(v) => {
                    if cli.check && v["false_downs"].as_u64() != Some(0) {
                        failed = true;
                    }
                    println!("{v}");
                }
                Err(e) => {
                    failed = true;
                    println!(
                        "{}",
                        json!({"bench": "scale", "nodes": n, "error": e.to_string()})
                    );
                }
            }
        }
        if failed && cli.check {
            return Err::<(), Box<dyn std::error::Error>>("scale check failed".into());
        }
        Ok(())
    })
}
