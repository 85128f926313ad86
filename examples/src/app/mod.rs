//! The application node of the examples: one cluster member that runs the poker ranking actors
//! under the distributed supervisor `poker`, caches the feature flags, and serves the admin web
//! page and Prometheus metrics. The `node` binary runs one for multi-machine deployments; the
//! `demo` binary starts several as local processes.

pub mod child;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::discovery::{DnsDiscovery, DnsQuery};
use actor_cluster::supervisor::DistributedSupervisor;
use actor_cluster::{Node, TlsConfig};
use actor_flags::{ClusterFlags, FlagStore, Flags, SqlStore};
use actor_poker::actor::RankingOptions;
use actor_poker::PokerStore;
use clap::Args;

/// How to run a node (every option also reads an environment variable).
#[derive(Args, Debug, Clone)]
pub struct NodeConfig {
    /// This node's unique name.
    #[arg(long, env = "NODE_NAME")]
    pub name: String,
    /// Address to accept cluster connections on.
    #[arg(long, env = "NODE_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Address other nodes dial, if not the listen address (behind NAT, or listening on 0.0.0.0).
    #[arg(long, env = "NODE_ADVERTISE")]
    pub advertise: Option<SocketAddr>,
    /// A node to join, `host:port` (repeatable, or comma-separated in the variable).
    #[arg(long = "seed", env = "NODE_SEEDS", value_delimiter = ',')]
    pub seeds: Vec<String>,
    /// Discover nodes through DNS: A/AAAA records of this name (e.g. a Kubernetes headless
    /// service), every node listening on `--dns-port`.
    #[arg(long, env = "NODE_DNS")]
    pub dns: Option<String>,
    /// The cluster port for `--dns` (default: this node's listen port).
    #[arg(long, env = "NODE_DNS_PORT")]
    pub dns_port: Option<u16>,
    /// The cluster's shared secret.
    #[arg(long, env = "NODE_COOKIE", default_value = "actor-toolkit")]
    pub cookie: String,
    /// Mutual TLS: this node's certificate chain (PEM). Needs `--tls-key` and `--tls-ca`.
    #[arg(long, env = "NODE_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// Mutual TLS: this node's private key (PEM).
    #[arg(long, env = "NODE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: the CA that signs every node's certificate (PEM).
    #[arg(long, env = "NODE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// The name in every node's certificate.
    #[arg(long, env = "NODE_TLS_SERVER_NAME", default_value = "node")]
    pub tls_server_name: String,
    /// The database: a SQLite file path (created if missing) or `postgres://...`.
    #[arg(long, env = "NODE_STORE", default_value = "actor-toolkit.db")]
    pub store: String,
    /// Address of the admin web page and `/metrics` (none: not served).
    #[arg(long, env = "NODE_ADMIN")]
    pub admin: Option<SocketAddr>,
    /// Token for changing flags through the admin page (`Authorization: Bearer`). Without it,
    /// the page is read-only.
    #[arg(long, env = "NODE_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Count every flag check per flag, true and false (`flags_evaluations_total` in
    /// `/metrics`); about a nanosecond a check.
    #[arg(long, env = "NODE_COUNT_FLAG_CHECKS")]
    pub count_flag_checks: bool,
    /// Fault injection for the chaos run (0: off): ranking handlers fail on about one new hand
    /// in this many, and restart from the database.
    #[arg(long, hide = true, default_value_t = 0)]
    pub fail_hand_one_in: u64,
}

