//! `Node`: one per OS process. It owns the cluster listener, a ractor_cluster `NodeServer`,
//! the membership actor and its heartbeat endpoint, and the discovery pollers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use ractor_cluster::{IncomingEncryptionMode, NodeServer, NodeServerMessage};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::discovery::{Discovery, StaticSeeds};
use crate::endpoint::Endpoint;
use crate::faults::Faults;
use crate::membership::{
    from_peer, MemberEvent, MemberInfo, MembershipActor, MembershipArgs, MembershipMsg,
    NodeIdentity, PeerMsg, Probe, SessionEvents, Timings, ENDPOINTS,
};
use crate::mux::Control;
use crate::remote::Remote;
use crate::summaries::Summaries;
use crate::tls::TlsConfig;
use crate::transport::Transport;
use crate::ClusterError;

mod clock;
mod ready;

/// Builds a [`Node`].
pub struct NodeBuilder {
    name: String,
    listen: SocketAddr,
    advertise: Option<SocketAddr>,
    cookie: String,
    timings: Timings,
    discovery: Vec<Arc<dyn Discovery>>,
    tls: Option<TlsConfig>,
    incarnation: Option<u64>,
    max_outbound: u64,
    /// Seeds given to [`NodeBuilder::seeds`], checked at start.
    seeds: Vec<String>,
}

