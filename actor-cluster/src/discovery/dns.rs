//! DNS discovery (libcluster's `DNSPoll` and `Kubernetes.DNSSRV`): poll A/AAAA records of a name
//! (a Kubernetes headless service resolves to one address per ready pod) or its SRV records.

use std::net::SocketAddr;

use futures::future::BoxFuture;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;

use super::{Discovery, DiscoveryError};

/// What to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsQuery {
    /// A and AAAA records of `name`; every address is a node listening on `port`.
    Addresses {
        /// The name (e.g. `nodes.my-app.svc.cluster.local`).
        name: String,
        /// The cluster port every node listens on.
        port: u16,
    },
    /// SRV records of `name` (e.g. `_cluster._tcp.nodes.my-app.svc.cluster.local`); each gives
    /// a target host (resolved to its addresses) and a port.
    Srv {
        /// The SRV name.
        name: String,
    },
}

/// DNS polling discovery.
pub struct DnsDiscovery {
    query: DnsQuery,
    resolver: TokioResolver,
}

impl std::fmt::Debug for DnsDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsDiscovery")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

fn no_cache() -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    // Every poll must see the current records.
    opts.cache_size = 0;
    opts.attempts = 1;
    opts
}

impl DnsDiscovery {
    /// Uses the system's resolver configuration (`/etc/resolv.conf`).
    pub fn system(query: DnsQuery) -> Result<Self, DiscoveryError> {
        let mut builder = TokioResolver::builder_tokio().map_err(|e| DiscoveryError::Resolve {
            name: "system resolver configuration".into(),
            reason: e.to_string(),
        })?;
        *builder.options_mut() = no_cache();
        Ok(Self {
            query,
            resolver: builder.build(),
        })
    }

    /// Asks one name server (UDP), e.g. a cluster DNS service or a test's own server.
    pub fn with_name_server(query: DnsQuery, name_server: SocketAddr) -> Self {
        let mut config = ResolverConfig::new();
        config.add_name_server(NameServerConfig::new(name_server, Protocol::Udp));
        let mut builder =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
        *builder.options_mut() = no_cache();
        Self {
            query,
            resolver: builder.build(),
        }
    }

    async fn addresses(&self, name: &str, port: u16) -> Result<Vec<SocketAddr>, DiscoveryError> {
        let ips = self
            .resolver
            .lookup_ip(name)
            .await
            .map_err(|e| DiscoveryError::Resolve {
                name: name.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(ips.iter().map(|ip| SocketAddr::new(ip, port)).collect())
    }
}

impl Discovery for DnsDiscovery {
    fn name(&self) -> &str {
        "dns"
    }

    fn discover(&self) -> BoxFuture<'_, Result<Vec<SocketAddr>, DiscoveryError>> {
        Box::pin(async move {
            match &self.query {
                DnsQuery::Addresses { name, port } => self.addresses(name, *port).await,
                DnsQuery::Srv { name } => {
                    let srv = self.resolver.srv_lookup(name.as_str()).await.map_err(|e| {
                        DiscoveryError::Resolve {
                            name: name.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                    let mut out = Vec::new();
                    for record in srv.iter() {
                        let target = record.target().to_utf8();
                        match self.addresses(&target, record.port()).await {
                            Ok(a) => out.extend(a),
                            Err(e) => tracing::warn!(error = %e, "SRV target does not resolve"),
                        }
                    }
                    Ok(out)
                }
            }
        })
    }
}
