//! Distributed supervision benchmark, on node processes of this binary (127.0.0.1).
//!
//! `cargo run --release -p actor-cluster --example supervision_bench` prints JSON lines:
//! * `failover`: 10,000 children on 3 nodes; kill -9 of the node with the most; the time from
//!   the kill until the last of its children has started again on a survivor (each node records
//!   when it starts a child; the cluster is checked to run every child exactly once);
//! * `registry_lookup`: ns per `Registry::lookup` of a name registered on another node;
//! * `registry_propagation`: p50/p99 from `register` returning on one node until the name is
//!   seen on each of the other two, over 1,000 registrations made 2 ms apart;
//! * `memory`: bytes of resident memory per child per node, from each node's RSS before the
//!   children start and once they all run. A fourth node, an observer that runs none of them
//!   (it does not know their kind), holds only the replicated state: the child table and the
//!   registry's entries (`replica_bytes_per_child`).
//!
//! Options: `--children N` (10,000), `--registrations N` (1,000), `--remote-children`: the
//! children's messages can cross nodes (a `RemoteMessage`, as an entity's are), so every other
//! node holds a ractor_cluster proxy actor for each (by default they are local-only, and the
//! figures are those of the table and the registry alone).
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::supervisor::DistChildSpec;
use actor_cluster::{DistributedSupervisor, Node, Registry, RegistryEvent, StartContext};
use actor_core::ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use actor_core::LocalMessage;
use actor_testkit::{self as testkit, unix_ns, wait_until, ControlExtension, TestNode};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

type BoxErr = Box<dyn std::error::Error + Send + Sync>;

struct Noop;

#[derive(LocalMessage)]
enum NoopMsg {}

impl Actor for Noop {
    type Msg = NoopMsg;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<NoopMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// A registered actor whose messages can cross nodes (so other nodes get a ref to it).
struct Named;

#[derive(actor_core::RemoteMessage)]
enum NamedMsg {
    Ping,
}

impl Actor for Named {
    type Msg = NamedMsg;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<NamedMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<NamedMsg>,
        _: NamedMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

struct Commands {
    dsup: DistributedSupervisor,
    registry: Registry,
    last_start: Arc<AtomicU64>,
    seen: Arc<Mutex<HashMap<String, u64>>>,
}

/// The bench node's commands.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
enum BenchCmd {
    /// Start children `c0..c{count}`.
    StartMany { count: u64 },
    /// The children running here.
    Local,
    /// Whether this node has no decisions left.
    Settled,
    /// How many members can run children.
    Eligible,
    /// When a child last started here (ns since the Unix epoch).
    LastStart,
    /// Register `{prefix}0..{prefix}{count}`, 2 ms apart; replies their times.
    RegisterMany { prefix: String, count: u64 },
    /// When each of those names was first seen here.
    Seen { prefix: String, count: u64 },
    /// ns per local lookup of those names.
    LookupNs { prefix: String, count: u64 },
    /// This process's resident memory, bytes.
    Rss,
}

/// This process's resident set, in bytes (Linux).
fn rss_bytes() -> Result<u64, String> {
    let statm = std::fs::read_to_string("/proc/self/statm").map_err(|e| e.to_string())?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or("/proc/self/statm has no resident field")?;
    Ok(pages * 4096)
}

impl ControlExtension for Commands {
    type Command = BenchCmd;

