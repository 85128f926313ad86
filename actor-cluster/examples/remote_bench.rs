//! Remote messaging benchmark: raw ractor_cluster against this crate's layer, in one run.
//!
//! `cargo run --release -p actor-cluster --example remote_bench` starts, for each mode and
//! round, a server process and a client process (this same binary), on 127.0.0.1:
//!
//! * `raw`: ractor_cluster's own TCP listener and `client_connect`, a message type derived with
//!   ractor_cluster's `RactorClusterMessage`, the remote actor found through a pg group;
//! * `ours`: `actor_cluster::Node` (our transport with fault injection, identity exchange and
//!   membership heartbeats running), messages derived with `actor_core::RemoteMessage` (the
//!   rmp-serde codec), the remote actor found as a typed remote ref.
//!
//! The client measures cast throughput (N small casts, then a `Flush` call on the same FIFO
//! path that returns how many arrived: the time runs until that reply) and the round-trip time
//! of sequential calls. The orchestrator prints one JSON line per payload with the medians over
//! the rounds: small casts (a `u64`), then casts carrying 1 KB (`"payload_bytes":1024`, as the
//! Erlang peer's 1 KB case).
//! Options: `--casts N` (1,000,000), `--casts-1k N` (300,000), `--calls N` (10,000),
//! `--rounds N` (3).
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use actor_cluster::Node;
use actor_core::ractor::{self, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use actor_core::RemoteMessage;
use ractor_cluster::RactorClusterMessage;
use tokio::io::{AsyncBufReadExt, BufReader};

type BoxErr = Box<dyn std::error::Error + Send + Sync>;

#[derive(RactorClusterMessage)]
enum RawMsg {
    Ping(u64),
    Blob(Vec<u8>),
    #[rpc]
    Flush(RpcReplyPort<u64>),
    #[rpc]
    Echo(u64, RpcReplyPort<u64>),
}

#[derive(RemoteMessage)]
enum OurMsg {
    Ping(u64),
    Blob(Vec<u8>),
    Flush(RpcReplyPort<u64>),
    Echo(u64, RpcReplyPort<u64>),
}

struct RawSink;
impl Actor for RawSink {
    type Msg = RawMsg;
    type State = u64;
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<RawMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }
    async fn handle(
        &self,
        _: ActorRef<RawMsg>,
        m: RawMsg,
        n: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match m {
            RawMsg::Ping(_) | RawMsg::Blob(_) => *n += 1,
            RawMsg::Flush(r) => {
                let _ = r.send(*n);
            }
            RawMsg::Echo(x, r) => {
                let _ = r.send(x);
            }
        }
        Ok(())
    }
}

struct OurSink;
impl Actor for OurSink {
    type Msg = OurMsg;
    type State = u64;
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<OurMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }
    async fn handle(
        &self,
        _: ActorRef<OurMsg>,
        m: OurMsg,
        n: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match m {
            OurMsg::Ping(_) | OurMsg::Blob(_) => *n += 1,
            OurMsg::Flush(r) => {
                let _ = r.send(*n);
            }
            OurMsg::Echo(x, r) => {
                let _ = r.send(x);
            }
        }
        Ok(())
    }
}

enum Target {
    Raw(ActorRef<RawMsg>),
    Ours(ActorRef<OurMsg>),
}

const CALL_TIMEOUT: Option<Duration> = Some(Duration::from_secs(120));

impl Target {
    fn cast(&self, i: u64, payload: &[u8]) -> Result<(), BoxErr> {
        match (self, payload.is_empty()) {
            (Target::Raw(r), true) => r.cast(RawMsg::Ping(i))?,
            (Target::Raw(r), false) => r.cast(RawMsg::Blob(payload.to_vec()))?,
            (Target::Ours(r), true) => r.cast(OurMsg::Ping(i))?,
            (Target::Ours(r), false) => r.cast(OurMsg::Blob(payload.to_vec()))?,
        }
        Ok(())
    }
    async fn flush(&self) -> Result<u64, BoxErr> {
        let r = match self {
            Target::Raw(r) => r.call(RawMsg::Flush, CALL_TIMEOUT).await?,
            Target::Ours(r) => r.call(OurMsg::Flush, CALL_TIMEOUT).await?,
        };
        Ok(r.success_or("flush failed")?)
    }
    async fn echo(&self, i: u64) -> Result<u64, BoxErr> {
        let r = match self {
            Target::Raw(r) => r.call(|p| RawMsg::Echo(i, p), CALL_TIMEOUT).await?,
            Target::Ours(r) => r.call(|p| OurMsg::Echo(i, p), CALL_TIMEOUT).await?,
        };
        Ok(r.success_or("echo failed")?)
    }
}

