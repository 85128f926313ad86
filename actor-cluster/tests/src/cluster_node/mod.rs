//! The cluster test node (binary `cluster-testnode`): it starts a `Node` from its arguments,
//! a registry, a distributed supervisor of counters and a flood sink, and serves the control
//! protocol on stdin/stdout with the commands of [`ClusterCmd`].

mod actors;
mod commands;
pub mod tally;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::discovery::{DnsDiscovery, DnsQuery, GossipConfig, GossipDiscovery};
use actor_cluster::supervisor::Quorum;
use actor_cluster::{DistributedSupervisor, Node, Registry, Timings, TlsConfig};
use actor_core::ractor::Actor;
use clap::Parser;
use parking_lot::Mutex;

use self::actors::{CounterKind, Echo, Exits, Watcher};
pub use self::commands::ClusterCmd;
use self::commands::Commands;

/// The command line of a cluster test node.
#[derive(Parser, Debug)]
#[command(about = "A cluster node driven by the actor-cluster test kit")]
pub struct Args {
    /// Node name.
    #[arg(long)]
    pub name: String,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Cluster cookie.
    #[arg(long, default_value = "testkit-cookie")]
    pub cookie: String,
    /// Seed node `host:port` (repeatable).
    #[arg(long = "seed")]
    pub seeds: Vec<String>,
    /// Heartbeat interval, ms.
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// Bound of each peer's outbound queue for bounded sends (messages).
    #[arg(long)]
    pub max_outbound: Option<u64>,
    /// Down after this long without a heartbeat, ms.
    #[arg(long)]
    pub down_ms: Option<u64>,
    /// Gossip discovery on this multicast group `ip:port` (sent on 127.0.0.1).
    #[arg(long)]
    pub gossip: Option<SocketAddr>,
    /// Gossip shared secret.
    #[arg(long, default_value = "gossip-secret")]
    pub gossip_secret: String,
    /// DNS discovery: the name server to ask.
    #[arg(long)]
    pub dns_server: Option<SocketAddr>,
    /// DNS discovery: A/AAAA name (with --dns-port) or SRV name (with --dns-srv).
    #[arg(long)]
    pub dns_name: Option<String>,
    /// DNS discovery: the cluster port of the A/AAAA records.
    #[arg(long)]
    pub dns_port: Option<u16>,
    /// DNS discovery: query SRV records of --dns-name.
    #[arg(long)]
    pub dns_srv: bool,
    /// TLS: certificate chain PEM.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// TLS: private key PEM.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// TLS: cluster CA PEM.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// TLS: the DNS name in every node's certificate.
    #[arg(long, default_value = "cluster.test")]
    pub tls_name: String,
    /// Distributed supervisor: file the test children append start/stop lines to.
    #[arg(long)]
    pub child_log: Option<PathBuf>,
    /// Distributed supervisor: quorum placement over these members (comma-separated).
    #[arg(long)]
    pub quorum: Option<String>,
    /// Distributed supervisor: quorum restart delay, ms.
    #[arg(long, default_value_t = 2500)]
    pub quorum_delay_ms: u64,
    /// Distributed supervisor: active redistribution on join.
    #[arg(long)]
    pub active: bool,
    /// Distributed supervisor: start nothing below this many eligible members.
    #[arg(long, default_value_t = 1)]
    pub min_members: usize,
    /// Typed entities: the folder each tally appends its lines to.
    #[arg(long)]
    pub tally_dir: Option<PathBuf>,
}

/// Runs a cluster test node until its control channel closes.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut timings = Timings::default();
    if let Some(ms) = args.heartbeat_ms {
        timings.heartbeat_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = args.down_ms {
        timings.down_after = Duration::from_millis(ms);
        timings.suspect_after = timings.suspect_after.min(timings.down_after);
    }
    let mut builder = Node::builder(args.name.clone())
        .listen(args.listen)
        .cookie(args.cookie.clone())
        .timings(timings);
    if let Some(m) = args.max_outbound {
        builder = builder.max_outbound(m);
    }
    if !args.seeds.is_empty() {
        builder = builder.seeds(args.seeds.clone());
    }
    if let Some(group) = args.gossip {
        let mut cfg =
            GossipConfig::multicast(group, Ipv4Addr::LOCALHOST, args.gossip_secret.clone());
        cfg.interval = Duration::from_millis(200);
        cfg.ttl = 0;
        builder = builder.discovery(GossipDiscovery::new(cfg));
    }
    if let (Some(server), Some(name)) = (args.dns_server, args.dns_name.clone()) {
        let query = if args.dns_srv {
            DnsQuery::Srv { name }
        } else {
            DnsQuery::Addresses {
                name,
                port: args.dns_port.unwrap_or(0),
            }
        };
        builder = builder.discovery(DnsDiscovery::with_name_server(query, server));
        let mut t = timings;
        t.discovery_interval = Duration::from_millis(200);
        builder = builder.timings(t);
    }
    if let (Some(cert), Some(key), Some(ca)) = (&args.tls_cert, &args.tls_key, &args.tls_ca) {
        builder = builder.tls(TlsConfig::from_files(cert, key, ca, &args.tls_name)?);
    }
    let node = builder.start().await?;
    let (echo, _) = Actor::spawn(None, Echo, args.name.clone()).await?;
    actor_cluster::remote::register("echo", &echo);
    let registry = Registry::start(&node, "test").await?;
    let seen: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut events = registry.subscribe();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if let actor_cluster::RegistryEvent::Registered { name, .. } = e {
                seen2
                    .lock()
                    .entry(name)
                    .or_insert_with(actor_testkit::unix_ns);
            }
        }
    });
    let exits: Exits = Arc::default();
    let (watcher, _) = Actor::spawn(None, Watcher, exits.clone()).await?;
    let mut dsup = DistributedSupervisor::builder("test")
        .kind(
            "counter",
            CounterKind {
                node: args.name.clone(),
                log: args.child_log.clone(),
            },
        )
        .entity::<tally::Tally>(tally::TallyContext {
            node: args.name.clone(),
            dir: args.tally_dir.clone(),
        })
        .min_members(args.min_members)
        .active_redistribution(args.active);
    if let Some(q) = &args.quorum {
        dsup = dsup.placement(Quorum {
            members: q.split(',').map(str::to_owned).collect(),
            restart_delay: Duration::from_millis(args.quorum_delay_ms),
        });
    }
    let dsup = dsup.start(&node).await?;
    let commands = Commands {
        flood: Arc::new(actor_testkit::flood::Flood::start(&node).await?),
        dsup,
        registry,
        watcher,
        exits,
        seen,
        me: args.name.clone(),
    };
    actor_testkit::serve(node, Arc::new(commands)).await;
    Ok(())
}
