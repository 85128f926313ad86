//! UDP gossip discovery (libcluster's `Cluster.Strategy.Gossip`), with authenticated packets.
//!
//! Every node sends an announcement of itself to a multicast group (or a broadcast address)
//! every `interval`, and listens on the same port. A packet is
//!
//! ```text
//! "ACTG" | version (1) | payload (actor-core codec: cluster name, node identity, sent-at ms) | HMAC-SHA256(secret, all before)
//! ```
//!
//! Packets whose HMAC does not verify with this cluster's secret (another cluster, a forged or
//! damaged packet), whose cluster name differs, or that do not parse are ignored and counted in
//! [`GossipStats`]. Accepted announcements propose the sender's cluster address to membership,
//! which still authenticates the peer with the cookie when it connects.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::net::UdpSocket;

use super::{Discovery, DiscoveryError};
use actor_cluster_proto::NodeIdentity;

const MAGIC: &[u8; 4] = b"ACTG";
const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
const MAX_PACKET: usize = 2048;

/// Settings of gossip discovery.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// The group (multicast, e.g. `239.255.77.77:45892`) or broadcast address announcements go
    /// to; its port is also the port listened on.
    pub target: SocketAddr,
    /// The local interface to send and join multicast on (`127.0.0.1` keeps it on this host).
    pub interface: Ipv4Addr,
    /// The shared secret that authenticates packets.
    pub secret: Vec<u8>,
    /// The cluster's name; announcements of other clusters are ignored.
    pub cluster: String,
    /// How often this node announces itself.
    pub interval: Duration,
    /// Multicast TTL (1 keeps announcements on the local network).
    pub ttl: u32,
}

impl GossipConfig {
    /// Multicast on `group`, sent on `interface`, authenticated with `secret`.
    pub fn multicast(group: SocketAddr, interface: Ipv4Addr, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            target: group,
            interface,
            secret: secret.into(),
            cluster: "default".into(),
            interval: Duration::from_millis(500),
            ttl: 1,
        }
    }
}

/// Counters of gossip packets.
#[derive(Debug, Default)]
pub struct GossipStats {
    /// Packets received.
    pub received: AtomicU64,
    /// Announcements accepted.
    pub accepted: AtomicU64,
    /// Packets whose HMAC did not verify (wrong secret, forged, damaged).
    pub rejected_auth: AtomicU64,
    /// Packets that were too short, had a wrong header, or did not parse.
    pub rejected_malformed: AtomicU64,
    /// Authentic announcements of another cluster name.
    pub rejected_cluster: AtomicU64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Announce {
    cluster: String,
    node: NodeIdentity,
    sent_at_ms: u64,
}

/// Why a packet was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    Malformed,
    Auth,
    Cluster,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    }
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> ! {
    panic!("HMAC-SHA256 accepts keys of every length")
}

fn encode_packet(secret: &[u8], announce: &Announce) -> Result<Vec<u8>, DiscoveryError> {
    let payload =
        actor_core::codec::encode(announce).map_err(|e| DiscoveryError::Socket(e.to_string()))?;
    Ok(seal(secret, &payload))
}

/// Frames and signs any payload as a packet (the fuzz target signs arbitrary payloads, to reach
/// the decoder behind the MAC check).
pub(crate) fn seal(secret: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5 + MAC_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(payload);
    let mut m = mac(secret);
    m.update(&out);
    out.extend_from_slice(&m.finalize().into_bytes());
    out
}

/// Builds the announcement packet a node sends (for tools and tests that speak the protocol).
pub fn announcement_packet(
    secret: &[u8],
    cluster: &str,
    node: &NodeIdentity,
) -> Result<Vec<u8>, DiscoveryError> {
    let sent_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    encode_packet(
        secret,
        &Announce {
            cluster: cluster.to_owned(),
            node: node.clone(),
            sent_at_ms,
        },
    )
}

/// Verifies and decodes a packet (sans-IO: used by the socket task and by the fuzz targets).
pub(crate) fn decode_packet(
    secret: &[u8],
    cluster: &str,
    packet: &[u8],
) -> Result<NodeIdentity, Rejected> {
    if packet.len() < MAGIC.len() + 1 + MAC_LEN || packet.len() > MAX_PACKET {
        return Err(Rejected::Malformed);
    }
    if &packet[..4] != MAGIC || packet[4] != VERSION {
        return Err(Rejected::Malformed);
    }
    let (body, tag) = packet.split_at(packet.len() - MAC_LEN);
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(tag).map_err(|_| Rejected::Auth)?;
    let a: Announce = actor_core::Codec::with_max_frame_size(MAX_PACKET)
        .decode(&body[5..])
        .map_err(|_| Rejected::Malformed)?;
    if a.cluster != cluster {
        return Err(Rejected::Cluster);
    }
    Ok(a.node)
}

struct Shared {
    heard: Mutex<HashMap<SocketAddr, Instant>>,
    stats: GossipStats,
}

/// UDP gossip discovery. Its socket task starts when the node attaches it.
pub struct GossipDiscovery {
    config: GossipConfig,
    shared: Arc<Shared>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for GossipDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipDiscovery")
            .field("target", &self.config.target)
            .field("cluster", &self.config.cluster)
            .finish_non_exhaustive()
    }
}

