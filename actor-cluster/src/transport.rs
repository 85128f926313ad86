//! Our transport under ractor_cluster: TCP (optionally TLS) streams that we open and accept
//! ourselves and hand to ractor_cluster through its external-stream hook.
//!
//! Owning the sockets gives us what ractor_cluster lacks: the listening port the OS picked, an
//! identity exchange before ractor's handshake (name, incarnation and advertised address of
//! the peer), a control lane per connection ([`crate::mux`]), the node's session table with
//! per-peer outbound accounting ([`crate::outbound`]), and fault injection
//! ([`crate::faults`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use actor_cluster_proto::wire::WireError;
pub use actor_cluster_proto::wire::{
    decode_identity_body, decode_identity_frame, identity_frame, identity_frame_len,
};
use actor_cluster_proto::NodeIdentity;

use crate::faults::{ConnCtl, FaultStream, Faults};
use crate::mux::{self, ControlHandler, Lane, MuxRead, MuxWrite};
use crate::sessions::Sessions;
use crate::tls::TlsConfig;

/// Any stream we hand to ractor_cluster.
trait Duplex: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Duplex for T {}

/// A connection after the identity exchange.
enum Wire {
    /// Plain TCP: split into owned halves (no lock shared by reader and writer).
    Plain(FaultStream<TcpStream>),
    /// TLS: split with a lock, as TLS state is shared.
    Tls(Box<dyn Duplex>),
}

impl Wire {
    /// Splits the connection and starts its two lanes (see [`crate::mux`]).
    fn into_lanes(
        self,
        peer: String,
        handler: ControlHandler,
        ctl: Arc<ConnCtl>,
    ) -> (Arc<Lane>, MuxRead, MuxWrite) {
        let on_error: Arc<dyn Fn() + Send + Sync> = Arc::new(move || ctl.close());
        match self {
            Wire::Plain(fs) => {
                let (r, w) = fs.inner.into_split();
                let r = FaultStream::new(r, fs.ctl.clone(), fs.faults.clone());
                let w = FaultStream::new(w, fs.ctl, fs.faults);
                mux::start(peer, r, w, handler, on_error)
            }
            Wire::Tls(stream) => {
                let (r, w) = tokio::io::split(stream);
                mux::start(peer, r, w, handler, on_error)
            }
        }
    }
}

/// The stream handed to ractor_cluster: the data lane of a connection. Its label,
/// `name#id`, names the connection, so session events can be matched to it.
struct ExternalStream {
    read: MuxRead,
    write: MuxWrite,
    label: String,
}

impl ClusterBidiStream for ExternalStream {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        (Box::new(self.read), Box::new(self.write))
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.label.clone())
    }
}

/// The node name in a connection label (`name#id`).
pub(crate) fn label_name(label: &str) -> &str {
    label.rsplit_once('#').map(|(n, _)| n).unwrap_or(label)
}

fn label_id(label: &str) -> Option<u64> {
    label.rsplit_once('#').and_then(|(_, id)| id.parse().ok())
}

/// Why a connection attempt or an accepted connection was not handed to ractor_cluster.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The peer did not complete the exchange in time.
    #[error("timed out")]
    Timeout,
    /// The TLS handshake failed (for example, a plaintext peer talking to a TLS node).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The peer sent something that is not our identity frame.
    #[error("bad identity frame: {0}")]
    BadHello(String),
    /// The address is this node's own.
    #[error("dialed this node itself")]
    SelfDial,
    /// Traffic with that peer is blocked by fault injection.
    #[error("traffic with {0} is blocked")]
    Blocked(String),
    /// ractor_cluster refused the stream.
    #[error("the node server refused the connection: {0}")]
    NodeServer(String),
}

impl From<WireError> for ConnectError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::BadIdentity(why) => ConnectError::BadHello(why),
        }
    }
}

/// The connections of one node, by peer name.
pub(crate) struct Transport {
    me: NodeIdentity,
    faults: Arc<Faults>,
    tls: Option<TlsConfig>,
    conns: Mutex<HashMap<String, Vec<Weak<ConnCtl>>>>,
    lanes: Mutex<HashMap<u64, Weak<Lane>>>,
    sessions: Arc<Sessions>,
    next_id: AtomicU64,
    handler: OnceLock<ControlHandler>,
    max_outbound: u64,
    timeout: Duration,
}

impl Transport {
    pub(crate) fn new(
        me: NodeIdentity,
        faults: Arc<Faults>,
        tls: Option<TlsConfig>,
        timeout: Duration,
        max_outbound: u64,
    ) -> Self {
        Self {
            me,
            faults,
            tls,
            conns: Mutex::new(HashMap::new()),
            lanes: Mutex::new(HashMap::new()),
            sessions: Arc::default(),
            next_id: AtomicU64::new(1),
            handler: OnceLock::new(),
            max_outbound,
            timeout,
        }
    }

    /// The node's sessions by ractor_cluster node id.
    pub(crate) fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// Sets where control frames from authenticated connections go (once, at node start).
    pub(crate) fn set_control_handler(&self, handler: ControlHandler) {
        let _ = self.handler.set(handler);
    }

    /// Queues a control frame on every authenticated connection, ahead of its data.
    pub(crate) fn broadcast_control(&self, frame: &mux::Control) {
        self.control(frame, None);
    }

    /// Queues a control frame on one authenticated connection with `peer`, ahead of its data.
    pub(crate) fn send_control(&self, peer: &str, frame: &mux::Control) {
        self.control(frame, Some(peer));
    }

