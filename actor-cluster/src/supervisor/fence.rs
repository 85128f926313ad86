//! The lease fence: whether this node's children of a quorum-placed supervisor may act now.
//!
//! The supervisor's core computes until when this node holds its lease (see
//! `actor_cluster_proto::supervisor::lease`); the supervisor's actor publishes it here after
//! every input, and every entity host reads it before each message: past it, the message is
//! not handled and the entity stops ([`FENCED`]). Reading it costs one clock read and one
//! atomic load. Monotonic time runs on while a process is stopped, so a node that was frozen
//! past its lease refuses its first message after it runs again, before it has heard from
//! anyone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The exit reason of an entity stopped by its fence.
pub const FENCED: &str = "fenced: this node's lease lapsed";

/// No deadline (a supervisor without leases).
const OPEN: u64 = u64::MAX;

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Until when this node's children may act (shared by the supervisor and its children).
#[derive(Debug, Clone)]
pub struct LeaseFence(Arc<AtomicU64>);

impl Default for LeaseFence {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(OPEN)))
    }
}

impl LeaseFence {
    /// Whether a child may act now: the supervisor needs no lease, or this node holds it.
    pub fn is_open(&self) -> bool {
        match self.0.load(Ordering::Acquire) {
            OPEN => true,
            until => (base().elapsed().as_nanos() as u64) < until,
        }
    }

    /// Publishes the core's fence (`None`: no lease needed).
    pub(crate) fn set(&self, until: Option<Instant>) {
        let v = match until {
            None => OPEN,
            Some(t) => (t.saturating_duration_since(base()).as_nanos() as u64).min(OPEN - 1),
        };
        self.0.store(v, Ordering::Release);
    }
}
