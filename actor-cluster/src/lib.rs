//! `actor-cluster`: nodes, membership and discovery, failure detection, and (being built) the
//! cluster registry and the distributed dynamic supervisor.
//!
//! ractor_cluster connects two nodes when told to. This crate adds what Erlang users expect of
//! a cluster (see the book's "Starting a cluster" and "Runtime semantics" chapters):
//!
//! * [`Node`]: one per OS process, from [`Node::builder`]: name, listen address, cookie,
//!   [`Timings`], discovery, optional [`TlsConfig`]; graceful [`Node::leave`].
//! * [`discovery`]: libcluster's strategies behind the [`Discovery`] trait: static seeds, DNS
//!   (A/AAAA and SRV), authenticated UDP gossip, or your own.
//! * [`membership`]: a pure state machine (incarnations; up, suspect, down, left) fed by
//!   session events, heartbeats and gossiped member lists. Every node connects to every member
//!   it learns of (full mesh) and reconnects with backoff; heartbeats find a frozen or cut-off
//!   node (down within about 1.1 s by default). Subscribers get [`MemberEvent`]s.
//! * [`registry`]: cluster-wide unique names ([`Registry`]): local lookups, deltas in
//!   milliseconds, deterministic conflict resolution after a partition heals.
//! * [`supervisor`]: the distributed dynamic supervisor ([`DistributedSupervisor`]): children
//!   as data, placement behind a trait, failover, handoff, per-child restart isolation.
//! * [`remote`]: typed remote refs, found by group name and checked by message type; bounded
//!   sends through the node's [`Remote`] handle ([`Remote::try_cast`], [`Remote::cast`],
//!   [`Remote::call`]) that keep each peer's outbound queue under a limit. Heartbeats travel on a control lane of each connection
//!   ([`mux`]), ahead of queued messages.
//! * fault injection ([`Faults`]): block traffic with chosen peers, for partition tests.
//!
//! The decisions of membership, the registry and the supervisor are the pure state machines of
//! `actor-cluster-proto`; this crate is their shell. Local node processes (the demo, tests) are
//! launched and driven by the `actor-cluster-launch` crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), actor_cluster::ClusterError> {
//! use actor_cluster::Node;
//! let node = Node::builder("n1")
//!     .listen("127.0.0.1:4370".parse().map_err(|_| actor_cluster::ClusterError::InvalidConfig("addr".into()))?)
//!     .cookie("secret")
//!     .seeds(["127.0.0.1:4371"])
//!     .start()
//!     .await?;
//! let mut events = node.subscribe();
//! while let Ok(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

pub mod discovery;
pub mod endpoint;
mod faults;
#[doc(hidden)]
pub mod fuzzing;
pub mod membership;
pub mod mux;
mod node;
mod outbound;
pub mod registry;
pub mod remote;
mod sessions;
pub mod summaries;
pub mod supervisor;
mod tls;
mod transport;

pub use discovery::{Discovery, DiscoveryError, StaticSeeds};
pub use faults::{Faults, LinkFault};
pub use membership::{DownReason, MemberEvent, MemberInfo, MemberState, NodeIdentity, Timings};
pub use node::{Node, NodeBuilder};
pub use outbound::OutboundStats;
pub use registry::{Registry, RegistryError, RegistryEvent};
pub use remote::Remote;
pub use summaries::{Summaries, SummarySlot};
pub use supervisor::{
    ChildKind, DistChildSpec, DistSupervisorError, DistributedSupervisor, Entity, EntityContext,
    EntityRef, Placement, PutOutcome, StartContext, Started,
};
pub use tls::TlsConfig;
pub use transport::{
    decode_identity_body, decode_identity_frame, identity_frame, identity_frame_len, ConnectError,
};

/// Errors of cluster nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The listener could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(std::net::SocketAddr, String),
    /// The configuration is not usable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// ractor_cluster's node server failed.
    #[error("node server: {0}")]
    NodeServer(String),
    /// TLS material could not be loaded or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// A discovery source failed to start.
    #[error("discovery: {0}")]
    Discovery(String),
    /// The node's actors did not answer (it is stopping or stopped).
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// Fewer members came up than were waited for ([`Node::wait_for_members`]).
    #[error("{up} of {wanted} other members up after {waited:?}{}", last_problem.as_ref().map(|p| format!("; last connection problem: {p}")).unwrap_or_default())]
    NotFormed {
        /// Members waited for (this node not counted).
        wanted: usize,
        /// Members up when the wait ended.
        up: usize,
        /// How long it waited.
        waited: std::time::Duration,
        /// The latest failed dial, with its address and error, if any.
        last_problem: Option<String>,
    },
}