impl GossipDiscovery {
    /// Gossip discovery with these settings.
    pub fn new(config: GossipConfig) -> Self {
        Self {
            config,
            shared: Arc::new(Shared {
                heard: Mutex::new(HashMap::new()),
                stats: GossipStats::default(),
            }),
            task: Mutex::new(None),
        }
    }

    /// Packet counters.
    pub fn stats(&self) -> &GossipStats {
        &self.shared.stats
    }

    fn socket(&self) -> Result<UdpSocket, DiscoveryError> {
        use socket2::{Domain, Protocol, Socket, Type};
        let err = |e: std::io::Error| DiscoveryError::Socket(e.to_string());
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
        sock.set_reuse_address(true).map_err(err)?;
        sock.set_reuse_port(true).map_err(err)?;
        sock.set_nonblocking(true).map_err(err)?;
        let port = self.config.target.port();
        match self.config.target.ip() {
            IpAddr::V4(group) if group.is_multicast() => {
                sock.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())
                    .map_err(err)?;
                sock.join_multicast_v4(&group, &self.config.interface)
                    .map_err(err)?;
                sock.set_multicast_if_v4(&self.config.interface)
                    .map_err(err)?;
                sock.set_multicast_loop_v4(true).map_err(err)?;
                sock.set_multicast_ttl_v4(self.config.ttl).map_err(err)?;
            }
            IpAddr::V4(_) => {
                sock.set_broadcast(true).map_err(err)?;
                sock.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())
                    .map_err(err)?;
            }
            IpAddr::V6(_) => {
                return Err(DiscoveryError::Socket(
                    "gossip discovery supports IPv4 multicast or broadcast".into(),
                ))
            }
        }
        UdpSocket::from_std(sock.into()).map_err(err)
    }
}

impl Drop for GossipDiscovery {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().take() {
            t.abort();
        }
    }
}

impl Discovery for GossipDiscovery {
    fn name(&self) -> &str {
        "gossip"
    }

    fn attach(&self, me: &NodeIdentity) -> Result<(), DiscoveryError> {
        let socket = Arc::new(self.socket()?);
        let shared = self.shared.clone();
        let cfg = self.config.clone();
        let me = me.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_PACKET + 1];
            let mut ticker = tokio::time::interval(cfg.interval);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        match announcement_packet(&cfg.secret, &cfg.cluster, &me) {
                            Ok(p) => {
                                if let Err(e) = socket.send_to(&p, cfg.target).await {
                                    tracing::debug!(error = %e, "gossip announcement not sent");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot encode a gossip announcement"),
                        }
                    }
                    r = socket.recv_from(&mut buf) => {
                        let Ok((n, from)) = r else { continue };
                        shared.stats.received.fetch_add(1, Ordering::Relaxed);
                        match decode_packet(&cfg.secret, &cfg.cluster, &buf[..n]) {
                            Ok(node) => {
                                shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
                                if node.name != me.name {
                                    shared.heard.lock().insert(node.addr, Instant::now());
                                }
                            }
                            Err(why) => {
                                let c = match why {
                                    Rejected::Auth => &shared.stats.rejected_auth,
                                    Rejected::Malformed => &shared.stats.rejected_malformed,
                                    Rejected::Cluster => &shared.stats.rejected_cluster,
                                };
                                c.fetch_add(1, Ordering::Relaxed);
                                tracing::debug!(%from, ?why, "gossip packet ignored");
                            }
                        }
                    }
                }
            }
        });
        if let Some(old) = self.task.lock().replace(task) {
            old.abort();
        }
        Ok(())
    }

    fn discover(&self) -> BoxFuture<'_, Result<Vec<SocketAddr>, DiscoveryError>> {
        Box::pin(async move {
            let horizon = self.config.interval * 6;
            let mut heard = self.shared.heard.lock();
            heard.retain(|_, t| t.elapsed() < horizon);
            Ok(heard.keys().copied().collect())
        })
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.config.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce() -> Announce {
        Announce {
            cluster: "c".into(),
            node: NodeIdentity {
                name: "n1".into(),
                incarnation: 7,
                addr: SocketAddr::from(([127, 0, 0, 1], 4000)),
            },
            sent_at_ms: 1,
        }
    }

    #[test]
    fn packets_verify_only_with_the_right_secret_and_cluster() {
        let p = encode_packet(b"secret", &announce()).unwrap_or_default();
        assert_eq!(decode_packet(b"secret", "c", &p), Ok(announce().node));
        assert_eq!(decode_packet(b"other", "c", &p), Err(Rejected::Auth));
        assert_eq!(decode_packet(b"secret", "d", &p), Err(Rejected::Cluster));
        let mut damaged = p.clone();
        damaged[10] ^= 1;
        assert_eq!(decode_packet(b"secret", "c", &damaged), Err(Rejected::Auth));
        assert_eq!(
            decode_packet(b"secret", "c", &p[..20]),
            Err(Rejected::Malformed)
        );
        assert_eq!(
            decode_packet(b"secret", "c", b"garbage"),
            Err(Rejected::Malformed)
        );
    }
}