/// Whether `seed` reads as `host:port` (`[v6]:port` for an IPv6 address), with a port number.
fn well_formed_seed(seed: &str) -> bool {
    let Some((host, port)) = seed.rsplit_once(':') else {
        return false;
    };
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.is_empty() && !host.contains(':') && !host.contains(char::is_whitespace),
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p != 0)
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("advertise", &self.advertise)
            .field("timings", &self.timings)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl NodeBuilder {
    /// Listen address (default `127.0.0.1:0`: loopback, a port the OS picks).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The address other nodes dial (default: the bound address; required when listening on
    /// an unspecified address such as `0.0.0.0`).
    pub fn advertise(mut self, addr: SocketAddr) -> Self {
        self.advertise = Some(addr);
        self
    }

    /// The shared secret every node of the cluster must have (ractor_cluster's
    /// challenge/response: the cookie never crosses the wire).
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookie = cookie.into();
        self
    }

    /// Failure detection and reconnection timings.
    pub fn timings(mut self, timings: Timings) -> Self {
        self.timings = timings;
        self
    }

    /// Seed nodes (`host:port`), a [`StaticSeeds`] discovery source.
    pub fn seeds<I: IntoIterator<Item = S>, S: Into<String>>(mut self, seeds: I) -> Self {
        let seeds: Vec<String> = seeds.into_iter().map(Into::into).collect();
        self.seeds.extend(seeds.iter().cloned());
        self.discovery(StaticSeeds::new(seeds))
    }

    /// Adds a discovery source.
    pub fn discovery(mut self, source: impl Discovery) -> Self {
        self.discovery.push(Arc::new(source));
        self
    }

    /// Adds a shared discovery source (to read its counters afterwards).
    pub fn discovery_shared(mut self, source: Arc<dyn Discovery>) -> Self {
        self.discovery.push(source);
        self
    }

    /// Mutual TLS between nodes: plaintext peers are refused.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Most messages sent through [`crate::remote`]'s bounded sends that may wait to be
    /// written to one peer (default 16,384). Past it, `try_cast` drops, `cast` waits and
    /// `call` is refused.
    pub fn max_outbound(mut self, messages: u64) -> Self {
        self.max_outbound = messages.max(1);
        self
    }

    /// Overrides the incarnation (default: start time in ns since the Unix epoch).
    pub fn incarnation(mut self, incarnation: u64) -> Self {
        self.incarnation = Some(incarnation);
        self
    }

    /// Binds the listener, starts the node server, membership and discovery.
    pub async fn start(self) -> Result<Node, ClusterError> {
        if self.name.is_empty()
            || self
                .name
                .chars()
                .any(|c| c == '@' || c == '|' || c.is_whitespace() || c.is_control())
        {
            return Err(ClusterError::InvalidConfig(format!(
                "node name {:?}: it must be non-empty, without '@', '|', spaces or control characters",
                self.name
            )));
        }
        if let Some(bad) = self.seeds.iter().find(|s| !well_formed_seed(s)) {
            return Err(ClusterError::InvalidConfig(format!(
                "seed {bad:?}: expected host:port (for example 10.0.0.5:4370 or [::1]:4370)"
            )));
        }
        let listener = TcpListener::bind(self.listen)
            .await
            .map_err(|e| ClusterError::Bind(self.listen, e.to_string()))?;
        let bound = listener
            .local_addr()
            .map_err(|e| ClusterError::Bind(self.listen, e.to_string()))?;
        let addr = match self.advertise {
            Some(a) => a,
            None if bound.ip().is_unspecified() => {
                return Err(ClusterError::InvalidConfig(format!(
                    "listening on {bound}: set an advertise address other nodes can reach"
                )))
            }
            None => bound,
        };
        let incarnation = self
            .incarnation
            .unwrap_or_else(actor_core::wallclock::wall_ns);
        let me = NodeIdentity {
            name: self.name.clone(),
            incarnation,
            addr,
        };

        // ractor_cluster always binds a listener of its own; keep it on loopback with a port
        // the OS picks. All cluster traffic comes through ours.
        let encryption = self
            .tls
            .as_ref()
            .map(|t| IncomingEncryptionMode::Tls(t.acceptor.clone()));
        let server = NodeServer::new(
            0,
            self.cookie.clone(),
            self.name.clone(),
            addr.ip().to_string(),
            encryption,
            Some(ractor_cluster::node::NodeConnectionMode::Isolated),
        )
        .with_listen_addr(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let (node_server, _) = Actor::spawn(None, server, ())
            .await
            .map_err(|e| ClusterError::NodeServer(e.to_string()))?;

        let faults = Arc::new(Faults::default());
        let transport = Arc::new(Transport::new(
            me.clone(),
            faults.clone(),
            self.tls.clone(),
            self.timings.dial_timeout,
            self.max_outbound,
        ));
        let (events, _) = broadcast::channel(4096);
        let summaries = Arc::new(Summaries::default());
        let clock = Arc::new(parking_lot::Mutex::new(clock::ClockSync::new()));
        let (membership, _) = Actor::spawn(
            None,
            MembershipActor,
            MembershipArgs {
                me: me.clone(),
                timings: self.timings,
                transport: transport.clone(),
                node_server: node_server.clone(),
                events: events.clone(),
                summaries: summaries.clone(),
                clock: clock.clone(),
            },
        )
        .await
        .map_err(|e| ClusterError::NodeServer(e.to_string()))?;
        let hb = membership.clone();
        let board = summaries.clone();
        let sync = clock.clone();
        let lossy = faults.clone();
        transport.set_control_handler(Arc::new(move |lane, control| match control {
            Control::Probe {
                probe,
                services,
                wall_ns,
            } => {
                if lossy.lose_probe(lane.peer()) {
                    return;
                }
                if !services.is_empty() {
                    board.compare(lane.peer(), &services);
                }
                // Sampled here, as the frame is read: a busy membership actor adds no delay.
                let ack_of = match probe {
                    Probe::Ack { seq, .. } => Some(seq),
                    _ => None,
                };
                clock::sample(&sync, lane.peer(), wall_ns, ack_of);
                let _ = hb.cast(MembershipMsg::Probe(lane.peer().to_owned(), probe));
            }
        }));
        node_server
            .cast(NodeServerMessage::SubscribeToEvents {
                id: "actor_cluster.membership".into(),
                subscription: Box::new(SessionEvents(membership.clone(), transport.clone())),
            })
            .map_err(|e| ClusterError::NodeServer(e.to_string()))?;
        let (endpoint, _) = Actor::spawn(
            None,
            Endpoint::new(from_peer),
            (ENDPOINTS.to_string(), membership.clone()),
        )
        .await
        .map_err(|e| ClusterError::NodeServer(e.to_string()))?;

        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(accept_loop(
            listener,
            transport.clone(),
            membership.clone(),
            node_server.clone(),
        )));
        for source in self.discovery {
            if let Err(e) = source.attach(&me) {
                tracing::error!(source = source.name(), error = %e, "discovery source failed to start");
                return Err(ClusterError::Discovery(e.to_string()));
            }
            let interval = source
                .poll_interval()
                .unwrap_or(self.timings.discovery_interval);
            tasks.push(tokio::spawn(poll_discovery(
                source,
                interval,
                membership.clone(),
            )));
        }
        tracing::info!(node = %me.name, addr = %me.addr, incarnation, tls = self.tls.is_some(), "node started");
        Ok(Node {
            inner: Arc::new(Inner {
                me,
                node_server,
                membership,
                endpoint,
                events,
                faults,
                remote: Remote::new(transport.sessions().clone()),
                summaries,
                clock,
                tasks,
            }),
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    transport: Arc<Transport>,
    membership: ActorRef<MembershipMsg>,
    server: ActorRef<NodeServerMessage>,
) {
    loop {
        let (tcp, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let transport = transport.clone();
        let membership = membership.clone();
        let server = server.clone();
        tokio::spawn(async move {
            match transport.accept(tcp).await {
                Ok((stream, peer)) => {
                    let _ = membership.cast(MembershipMsg::Identified { peer, dialed: None });
                    if let Err(e) = server.cast(NodeServerMessage::ConnectionOpenedExternal {
                        stream,
                        is_server: true,
                    }) {
                        tracing::warn!(error = %e, "node server gone");
                    }
                }
                Err(crate::transport::ConnectError::SelfDial) => {}
                Err(e) => {
                    tracing::warn!(%from, error = %e, "refused an incoming cluster connection")
                }
            }
        });
    }
}

async fn poll_discovery(
    source: Arc<dyn Discovery>,
    interval: Duration,
    membership: ActorRef<MembershipMsg>,
) {
    loop {
        match source.discover().await {
            Ok(addrs) => {
                if membership.cast(MembershipMsg::Discovered(addrs)).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(source = source.name(), error = %e, "discovery failed"),
        }
        tokio::time::sleep(interval).await;
    }
}

struct Inner {
    me: NodeIdentity,
    node_server: ActorRef<NodeServerMessage>,
    membership: ActorRef<MembershipMsg>,
    endpoint: ActorRef<PeerMsg>,
    events: broadcast::Sender<MemberEvent>,
    faults: Arc<Faults>,
    remote: Remote,
    summaries: Arc<Summaries>,
    clock: Arc<parking_lot::Mutex<clock::ClockSync>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.endpoint.stop(None);
        self.membership.stop(None);
        self.node_server.stop(None);
    }
}

/// A cluster node (one per OS process: ractor's registries are process-global). The node stops
/// when its last handle is dropped.
#[derive(Clone)]
#[must_use = "the node stops when its last handle is dropped"]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("me", &self.inner.me).finish()
    }
}

impl Node {
    /// A builder for a node named `name` (unique in the cluster).
    pub fn builder(name: impl Into<String>) -> NodeBuilder {
        NodeBuilder {
            name: name.into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            advertise: None,
            cookie: "actor-cluster".into(),
            timings: Timings::default(),
            discovery: Vec::new(),
            tls: None,
            incarnation: None,
            max_outbound: 16_384,
            seeds: Vec::new(),
        }
    }

    /// This node's identity (name, incarnation, advertised address).
    pub fn identity(&self) -> &NodeIdentity {
        &self.inner.me
    }

    /// The address other nodes dial.
    pub fn addr(&self) -> SocketAddr {
        self.inner.me.addr
    }

    /// The ractor_cluster node server.
    pub fn node_server(&self) -> &ActorRef<NodeServerMessage> {
        &self.inner.node_server
    }

    /// Every member seen this run and its state (this node excluded).
    pub async fn members(&self) -> Result<Vec<MemberInfo>, ClusterError> {
        match self
            .inner
            .membership
            .call(MembershipMsg::Members, Some(Duration::from_secs(5)))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(m)) => Ok(m),
            Ok(other) => Err(ClusterError::Unavailable(format!("{other:?}"))),
            Err(e) => Err(ClusterError::Unavailable(e.to_string())),
        }
    }

    /// Membership events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.inner.events.subscribe()
    }

    /// Bounded sends to actors on other nodes through this node's sessions (see
    /// [`crate::remote`]).
    pub fn remote(&self) -> &Remote {
        &self.inner.remote
    }

    /// The summaries of this node's replicated services, carried on the membership probes
    /// (see [`crate::summaries`]): a replicated service of your own registers here.
    pub fn summaries(&self) -> &Arc<Summaries> {
        &self.inner.summaries
    }

    /// Fault injection: block and unblock traffic with chosen peers (tests).
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// Leaves gracefully: every member is told (and acknowledges, or 500 ms pass), then the
    /// node stops. Members report `MemberLeft`, not `MemberDown`.
    pub async fn leave(self) -> Result<(), ClusterError> {
        let _ = self
            .inner
            .membership
            .call(MembershipMsg::AnnounceLeave, Some(Duration::from_secs(2)))
            .await;
        for t in &self.inner.tasks {
            t.abort();
        }
        let _ = self
            .inner
            .node_server
            .stop_and_wait(None, Some(Duration::from_secs(2)))
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{well_formed_seed, Node};
    use crate::ClusterError;

    #[tokio::test]
    async fn a_malformed_seed_fails_the_start() {
        let r = Node::builder("n1").seeds(["10.0.0.5"]).start().await;
        assert!(
            matches!(&r, Err(ClusterError::InvalidConfig(why)) if why.contains("10.0.0.5")),
            "{:?}",
            r.map(|n| n.identity().clone())
        );
    }

    #[test]
    fn seeds_must_read_as_host_and_port() {
        for good in ["127.0.0.1:4370", "node-a.cluster.local:4370", "[::1]:4370"] {
            assert!(well_formed_seed(good), "{good}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            ":4370",
            "host:port",
            "host:0",
            "::1:4370",
            "a b:1",
            "[x]:1",
        ] {
            assert!(!well_formed_seed(bad), "{bad}");
        }
    }
}
