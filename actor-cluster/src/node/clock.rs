//! The node's side of clock agreement ([`actor_cluster_proto::clock`]): probes' wall clocks in,
//! corrections of this process's clock ([`actor_core::wallclock`]) out.

use parking_lot::Mutex;

pub(super) use actor_cluster_proto::clock::ClockSync;

use super::Node;

/// A peer's probe stamped `theirs_ns` (the ack of ping `ack_of`, if one) was just read: bounds
/// on its clock's offset, and a correction of this process's wall clock when a majority agrees
/// it is off.
pub(super) fn sample(sync: &Mutex<ClockSync>, peer: &str, theirs_ns: u64, ack_of: Option<u64>) {
    let now = std::time::Instant::now();
    let mut c = sync.lock();
    c.on_sample(
        peer,
        theirs_ns,
        actor_core::wallclock::system_ns(),
        ack_of,
        now,
    );
    if let Some(adj) = c.decide(now) {
        actor_core::wallclock::set_correction(adj.correction_ns);
        tracing::warn!(
            by_ms = adj.by_ns / 1_000_000,
            correction_ms = adj.correction_ns / 1_000_000,
            peers = adj.peers,
            "this node's wall clock disagrees with the cluster's median: corrected"
        );
        metrics::gauge!("cluster_clock_correction_seconds").set(adj.correction_ns as f64 / 1e9);
    }
}

impl Node {
    /// This node's clock as the cluster sees it: the correction in force (ns; what
    /// [`actor_core::wallclock::wall_ns`] adds to the machine's clock) and each peer's
    /// estimated offset (ns; positive: the peer's clock is ahead of this node's corrected one).
    pub fn clock_offsets(&self) -> (i64, Vec<(String, i64)>) {
        let peers = self.inner.clock.lock().offsets(std::time::Instant::now());
        (actor_core::wallclock::correction_ns(), peers)
    }
}