    fn control(&self, frame: &mux::Control, to: Option<&str>) {
        let bytes = match mux::encode_control(frame) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                tracing::error!(error = %e, "control frame does not encode");
                return;
            }
        };
        let lanes: Vec<Arc<Lane>> = {
            let mut lanes = self.lanes.lock();
            lanes.retain(|_, w| w.strong_count() > 0);
            let ready = lanes
                .values()
                .filter_map(Weak::upgrade)
                .filter(|l| l.is_ready());
            match to {
                None => ready.collect(),
                Some(peer) => ready.filter(|l| l.peer() == peer).take(1).collect(),
            }
        };
        for lane in &lanes {
            if !lane.send_control(bytes.clone()) {
                tracing::debug!(peer = %lane.peer(), "control queue full; probe frame dropped");
            }
            metrics::gauge!("cluster_outbound_queued", "peer" => lane.peer().to_owned())
                .set(lane.outbound().queued() as f64);
        }
    }

    /// ractor_cluster authenticated the session over connection `label`, as `node_id`:
    /// accept its control frames and bound sends to its actors.
    pub(crate) fn session_ready(&self, label: &str, node_id: u64) {
        let lane = label_id(label).and_then(|id| self.lanes.lock().get(&id)?.upgrade());
        match lane {
            Some(lane) => {
                lane.set_ready();
                self.sessions.bind(node_id, lane);
            }
            None => tracing::debug!(%label, "session ready on a connection that is gone"),
        }
    }

    /// The session `node_id` ended.
    pub(crate) fn session_closed(&self, node_id: u64) {
        self.sessions.unbind(node_id);
    }

    /// Cuts every connection with this peer.
    pub(crate) fn close_peer(&self, name: &str) {
        if let Some(list) = self.conns.lock().remove(name) {
            for c in list.into_iter().filter_map(|w| w.upgrade()) {
                c.close();
            }
        }
    }

    fn register(&self, name: &str, ctl: &Arc<ConnCtl>) {
        let mut conns = self.conns.lock();
        let list = conns.entry(name.to_owned()).or_default();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(ctl));
    }

    /// Opens a connection: TCP, TLS if configured, identity exchange. Returns the stream
    /// ready for ractor_cluster and the peer's identity.
    pub(crate) async fn dial(
        &self,
        addr: SocketAddr,
        expected: Option<&str>,
    ) -> Result<(Box<dyn ClusterBidiStream>, NodeIdentity), ConnectError> {
        if let Some(name) = expected {
            if self.faults.is_blocked(name) {
                return Err(ConnectError::Blocked(name.to_owned()));
            }
        }
        let fut = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let ctl = Arc::new(ConnCtl::default());
            if let Some(name) = expected {
                ctl.set_peer(name);
            }
            let raw = FaultStream::new(tcp, ctl.clone(), self.faults.clone());
            let wire = match &self.tls {
                Some(tls) => Wire::Tls(Box::new(
                    tls.connector
                        .connect(tls.server_name.clone(), raw)
                        .await
                        .map_err(|e| ConnectError::Tls(e.to_string()))?,
                )),
                None => Wire::Plain(raw),
            };
            self.exchange(wire, ctl).await
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ConnectError::Timeout)?
    }

    /// Completes an accepted connection: TLS if configured, identity exchange.
    pub(crate) async fn accept(
        &self,
        tcp: TcpStream,
    ) -> Result<(Box<dyn ClusterBidiStream>, NodeIdentity), ConnectError> {
        let fut = async {
            tcp.set_nodelay(true)?;
            let ctl = Arc::new(ConnCtl::default());
            let raw = FaultStream::new(tcp, ctl.clone(), self.faults.clone());
            let wire = match &self.tls {
                Some(tls) => Wire::Tls(Box::new(
                    tls.acceptor
                        .accept(raw)
                        .await
                        .map_err(|e| ConnectError::Tls(e.to_string()))?,
                )),
                None => Wire::Plain(raw),
            };
            self.exchange(wire, ctl).await
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ConnectError::Timeout)?
    }

    async fn exchange(
        &self,
        mut wire: Wire,
        ctl: Arc<ConnCtl>,
    ) -> Result<(Box<dyn ClusterBidiStream>, NodeIdentity), ConnectError> {
        let stream: &mut dyn Duplex = match &mut wire {
            Wire::Plain(s) => s,
            Wire::Tls(s) => s.as_mut(),
        };
        let frame = identity_frame(&self.me)?;
        stream.write_all(&frame).await?;
        stream.flush().await?;

        let mut head = [0u8; 8];
        stream.read_exact(&mut head).await?;
        let len = identity_frame_len(&head)?;
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        let id = decode_identity_body(&body)?;
        if id.name == self.me.name {
            return Err(ConnectError::SelfDial);
        }
        if self.faults.is_blocked(&id.name) {
            return Err(ConnectError::Blocked(id.name));
        }
        ctl.set_peer(&id.name);
        self.register(&id.name, &ctl);
        let conn = self.next_id.fetch_add(1, Ordering::Relaxed);
        let handler = self
            .handler
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::new(|_: &Lane, _| {}));
        let (lane, read, write) = wire.into_lanes(id.name.clone(), handler, ctl);
        lane.outbound().set_limit(self.max_outbound);
        self.lanes.lock().insert(conn, Arc::downgrade(&lane));
        // The lane lives as long as its writer task: until ractor drops the write half or
        // the connection fails.
        let stream = ExternalStream {
            read,
            write,
            label: format!("{}#{conn}", id.name),
        };
        Ok((Box::new(stream), id))
    }
}
