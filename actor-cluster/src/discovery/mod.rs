//! Discovery: where to look for other nodes (libcluster's strategies behind one trait).
//!
//! Discovery only proposes addresses; membership decides. A node polls each of its discovery
//! sources every `Timings::discovery_interval` (the first time at start) and dials every address
//! it is not yet connected to.
//!
//! * [`StaticSeeds`]: a fixed list of `host:port` (resolved at every poll);
//! * [`DnsDiscovery`]: A/AAAA records of a name (a Kubernetes headless service), or SRV records;
//! * [`GossipDiscovery`]: UDP multicast or broadcast announcements authenticated with a shared
//!   secret;
//! * anything else: implement [`Discovery`].

mod dns;
pub(crate) mod gossip;

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;

use actor_cluster_proto::NodeIdentity;

pub use dns::{DnsDiscovery, DnsQuery};
pub use gossip::{announcement_packet, GossipConfig, GossipDiscovery, GossipStats};

/// Errors of discovery sources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// A name could not be resolved.
    #[error("cannot resolve {name}: {reason}")]
    Resolve {
        /// The name looked up.
        name: String,
        /// The resolver's error.
        reason: String,
    },
    /// A socket could not be opened or used.
    #[error("socket error: {0}")]
    Socket(String),
}

/// A source of candidate node addresses.
pub trait Discovery: Send + Sync + 'static {
    /// A short name for logs (`"static"`, `"dns"`, `"gossip"`).
    fn name(&self) -> &str;

    /// Called once when the node starts, with the node's identity (a source that announces the
    /// node, like gossip, starts its work here).
    fn attach(&self, me: &NodeIdentity) -> Result<(), DiscoveryError> {
        let _ = me;
        Ok(())
    }

    /// The addresses currently proposed.
    fn discover(&self) -> BoxFuture<'_, Result<Vec<SocketAddr>, DiscoveryError>>;

    /// How often to poll this source, if it wants its own pace (default: the node's
    /// `Timings::discovery_interval`).
    fn poll_interval(&self) -> Option<Duration> {
        None
    }
}

/// A fixed list of seed addresses, `host:port` or `ip:port`, resolved at every poll.
#[derive(Debug, Clone)]
pub struct StaticSeeds {
    seeds: Vec<String>,
}

impl StaticSeeds {
    /// Seeds from `host:port` strings.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(seeds: I) -> Self {
        Self {
            seeds: seeds.into_iter().map(Into::into).collect(),
        }
    }
}

impl Discovery for StaticSeeds {
    fn name(&self) -> &str {
        "static"
    }

    fn discover(&self) -> BoxFuture<'_, Result<Vec<SocketAddr>, DiscoveryError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for seed in &self.seeds {
                match tokio::net::lookup_host(seed.as_str()).await {
                    Ok(addrs) => out.extend(addrs),
                    Err(e) => tracing::warn!(seed = %seed, error = %e, "cannot resolve seed"),
                }
            }
            Ok(out)
        })
    }
}
