//! Flag check and propagation benchmark.
//!
//! `cargo run --release -p actor-cluster-tests --example flags_bench` prints JSON lines:
//! * `check`: ns per check of a boolean flag by handle and by name, with an actor gate, and with
//!   a %-of-actors gate (one SHA-256 per check, as FWF); ms for 10 M checks by name; the same
//!   on 2 threads (wall time for 2 × 10 M);
//! * `check_details`: ns per `Flags::evaluate` (reason, gate, version) by handle, by name and
//!   with an actor gate; per check of a name that does not exist (counted, logged once); and per
//!   check with the evaluation counters on (by handle, by name, actor gate), then off again (by
//!   handle and by name, for a paired comparison);
//! * `propagation`: 5 node processes (this binary) on one SQLite file; 1,000 toggles on one
//!   node, 2 ms apart; p50/p99 from the write's version (the wall-clock part of its HLC stamp) until each other
//!   node installed it.
#![allow(clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster_tests::flags_node::FlagsCmd;
use actor_flags::store::SqlStore;
use actor_flags::Flags;
use actor_testkit::{wait_until, TestNode};
use clap::Parser;
use serde_json::json;

type BoxErr = Box<dyn std::error::Error>;

fn per_check(n: u64, f: impl Fn() -> bool) -> f64 {
    let t = Instant::now();
    let mut on = 0u64;
    for _ in 0..n {
        on += u64::from(black_box(f()));
    }
    black_box(on);
    t.elapsed().as_nanos() as f64 / n as f64
}

async fn checks() -> Result<(), BoxErr> {
    let dir = tempfile::tempdir()?;
    let store = SqlStore::sqlite(&dir.path().join("bench.db")).await?;
    let flags = Flags::open(Arc::new(store)).await?;
    flags.enable("bool_on").await?;
    flags.disable("actor_gate").await?;
    flags.set_for_actor("actor_gate", "user:1", true).await?;
    flags.enable_percentage_of_actors("pct_actors", 0.5).await?;
    let handle = flags.handle("bool_on")?;
    let n = 50_000_000;
    let by_handle = per_check(n, || handle.enabled());
    let by_name = per_check(n, || flags.enabled("bool_on"));
    let actor = per_check(5_000_000, || flags.enabled_for("actor_gate", "user:1"));
    let pct = per_check(2_000_000, || flags.enabled_for("pct_actors", "user:77"));
    let ten_m_handle_ms = per_check(10_000_000, || handle.enabled()) * 10.0;
    let ten_m_ms = per_check(10_000_000, || flags.enabled("bool_on")) * 10.0;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let f = flags.clone();
            s.spawn(move || {
                let mut on = 0u64;
                for _ in 0..10_000_000 {
                    on += u64::from(black_box(f.enabled("bool_on")));
                }
                black_box(on);
            });
        }
    });
    let two_threads_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "{{\"bench\":\"check\",\"ns_by_handle\":{by_handle:.2},\"ns_by_name\":{by_name:.2},\"ns_actor_gate\":{actor:.1},\"ns_pct_of_actors\":{pct:.1},\"ms_10m_by_handle\":{ten_m_handle_ms:.1},\"ms_10m_by_name\":{ten_m_ms:.1},\"ms_2x10m_on_2_threads\":{two_threads_ms:.1}}}"
    );
    // Evaluation details (reason, gate, version), then the same checks with counters on.
    let eval_handle = per_check(n, || handle.evaluate().enabled);
    let eval_name = per_check(n, || flags.evaluate("bool_on").enabled);
    let eval_actor = per_check(5_000_000, || {
        flags.evaluate_for("actor_gate", "user:1").enabled
    });
    let unknown = per_check(5_000_000, || flags.enabled("bool_onn"));
    flags.count_evaluations(true);
    let counted_handle = per_check(n, || handle.enabled());
    let counted_name = per_check(n, || flags.enabled("bool_on"));
    let counted_actor = per_check(5_000_000, || flags.enabled_for("actor_gate", "user:1"));
    flags.count_evaluations(false);
    let uncounted_handle = per_check(n, || handle.enabled());
    let uncounted_name = per_check(n, || flags.enabled("bool_on"));
    println!(
        "{{\"bench\":\"check_details\",\"ns_evaluate_by_handle\":{eval_handle:.2},\"ns_evaluate_by_name\":{eval_name:.2},\"ns_evaluate_actor_gate\":{eval_actor:.1},\"ns_unknown_name\":{unknown:.1},\"ns_by_handle_counted\":{counted_handle:.2},\"ns_by_name_counted\":{counted_name:.2},\"ns_actor_gate_counted\":{counted_actor:.1},\"ns_by_handle_uncounted_again\":{uncounted_handle:.2},\"ns_by_name_uncounted_again\":{uncounted_name:.2}}}"
    );
    Ok(())
}

async fn propagation() -> Result<(), BoxErr> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("flags.db").display().to_string();
    let exe = std::env::current_exe()?;
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..5 {
        let mut a = vec![
            "--role".to_string(),
            "node".to_string(),
            "--store".to_string(),
            db.clone(),
        ];
        if let Some(first) = nodes.first() {
            a.extend(["--seed".to_string(), first.addr()]);
        }
        nodes.push(TestNode::start(&exe, &format!("p{i}"), &a).await?);
    }
    for n in &nodes {
        wait_until("mesh", Duration::from_secs(10), || async {
            Ok(n.up_members().await?.len() == 4)
        })
        .await?;
    }
    // Let the flag endpoints appear everywhere: one write must reach every node.
    nodes[0]
        .command(&FlagsCmd::Enable {
            flag: "warmup".into(),
        })
        .await?;
    for n in &nodes {
        wait_until(
            "warm-up flag everywhere",
            Duration::from_secs(10),
            || async {
                Ok(n.command(&FlagsCmd::Check {
                    flag: "warmup".into(),
                })
                .await?
                    == json!(true))
            },
        )
        .await?;
    }
    let versions: Vec<u64> = serde_json::from_value(
        nodes[0]
            .command(&FlagsCmd::ToggleMany {
                flag: "toggled".into(),
                count: 1000,
            })
            .await?,
    )?;
    let mut lat = Vec::new();
    for n in &nodes[1..] {
        let seen_all = FlagsCmd::Seen {
            flag: "toggled".into(),
            versions: versions.clone(),
        };
        wait_until("every toggle seen", Duration::from_secs(30), || async {
            let seen: Vec<Option<u64>> = n.command_as(&seen_all).await?;
            Ok(seen.iter().all(Option::is_some))
        })
        .await?;
        let seen: Vec<Option<u64>> = n.command_as(&seen_all).await?;
        for (v, s) in versions.iter().zip(seen) {
            if let Some(s) = s {
                // A version is a packed HLC stamp: its wall-clock part is when the write was made.
                let written = actor_core::hlc::Stamp::from_version(*v).wall_ns;
                lat.push(s.saturating_sub(written) as f64 / 1e6);
            }
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
    println!(
        "{{\"bench\":\"propagation\",\"nodes\":5,\"toggles\":{},\"observations\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        versions.len(),
        lat.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxErr> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--role") {
        // Drop the `--role node` pair; the rest are the node's own arguments.
        let mut rest = Vec::with_capacity(args.len());
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == "--role" {
                it.next();
            } else {
                rest.push(a.clone());
            }
        }
        return actor_cluster_tests::flags_node::run(
            actor_cluster_tests::flags_node::NodeArgs::parse_from(rest),
        )
        .await;
    }
    checks().await?;
    propagation().await
}
