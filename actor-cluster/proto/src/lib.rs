//! `actor-cluster-proto`: the cluster's protocol cores, as deterministic state machines.
//!
//! Nothing here opens a socket, spawns a task, reads a clock or draws a random number: every
//! input is a method call that carries the time ([`Now`], or an `Instant`) and, where a choice is
//! random, one sample; every output is a list of effects for the caller to carry out. The
//! crate depends on std, serde and `actor-core-base` only (`cargo tree -p actor-cluster-proto`
//! shows no tokio and no ractor), in the manner of quinn-proto and foca. `actor-cluster` is the
//! shell that drives these machines with real time, sockets and actors; [`sim`] drives them in
//! one process over a simulated network, with a virtual clock and seeded faults.
//!
//! * [`clock`]: peers' clock offsets from their probes, and the correction a majority agrees on.
//! * [`identity`]: who a node is and which run of it owns a registration.
//! * [`membership`]: members with incarnations, failure detection, reconnection.
//! * [`replication`]: the one skeleton of deltas, digests and anti-entropy that the registry,
//!   the child table and the flag cache share.
//! * [`registry`]: cluster-wide unique names, one replica per node.
//! * [`supervisor`]: the distributed dynamic supervisor's child table, placement and decisions.
//! * [`wire`]: the identity frame, chunk headers, control frames and group names.
//! * [`sim`]: the deterministic simulator and its invariants.

pub mod clock;
pub mod hash;
pub mod identity;
pub mod membership;
pub mod registry;
pub mod replication;
pub mod sim;
pub mod supervisor;
pub mod wire;

use std::time::Instant;

pub use identity::{NodeIdentity, Owner};

/// The time of one call: the monotonic instant (timeouts, windows) and the wall clock in
/// nanoseconds since the Unix epoch (hybrid-logical-clock stamps). The shell reads both once per
/// message; the simulator advances both together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub mono: Instant,
    /// Wall-clock time, ns since the Unix epoch.
    pub wall_ns: u64,
}
