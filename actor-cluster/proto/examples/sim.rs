//! Runs the cluster simulator over many seeds and prints one JSON line per class and a total:
//! `cargo run --release -p actor-cluster-proto --example sim -- --seeds 10000 [--from 0]`.
//! A failing seed is printed with its step; `--seed N` replays one seed.

use std::time::Instant;

use actor_cluster_proto::sim::{run_seed, Class};

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

#[allow(clippy::print_stdout)]
fn main() {
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
