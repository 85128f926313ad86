//! Overload bench: one node floods another with remote casts; prints one JSON line per run
//! with delivery, drops, peak RSS of both processes, heartbeat health and a call made during
//! the flood.
//!
//! ```text
//! cargo run --release -p actor-cluster --example overload -- --casts 1000000,10000000 --modes raw,try,wait
//! ```
//!
//! With `--sink-work-us N --until-sent` the flooded node's sink spends N µs on each message and
//! the run ends when the flood is sent: `queued_at_receiver` and
//! `flooded_bytes_per_queued_message` measure what a peer writing faster than the receiver
//! consumes leaves queued there.
//!
//! `raw` is ractor's own unbounded `cast`; `try` and `wait` are the bounded sends of
//! `actor_cluster::remote` (drop when the peer's outbound queue is full, or wait for room).
//! Each run starts two fresh node processes (this binary in its node role).
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::{MemberEvent, Node};
use actor_testkit::flood::{Flood, FloodCmd, FloodMode};
use actor_testkit::{serve, TestNode};
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(about = "Flood one node with remote casts; print memory and heartbeat health")]
struct Args {
    /// Casts per run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    casts: Vec<u64>,
    /// Send modes (comma-separated): raw, try, wait.
    #[arg(long, value_delimiter = ',', default_value = "raw,try,wait")]
    modes: Vec<String>,
    /// Bound of each peer's outbound queue (messages); the node default when unset.
    #[arg(long)]
    max_outbound: Option<u64>,
    /// CPU the flooded node's sink spends on each message, µs (0: it keeps up). A slow sink
    /// measures what queues on the receiving side.
    #[arg(long, default_value_t = 0)]
    sink_work_us: u64,
    /// End a run when the flood has been sent, without waiting for delivery (with a slow sink).
    #[arg(long)]
    until_sent: bool,
    /// Longest a run may take, seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Node role (set by the driver): node name.
    #[arg(long, hide = true)]
    name: Option<String>,
    /// Node role: listen address.
    #[arg(long, hide = true, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Node role: seed.
    #[arg(long = "seed", hide = true)]
    seeds: Vec<String>,
}

async fn node_role(args: Args, name: String) -> Result<(), Box<dyn std::error::Error>> {
    actor_testkit::init_logging("warn");
    let mut b = Node::builder(name).listen(args.listen).cookie("overload");
    if let Some(m) = args.max_outbound {
        b = b.max_outbound(m);
    }
    if !args.seeds.is_empty() {
        b = b.seeds(args.seeds);
    }
    let node = b.start().await?;
    let flood = Flood::start_with(&node, Duration::from_micros(args.sink_work_us)).await?;
    serve(node, Arc::new(flood)).await;
    Ok(())
}

/// (VmRSS, VmHWM) in MiB.
fn rss(pid: Option<u32>) -> (f64, f64) {
    let Some(pid) = pid else { return (0.0, 0.0) };
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (0.0, 0.0);
    };
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn downs(n: &TestNode) -> usize {
    n.events()
        .iter()
        .filter(|(_, e)| matches!(e, MemberEvent::MemberDown { .. }))
        .count()
}

async fn run(args: &Args, mode: &str, n: u64) -> Result<Value, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut extra = Vec::new();
    if let Some(m) = args.max_outbound {
        extra.extend(["--max-outbound".to_owned(), m.to_string()]);
    }
    let mut b_args = extra.clone();
    b_args.extend(["--sink-work-us".to_owned(), args.sink_work_us.to_string()]);
    let b = TestNode::start(&exe, "flooded", &b_args).await?;
    let mut a_args = extra.clone();
    a_args.extend(["--seed".to_owned(), b.addr()]);
    let a = TestNode::start(&exe, "flooder", &a_args).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mesh = a.up_members().await? == BTreeSet::from(["flooded".to_owned()])
            && b.up_members().await? == BTreeSet::from(["flooder".to_owned()]);
        let sink = a
            .command(&FloodCmd::CallSink {
                timeout_ms: 1000,
                to: None,
            })
            .await;
        if mesh && sink.is_ok_and(|s| s["ok"].is_u64()) {
            break;
        }
        if Instant::now() > deadline {
            return Err("the two nodes did not connect".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, base_a) = rss(a.process_id());
    let (_, base_b) = rss(b.process_id());
    let t0 = Instant::now();
    let how: FloodMode =
        serde_json::from_value(json!(mode)).map_err(|_| format!("unknown mode {mode:?}"))?;
    a.command(&FloodCmd::Flood {
        n,
        mode: how,
        to: None,
    })
    .await?;
    let mut call = Value::Null;
    let mut max_queued = 0u64;
    let deadline = t0 + Duration::from_secs(args.timeout_secs);
    let (status, received) = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let st = a.command(&FloodCmd::FloodStatus).await?;
        max_queued = max_queued.max(st["queued"].as_u64().unwrap_or(0));
        if call.is_null()
            && st["sent"].as_u64().unwrap_or(0) + st["dropped"].as_u64().unwrap_or(0) > n / 4
        {
            call = a
                .command(&FloodCmd::CallSink {
                    timeout_ms: 5000,
                    to: None,
                })
                .await?;
        }
        let received = b.command(&FloodCmd::SinkCount).await?.as_u64().unwrap_or(0);
        let sent = st["sent"].as_u64().unwrap_or(0);
        if st["done"].as_bool() == Some(true) && (received >= sent || args.until_sent) {
            break (st, received);
        }
        if Instant::now() > deadline {
            break (st, received);
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    let (rss_a, hwm_a) = rss(a.process_id());
    let (rss_b, hwm_b) = rss(b.process_id());
    let sent = status["sent"].as_u64().unwrap_or(0);
    Ok(json!({
        "bench": "overload",
        "mode": mode,
        "casts": n,
        "sent": status["sent"],
        "dropped": status["dropped"],
        "failed": status["failed"],
        "delivered": received,
        "secs": (secs * 100.0).round() / 100.0,
        "delivered_per_s": (received as f64 / secs).round(),
        "max_queued_seen": max_queued,
        "flooder_rss_start_mib": base_a.round(),
        "flooder_peak_rss_mib": hwm_a.round(),
        "flooder_rss_end_mib": rss_a.round(),
        "flooded_rss_start_mib": base_b.round(),
        "flooded_peak_rss_mib": hwm_b.round(),
        "flooded_rss_end_mib": rss_b.round(),
        "sink_work_us": args.sink_work_us,
        "queued_at_receiver": sent.saturating_sub(received),
        "flooded_bytes_per_queued_message": if sent > received {
            ((rss_b - base_b) * 1024.0 * 1024.0 / (sent - received) as f64).round()
        } else {
            0.0
        },
        "member_down_events": downs(&a) + downs(&b),
        "call_during_flood": call,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(name) = args.name.clone() {
        return node_role(args, name).await;
    }
    for &n in &args.casts {
        for mode in &args.modes {
            let line = run(&args, mode, n).await?;
            println!("{line}");
        }
    }
    Ok(())
}
