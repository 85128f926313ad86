//! Runs the cluster simulator over many seeds and prints one JSON line per class and a total:
//! `cargo run --release -p actor-cluster-proto --example sim -- --seeds 10000 [--from 0]`.
//! A failing seed is printed with its step; `--seed N` replays one seed.
//!
//! `--scale 100,300,1000 [--seed N]` runs scale scenarios instead: one JSON line per size with
//! formation, join, crash and freeze convergence (virtual seconds) and traffic per node per
//! second while idle and during churn.
//!
//! `--churn 1000000 [--wave 1000] [--seed N]` starts and terminates that many short-lived
//! children on three nodes, a wave a second, and prints a JSON line per sample of the
//! replicated state (rows, tombstones and bytes of the child table, registry names).

use std::time::Instant;

use actor_cluster_proto::sim::{
    run_churn, run_scale, run_seed, ChurnScenario, Class, ScaleReport, ScaleScenario,
};

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn secs(d: Option<std::time::Duration>) -> String {
    d.map_or_else(|| "null".to_owned(), |d| format!("{:.3}", d.as_secs_f64()))
}

fn scale_line(r: &ScaleReport) -> String {
    format!(
        "{{\"nodes\":{},\"seed\":{},\"formed_s\":{},\"join_converged_s\":{},\"crash_converged_s\":{},\"freeze_converged_s\":{},\"false_downs\":{},\"idle_msgs_per_node_s\":{:.1},\"idle_bytes_per_node_s\":{:.0},\"idle_probe_bytes_per_node_s\":{:.0},\"join_msgs_per_node_s\":{:.1},\"join_bytes_per_node_s\":{:.0},\"churn_msgs_per_node_s\":{:.1},\"churn_bytes_per_node_s\":{:.0},\"steps\":{},\"wall_s\":{:.1}}}",
        r.nodes,
        r.seed,
        secs(r.formed_after),
        secs(r.join_converged),
        secs(r.crash_converged),
        secs(r.freeze_converged),
        r.false_downs,
        r.idle.msgs,
        r.idle.bytes,
        r.idle.probe_bytes,
        r.join.msgs,
        r.join.bytes,
        r.churn.msgs,
        r.churn.bytes,
        r.steps,
        r.wall.as_secs_f64(),
    )
}

#[allow(clippy::print_stdout)]
fn churn(children: u64) {
    let wave = arg("--wave").unwrap_or(1000).max(1);
    let sc = ChurnScenario {
        children,
        wave,
        sample_every: (children / wave / 20).max(1),
        seed: arg("--seed").unwrap_or(1),
    };
    match run_churn(&sc) {
        Ok(r) => {
            for s in &r.samples {
                println!(
                    "{{\"started\":{},\"rows\":{},\"tombstones\":{},\"row_bytes\":{},\"registry_names\":{},\"collected\":{}}}",
                    s.started, s.rows, s.tombstones, s.row_bytes, s.names, s.collected
                );
            }
            println!(
                "{{\"children\":{children},\"wave\":{wave},\"wall_s\":{:.1}}}",
                r.wall.as_secs_f64()
            );
        }
        Err(v) => {
            println!("FAIL {v}");
            std::process::exit(1);
        }
    }
}

#[allow(clippy::print_stdout)]
fn main() {
    if let Some(children) = arg("--churn") {
        churn(children);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(sizes) = args
        .iter()
        .position(|a| a == "--scale")
        .and_then(|i| args.get(i + 1))
    {
        let seed = arg("--seed").unwrap_or(1);
        let mut failed = false;
        for n in sizes.split(',') {
            let Ok(n) = n.trim().parse::<usize>() else {
                println!("FAIL --scale takes sizes like 100,300,1000, not {n:?}");
                std::process::exit(2);
            };
            match run_scale(&ScaleScenario::new(n, seed)) {
                Ok(r) => println!("{}", scale_line(&r)),
                Err(v) => {
                    println!("FAIL {v}");
                    failed = true;
                }
            }
        }
        if failed {
            std::process::exit(1);
        }
        return;
    }
    if let Some(seed) = arg("--seed") {
        match run_seed(seed) {
            Ok(r) => println!("{r:?}"),
            Err(v) => {
                println!("FAIL {v}");
                std::process::exit(1);
            }
        }
        return;
    }
    let seeds = arg("--seeds").unwrap_or(1000);
    let from = arg("--from").unwrap_or(0);
    let t = Instant::now();
    let mut failed = Vec::new();
    let mut per: Vec<(Class, u64, u64, u64, u128)> = Vec::new();
    for seed in from..from + seeds {
        match run_seed(seed) {
            Ok(r) => {
                let slot = match per.iter_mut().find(|p| p.0 == r.class) {
                    Some(s) => s,
                    None => {
                        per.push((r.class, 0, 0, 0, 0));
                        let Some(s) = per.last_mut() else { continue };
                        s
                    }
                };
                slot.1 += 1;
                slot.2 += r.steps;
                slot.3 += r.duplicate_starts;
                slot.4 = slot.4.max(r.settled_after.as_millis());
            }
            Err(v) => {
                println!("FAIL {v}");
                failed.push(seed);
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    for (class, runs, steps, dups, settle) in per {
        println!(
            "{{\"class\":\"{class:?}\",\"runs\":{runs},\"steps\":{steps},\"duplicate_starts\":{dups},\"max_settle_ms\":{settle}}}"
        );
    }
    println!(
        "{{\"seeds\":{seeds},\"failed\":{},\"seconds\":{secs:.2},\"seeds_per_second\":{:.1}}}",
        failed.len(),
        seeds as f64 / secs
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