fn free_port() -> Result<u16, BoxErr> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

async fn raw_server() -> Result<(), BoxErr> {
    let port = free_port()?;
    let server = ractor_cluster::NodeServer::new(
        port,
        "bench".into(),
        "server".into(),
        "127.0.0.1".into(),
        None,
        None,
    )
    .with_listen_addr(Ipv4Addr::LOCALHOST.into());
    let (_s, _) = Actor::spawn(None, server, ()).await?;
    let (sink, _) = Actor::spawn(None, RawSink, ()).await?;
    ractor::pg::join("bench".into(), vec![sink.get_cell()]);
    println!("127.0.0.1:{port}");
    wait_stdin_closed().await;
    Ok(())
}

async fn ours_server() -> Result<(), BoxErr> {
    let node = Node::builder("server").cookie("bench").start().await?;
    let (sink, _) = Actor::spawn(None, OurSink, ()).await?;
    actor_cluster::remote::register("bench", &sink);
    println!("{}", node.addr());
    wait_stdin_closed().await;
    Ok(())
}

async fn wait_stdin_closed() {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = lines.next_line().await {}
}

async fn client(
    mode: &str,
    peer: SocketAddr,
    casts: u64,
    calls: usize,
    payload: usize,
) -> Result<(), BoxErr> {
    let target = if mode == "raw" {
        let port = free_port()?;
        let server = ractor_cluster::NodeServer::new(
            port,
            "bench".into(),
            "client".into(),
            "127.0.0.1".into(),
            None,
            None,
        )
        .with_listen_addr(Ipv4Addr::LOCALHOST.into());
        let (s, _) = Actor::spawn(None, server, ()).await?;
        ractor_cluster::client_connect(&s, peer).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(c) = ractor::pg::get_members(&"bench".to_string())
                .into_iter()
                .find(|c| !c.get_id().is_local())
            {
                break Target::Raw(ActorRef::from(c));
            }
            if Instant::now() > deadline {
                return Err("raw: remote sink never appeared".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    } else {
        let _node = Box::leak(Box::new(
            Node::builder("client")
                .cookie("bench")
                .seeds([peer.to_string()])
                .start()
                .await?,
        ));
        let r = actor_cluster::remote::wait_remote::<OurMsg>("bench", Duration::from_secs(10))
            .await
            .ok_or("ours: remote sink never appeared")?;
        Target::Ours(r)
    };
    for i in 0..1_000 {
        target.echo(i).await?;
    }
    let blob = vec![7u8; payload];
    let before = target.flush().await?;
    let t0 = Instant::now();
    for i in 0..casts {
        target.cast(i, &blob)?;
        // 1 KB casts fill the socket's queue for seconds: the sender lets its runtime run
        // between batches (membership answers its pings), as a producer in a service would.
        if payload > 0 && i % 1024 == 1023 {
            tokio::task::yield_now().await;
        }
    }
    let received = target.flush().await? - before;
    let cast_secs = t0.elapsed().as_secs_f64();
    if received != casts {
        return Err(format!("{received} of {casts} casts arrived").into());
    }
    let mut rtt = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        let v = target.echo(i as u64).await?;
        rtt.push(t.elapsed());
        if v != i as u64 {
            return Err("echo answered the wrong value".into());
        }
    }
    rtt.sort();
    let pct = |p: f64| rtt[((rtt.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6;
    println!(
        "{{\"cast_msgs_per_s\":{:.0},\"call_p50_us\":{:.1},\"call_p99_us\":{:.1}}}",
        casts as f64 / cast_secs,
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}

#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    cast: f64,
    p50: f64,
    p99: f64,
}

async fn round(mode: &str, casts: u64, calls: usize, payload: usize) -> Result<Figures, BoxErr> {
    let exe = std::env::current_exe()?;
    let mut server = tokio::process::Command::new(&exe)
        .args(["--role", "server", "--mode", mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut out = BufReader::new(server.stdout.take().ok_or("no stdout")?).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), out.next_line())
        .await??
        .ok_or("server exited")?;
    let client = tokio::process::Command::new(&exe)
        .args(["--role", "client", "--mode", mode, "--peer", &addr])
        .args(["--casts", &casts.to_string(), "--calls", &calls.to_string()])
        .args(["--payload", &payload.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), client).await??;
    drop(server.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(5), server.wait()).await;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().ok_or_else(|| {
        format!(
            "the {mode} client printed nothing: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    Ok(Figures {
        cast: v["cast_msgs_per_s"].as_f64().ok_or("bad output")?,
        p50: v["call_p50_us"].as_f64().ok_or("bad output")?,
        p99: v["call_p99_us"].as_f64().ok_or("bad output")?,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), BoxErr> {
    // Each process runs one scheduler thread: with two processes on a 2-core machine this
    // keeps them from fighting over cores, which otherwise dominates the figures.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), BoxErr> {
    let args: Vec<String> = std::env::args().collect();
    let casts: u64 = arg(&args, "--casts", 1_000_000);
    let calls: usize = arg(&args, "--calls", 10_000);
    let rounds: usize = arg(&args, "--rounds", 3);
    let mode: String = arg(&args, "--mode", String::new());
    match arg(&args, "--role", String::new()).as_str() {
        "server" if mode == "raw" => return raw_server().await,
        "server" => return ours_server().await,
        "client" => {
            let peer: SocketAddr = arg(&args, "--peer", String::new()).parse()?;
            let payload: usize = arg(&args, "--payload", 0);
            return client(&mode, peer, casts, calls, payload).await;
        }
        _ => {}
    }
    let casts_1k: u64 = arg(&args, "--casts-1k", 300_000);
    for (payload, casts) in [(0usize, casts), (1024, casts_1k)] {
        report(casts, calls, rounds, payload).await?;
    }
    Ok(())
}

/// Rounds of both modes with one payload, then their JSON line.
async fn report(casts: u64, calls: usize, rounds: usize, payload: usize) -> Result<(), BoxErr> {
    let mut raw = Vec::new();
    let mut ours = Vec::new();
    for r in 0..rounds {
        let a = round("raw", casts, calls, payload).await?;
        let b = round("ours", casts, calls, payload).await?;
        eprintln!("payload {payload} B, round {r}: raw {a:?} ours {b:?}");
        raw.push(a);
        ours.push(b);
    }
    let m = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
    let (rc, oc) = (m(&raw, |f| f.cast), m(&ours, |f| f.cast));
    let (r50, o50) = (m(&raw, |f| f.p50), m(&ours, |f| f.p50));
    let (r99, o99) = (m(&raw, |f| f.p99), m(&ours, |f| f.p99));
    println!(
        "{{\"bench\":\"remote\",\"payload_bytes\":{payload},\"casts\":{casts},\"calls\":{calls},\"rounds\":{rounds},\
\"raw\":{{\"cast_msgs_per_s\":{rc:.0},\"call_p50_us\":{r50:.1},\"call_p99_us\":{r99:.1}}},\
\"ours\":{{\"cast_msgs_per_s\":{oc:.0},\"call_p50_us\":{o50:.1},\"call_p99_us\":{o99:.1}}},\
\"cast_throughput_cost_pct\":{:.1},\"call_p50_cost_pct\":{:.1}}}",
        (1.0 - oc / rc) * 100.0,
        (o50 / r50 - 1.0) * 100.0
    );
    Ok(())
}