impl NodeConfig {
    /// A node on 127.0.0.1 with a port the OS picks, plaintext, no admin page: what the local
    /// programs (`demo`, `chaos`, `soak`) run their driver member with.
    pub fn local(name: &str, store: &str, cookie: &str, seeds: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            seeds,
            dns: None,
            dns_port: None,
            cookie: cookie.to_owned(),
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            tls_server_name: "node".into(),
            store: store.to_owned(),
            admin: None,
            admin_token: None,
            count_flag_checks: false,
            fail_hand_one_in: 0,
        }
    }
}

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The cluster layer refused.
    #[error("cluster: {0}")]
    Cluster(#[from] actor_cluster::ClusterError),
    /// The tournament database.
    #[error("poker store: {0}")]
    Poker(#[from] actor_poker::PokerError),
    /// The flag store.
    #[error("flags: {0}")]
    Flags(#[from] actor_flags::FlagError),
    /// Configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// The admin listener.
    #[error("admin listener: {0}")]
    Io(#[from] std::io::Error),
    /// The distributed supervisor refused or timed out.
    #[error("supervisor: {0}")]
    Supervisor(#[from] actor_cluster::DistSupervisorError),
}

/// A running application node.
#[derive(Clone)]
pub struct App {
    /// The cluster member.
    pub node: Node,
    /// The supervisor `poker`.
    pub dsup: DistributedSupervisor,
    /// The flag cache.
    pub flags: Flags,
    /// The tournament database.
    pub store: PokerStore,
    /// Where the admin page is served.
    pub admin: Option<SocketAddr>,
    _cluster_flags: Arc<ClusterFlags>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("node", &self.node.identity().name)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// Opens the flag store that goes with a database URL (the same SQLite file, or Postgres).
pub async fn flag_store(url: &str) -> Result<Arc<dyn FlagStore>, AppError> {
    Ok(
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(SqlStore::postgres(url).await?)
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            Arc::new(SqlStore::sqlite(std::path::Path::new(path)).await?)
        },
    )
}

impl App {
    /// Waits, up to `timeout`, until this node's supervisor knows a supervisor on each of the
    /// named nodes (woken by the supervisor's member events); returns how long that took.
    pub async fn wait_for_nodes(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<Duration, AppError> {
        let began = std::time::Instant::now();
        let me = self.node.identity().name.clone();
        let want = names.len() + usize::from(!names.contains(&me));
        let known = self.dsup.wait_for_members(want, timeout).await?;
        match names.iter().find(|n| !known.contains(n)) {
            None => Ok(began.elapsed()),
            Some(missing) => Err(AppError::Config(format!(
                "{want} supervisors met, but not the one on {missing}: {known:?}"
            ))),
        }
    }

    /// Starts a node: database, flags, cluster membership, the supervisor with the ranking
    /// kinds (`ranking: false` starts a member that runs none), and the admin page.
    pub async fn start(cfg: &NodeConfig, ranking: bool) -> Result<Self, AppError> {
        let store = PokerStore::open(&cfg.store).await?;
        let flags = Flags::open(flag_store(&cfg.store).await?).await?;
        flags.count_evaluations(cfg.count_flag_checks);
        let mut b = Node::builder(cfg.name.clone())
            .listen(cfg.listen)
            .cookie(cfg.cookie.clone());
        if let Some(a) = cfg.advertise {
            b = b.advertise(a);
        }
        if !cfg.seeds.is_empty() {
            b = b.seeds(cfg.seeds.clone());
        }
        if let Some(name) = &cfg.dns {
            let port = cfg.dns_port.unwrap_or(cfg.listen.port());
            if port == 0 {
                return Err(AppError::Config(
                    "--dns needs a fixed --listen port or --dns-port".into(),
                ));
            }
            let d = DnsDiscovery::system(DnsQuery::Addresses {
                name: name.clone(),
                port,
            })
            .map_err(|e| AppError::Config(e.to_string()))?;
            b = b.discovery(d);
        }
        if let (Some(cert), Some(key), Some(ca)) = (&cfg.tls_cert, &cfg.tls_key, &cfg.tls_ca) {
            b = b.tls(TlsConfig::from_files(cert, key, ca, &cfg.tls_server_name)?);
        }
        let node = b.start().await?;
        let cluster_flags =
            ClusterFlags::start(&node, flags.clone(), Duration::from_secs(30)).await?;
        let dsup = if ranking {
            let options = RankingOptions {
                fail_one_in: cfg.fail_hand_one_in,
                ..RankingOptions::default()
            };
            actor_poker::start_supervisor(&node, &store, options).await?
        } else {
            DistributedSupervisor::builder(actor_poker::SUPERVISOR)
                .start(&node)
                .await?
        };
        let mut app = Self {
            node,
            dsup,
            flags,
            store,
            admin: None,
            _cluster_flags: Arc::new(cluster_flags),
        };
        if let Some(addr) = cfg.admin {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            app.admin = Some(listener.local_addr()?);
            let router = web::router(app.clone(), cfg.admin_token.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "admin server stopped");
                }
            });
        }
        Ok(app)
    }
}