    fn handle(&self, _node: &Node, cmd: BenchCmd) -> BoxFuture<'static, Result<Value, String>> {
        let (dsup, registry, last_start, seen) = (
            self.dsup.clone(),
            self.registry.clone(),
            self.last_start.clone(),
            self.seen.clone(),
        );
        Box::pin(async move {
            let e = |e: &dyn std::fmt::Display| e.to_string();
            match cmd {
                BenchCmd::StartMany { count: n } => {
                    let specs = (0..n)
                        .map(|i| DistChildSpec::new(format!("c{i}"), "noop", Vec::new()))
                        .collect();
                    dsup.start_children(specs).await.map_err(|x| e(&x))?;
                    Ok(json!(n))
                }
                BenchCmd::Local => Ok(json!(dsup.local_children().await.map_err(|x| e(&x))?)),
                BenchCmd::Settled => Ok(json!(
                    dsup.pending_decisions().await.map_err(|x| e(&x))? == 0
                )),
                BenchCmd::Eligible => Ok(json!(dsup
                    .eligible_members()
                    .await
                    .map_err(|x| e(&x))?
                    .len())),
                BenchCmd::LastStart => Ok(json!(last_start.load(Ordering::Relaxed))),
                BenchCmd::RegisterMany { prefix, count: n } => {
                    let mut times = Vec::new();
                    for i in 0..n {
                        let (a, _) = Actor::spawn(None, Named, ()).await.map_err(|x| e(&x))?;
                        registry
                            .register(&format!("{prefix}{i}"), a.get_cell(), Vec::new())
                            .await
                            .map_err(|x| e(&x))?;
                        times.push(unix_ns());
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Ok(json!(times))
                }
                BenchCmd::Seen { prefix, count: n } => {
                    let seen = seen.lock();
                    Ok(json!((0..n)
                        .map(|i| seen.get(&format!("{prefix}{i}")).copied())
                        .collect::<Vec<_>>()))
                }
                BenchCmd::LookupNs { prefix, count } => {
                    let n = count.max(1) as usize;
                    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
                    let iters = 2_000_000usize;
                    let t = Instant::now();
                    let mut found = 0usize;
                    for k in 0..iters {
                        if std::hint::black_box(registry.lookup(&names[k % n])).is_some() {
                            found += 1;
                        }
                    }
                    let ns = t.elapsed().as_nanos() as f64 / iters as f64;
                    if found != iters {
                        return Err(format!(
                            "{} of {iters} lookups found nothing",
                            iters - found
                        ));
                    }
                    Ok(json!(ns))
                }
                BenchCmd::Rss => Ok(json!(rss_bytes()?)),
            }
        })
    }
}

async fn node_main(args: &[String]) -> Result<(), BoxErr> {
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let name = get("--name").ok_or("--name")?;
    let listen = get("--listen").ok_or("--listen")?.parse()?;
    let mut b = Node::builder(name).listen(listen).cookie("bench");
    if let Some(seed) = get("--seed") {
        b = b.seeds([seed]);
    }
    let node = b.start().await?;
    let last_start = Arc::new(AtomicU64::new(0));
    let ls = last_start.clone();
    let mut dsup = DistributedSupervisor::builder("bench");
    // An observer runs no child: it holds the replicated state only.
    let remote = args.iter().any(|a| a == "--remote-children");
    if !args.iter().any(|a| a == "--observer") {
        dsup = dsup.kind("noop", move |ctx: StartContext| {
            let ls = ls.clone();
            async move {
                let cell = if remote {
                    Actor::spawn_linked(None, Named, (), ctx.supervisor)
                        .await?
                        .0
                        .get_cell()
                } else {
                    Actor::spawn_linked(None, Noop, (), ctx.supervisor)
                        .await?
                        .0
                        .get_cell()
                };
                ls.store(unix_ns(), Ordering::Relaxed);
                Ok::<ActorCell, SpawnErr>(cell)
            }
        });
    }
    let dsup = dsup.start(&node).await?;
    let registry = Registry::start(&node, "bench-names").await?;
    let seen: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut ev = registry.subscribe();
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok(e) = ev.recv().await {
            if let RegistryEvent::Registered { name, .. } = e {
                s2.lock().entry(name).or_insert_with(unix_ns);
            }
        }
    });
    testkit::serve(
        node,
        Arc::new(Commands {
            dsup,
            registry,
            last_start,
            seen,
        }),
    )
    .await;
    Ok(())
}

