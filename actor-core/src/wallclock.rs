//! The process's wall clock, as every stamp of the toolkit reads it (registry registrations,
//! child-table rows, flag versions, node incarnations).
//!
//! It is the system clock plus two offsets:
//!
//! * a **correction** the cluster layer learns from its peers (`actor_cluster` estimates each
//!   peer's offset from the wall time its probes carry and, when a majority of the cluster
//!   agrees that this node's clock is off, corrects it here: see the runtime-semantics
//!   chapter, "Clocks");
//! * an injected **skew**, a fault-injection hook for tests and chaos runs: it moves this
//!   process's clock as a wrong system clock would.
//!
//! Both are process-wide (a node is a process; a machine's clock is wrong for all of it).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static SKEW_NS: AtomicI64 = AtomicI64::new(0);
static CORRECTION_NS: AtomicI64 = AtomicI64::new(0);

fn offset(ns: u64, by: i64) -> u64 {
    if by >= 0 {
        ns.saturating_add(by.unsigned_abs())
    } else {
        ns.saturating_sub(by.unsigned_abs())
    }
}

/// What the machine's clock says (the system clock with the injected skew), ns since the
/// Unix epoch.
pub fn system_ns() -> u64 {
    let raw = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    offset(raw, SKEW_NS.load(Ordering::Relaxed))
}

/// The corrected wall clock, ns since the Unix epoch: what stamps are made from.
pub fn wall_ns() -> u64 {
    offset(system_ns(), CORRECTION_NS.load(Ordering::Relaxed)).max(1)
}

/// Fault injection: this process's clock runs `ns` ahead (negative: behind) of the system's.
pub fn inject_skew(ns: i64) {
    SKEW_NS.store(ns, Ordering::Relaxed);
}

/// The injected skew, ns.
pub fn skew_ns() -> i64 {
    SKEW_NS.load(Ordering::Relaxed)
}

/// Sets the correction added to [`system_ns`] (the cluster layer's job).
pub fn set_correction(ns: i64) {
    CORRECTION_NS.store(ns, Ordering::Relaxed);
}

/// The correction in force, ns.
pub fn correction_ns() -> i64 {
    CORRECTION_NS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_and_correction_move_the_clock_and_cancel_out() {
        let before = wall_ns();
        inject_skew(-5_000_000_000);
        let skewed = wall_ns();
        assert!(before - skewed > 4_000_000_000, "{before} {skewed}");
        set_correction(5_000_000_000);
        let fixed = wall_ns();
        assert!(fixed >= before && fixed - before < 1_000_000_000);
        inject_skew(0);
        set_correction(0);
        assert!(wall_ns() >= before);
    }
}