fn pct(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

async fn ids_on(n: &TestNode) -> Result<Vec<String>, BoxErr> {
    Ok(serde_json::from_value(n.command(&BenchCmd::Local).await?)?)
}

async fn registry_figures(
    a: &TestNode,
    b: &TestNode,
    regs: u64,
    phase: &str,
    prefix: &str,
) -> Result<(), BoxErr> {
    let times: Vec<u64> = serde_json::from_value(
        a.command(&BenchCmd::RegisterMany {
            prefix: prefix.into(),
            count: regs,
        })
        .await?,
    )?;
    wait_until("names seen", Duration::from_secs(30), || async {
        let s: Vec<Option<u64>> = serde_json::from_value(
            b.command(&BenchCmd::Seen {
                prefix: prefix.into(),
                count: regs,
            })
            .await?,
        )
        .unwrap_or_default();
        Ok(s.iter().all(Option::is_some))
    })
    .await?;
    let seen: Vec<Option<u64>> = serde_json::from_value(
        b.command(&BenchCmd::Seen {
            prefix: prefix.into(),
            count: regs,
        })
        .await?,
    )?;
    let mut lat: Vec<f64> = times
        .iter()
        .zip(seen)
        .filter_map(|(t, s)| s.map(|s| s.saturating_sub(*t) as f64 / 1e3))
        .collect();
    lat.sort_by(|x, y| x.total_cmp(y));
    let lookup_ns = b
        .command(&BenchCmd::LookupNs {
            prefix: prefix.into(),
            count: regs,
        })
        .await?;
    println!(
        "{{\"bench\":\"registry_lookup\",\"phase\":\"{phase}\",\"names\":{regs},\"ns_per_lookup\":{:.1}}}",
        lookup_ns.as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "{{\"bench\":\"registry_propagation\",\"phase\":\"{phase}\",\"registrations\":{regs},\"p50_us\":{:.0},\"p99_us\":{:.0},\"max_us\":{:.0}}}",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    Ok(())
}

async fn orchestrate(children: u64, regs: u64, remote: bool) -> Result<(), BoxErr> {
    let exe = std::env::current_exe()?;
    let mut role = vec!["--role".to_string(), "node".to_string()];
    if remote {
        role.push("--remote-children".to_string());
    }
    let mut nodes = vec![TestNode::start(&exe, "b0", &role).await?];
    for i in 1..4 {
        let mut a = role.clone();
        a.extend(["--seed".to_string(), nodes[0].addr()]);
        if i == 3 {
            a.push("--observer".to_string());
        }
        nodes.push(TestNode::start(&exe, &format!("b{i}"), &a).await?);
    }
    for n in &nodes {
        wait_until(
            "every supervisor known",
            Duration::from_secs(10),
            || async { Ok(n.command(&BenchCmd::Eligible).await? == json!(4)) },
        )
        .await?;
    }
    registry_figures(&nodes[0], &nodes[1], regs, "idle_cluster", "name-a-").await?;
    let mut rss_before = Vec::new();
    for n in &nodes {
        rss_before.push(n.command(&BenchCmd::Rss).await?.as_u64().unwrap_or(0));
    }
    nodes[0]
        .command(&BenchCmd::StartMany { count: children })
        .await?;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_until("all children running", Duration::from_secs(120), || async {
        let mut total = 0;
        for n in &all {
            if n.command(&BenchCmd::Settled).await? != json!(true) {
                return Ok(false);
            }
            total += ids_on(n)
                .await
                .map_err(|e| testkit::TestkitError::Node(e.to_string()))?
                .len();
        }
        Ok(total == children as usize)
    })
    .await?;
    let mut counts = Vec::new();
    let mut per_child = Vec::new();
    for (n, before) in nodes.iter().zip(&rss_before) {
        counts.push(ids_on(n).await?.len());
        let after = n.command(&BenchCmd::Rss).await?.as_u64().unwrap_or(0);
        per_child.push(after.saturating_sub(*before) as f64 / children.max(1) as f64);
    }
    println!(
        "{{\"bench\":\"memory\",\"children\":{children},\"remote_children\":{remote},\"replica_bytes_per_child\":{:.0},\"node_bytes_per_child\":[{:.0},{:.0},{:.0}],\"children_per_node\":[{},{},{}]}}",
        per_child[3], per_child[0], per_child[1], per_child[2], counts[0], counts[1], counts[2]
    );
    let victim = (0..3).max_by_key(|i| counts[*i]).unwrap_or(0);
    let t_kill = unix_ns();
    nodes[victim].kill().await?;
    let survivors: Vec<&TestNode> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, n)| n)
        .collect();
    wait_until(
        "every child running exactly once on the survivors",
        Duration::from_secs(120),
        || async {
            let mut seen = std::collections::HashSet::new();
            for n in &survivors {
                if n.command(&BenchCmd::Settled).await? != json!(true) {
                    return Ok(false);
                }
                for id in ids_on(n)
                    .await
                    .map_err(|e| testkit::TestkitError::Node(e.to_string()))?
                {
                    if !seen.insert(id) {
                        return Ok(false);
                    }
                }
            }
            Ok(seen.len() == children as usize)
        },
    )
    .await?;
    let mut last = 0u64;
    for n in &survivors {
        last = last.max(n.command(&BenchCmd::LastStart).await?.as_u64().unwrap_or(0));
    }
    println!(
        "{{\"bench\":\"failover\",\"children\":{children},\"remote_children\":{remote},\"nodes\":3,\"victim_children\":{},\"failover_ms\":{:.1}}}",
        counts[victim],
        last.saturating_sub(t_kill) as f64 / 1e6
    );

    registry_figures(
        survivors[0],
        survivors[1],
        regs,
        "after_failover",
        "name-b-",
    )
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxErr> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--role") {
        return node_main(&args).await;
    }
    let get = |k: &str, d: u64| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    orchestrate(
        get("--children", 10_000),
        get("--registrations", 1_000),
        args.iter().any(|a| a == "--remote-children"),
    )
    .await
}
