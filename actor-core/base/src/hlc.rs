//! A hybrid logical clock (Kulkarni et al., 2014): wall-clock time plus a logical counter plus
//! the writer node.
//!
//! A [`Stamp`] orders events across nodes the way a wall clock would while the clocks agree,
//! and never goes backwards when they do not: a node that receives a stamp from a node whose
//! clock runs ahead moves its own clock past it ([`Hlc::observe`]). Ties are broken by the
//! writer's name, so two different writers never produce equal stamps. It is the toolkit's one
//! "newer wins" order: the distributed supervisor's child table, registry conflicts (the older
//! registration wins) and flag versions compare stamps.
//!
//! The clock reads no time of its own: the caller passes the wall clock in nanoseconds since
//! the Unix epoch (`wall_ns`) to every call, which keeps it deterministic under simulation.
//!
//! ```
//! use actor_core_base::hlc::Hlc;
//! let mut a = Hlc::new("a");
//! let mut b = Hlc::new("b");
//! let s1 = a.now(1_000);
//! // b's wall clock is behind a's; once it has seen a's stamp, its stamps still come after it.
//! b.observe(&s1, 500);
//! let s2 = b.now(600);
//! assert!(s2 > s1);
//! ```

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// One point of the hybrid logical clock.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Stamp {
    /// The highest wall-clock time seen, in nanoseconds since the Unix epoch.
    pub wall_ns: u64,
    /// Events within the same `wall_ns`.
    pub logical: u32,
    /// The writer node (breaks ties between writers).
    pub node: String,
}

impl Stamp {
    /// The stamp of `node` at a wall-clock time, with no logical part.
    pub fn at(wall_ns: u64, node: impl Into<String>) -> Self {
        Self {
            wall_ns,
            logical: 0,
            node: node.into(),
        }
    }
}

/// Logical events per microsecond that a packed [`Stamp::version`] can tell apart.
const VERSION_LOGICAL_BITS: u32 = 12;

impl Stamp {
    /// The stamp packed into one `u64` (microseconds of wall time, then 12 bits of logical
    /// counter; the writer is not part of it), for orders kept in an atomic: packed stamps
    /// compare as the stamps do, to the microsecond.
    pub fn version(&self) -> u64 {
        let logical = u64::from(self.logical.min((1 << VERSION_LOGICAL_BITS) - 1));
        ((self.wall_ns / 1_000) << VERSION_LOGICAL_BITS) | logical
    }

    /// The stamp a packed [`Stamp::version`] stands for (writer unknown: empty).
    pub fn from_version(version: u64) -> Self {
        Self {
            wall_ns: (version >> VERSION_LOGICAL_BITS).saturating_mul(1_000),
            logical: (version & ((1 << VERSION_LOGICAL_BITS) - 1)) as u32,
            node: String::new(),
        }
    }
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.wall_ns, self.logical, &self.node).cmp(&(other.wall_ns, other.logical, &other.node))
    }
}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One node's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hlc {
    node: String,
    wall_ns: u64,
    logical: u32,
}

impl Hlc {
    /// The clock of `node`, before any event.
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            wall_ns: 0,
            logical: 0,
        }
    }

    /// The node this clock stamps for.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A new stamp for a local event, after every stamp this clock has made or observed.
    pub fn now(&mut self, wall_ns: u64) -> Stamp {
        if wall_ns > self.wall_ns {
            self.wall_ns = wall_ns;
            self.logical = 0;
        } else {
            self.bump();
        }
        self.current()
    }

    /// Takes in a stamp received from another node: later local stamps come after it.
    pub fn observe(&mut self, remote: &Stamp, wall_ns: u64) {
        let top = wall_ns.max(remote.wall_ns);
        match (top.cmp(&self.wall_ns), remote.wall_ns == top) {
            (Ordering::Greater, true) => {
                self.wall_ns = top;
                self.logical = remote.logical;
            }
            (Ordering::Greater, false) => {
                self.wall_ns = top;
                self.logical = 0;
            }
            (_, true) if remote.wall_ns == self.wall_ns => {
                self.logical = self.logical.max(remote.logical);
            }
            _ => {}
        }
    }

    /// The latest stamp made or observed, as this node's.
    pub fn current(&self) -> Stamp {
        Stamp {
            wall_ns: self.wall_ns,
            logical: self.logical,
            node: self.node.clone(),
        }
    }

    fn bump(&mut self) {
        match self.logical.checked_add(1) {
            Some(l) => self.logical = l,
            None => {
                // 4 billion events within one nanosecond: borrow the next nanosecond.
                self.wall_ns = self.wall_ns.saturating_add(1);
                self.logical = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stamps_follow_the_wall_clock_and_never_go_back() {
        let mut c = Hlc::new("a");
        let s1 = c.now(100);
        let s2 = c.now(100);
        let s3 = c.now(50);
        let s4 = c.now(200);
        assert!(s1 < s2 && s2 < s3 && s3 < s4);
        assert_eq!(s4, Stamp::at(200, "a"));
    }

    #[test]
    fn ties_between_writers_break_by_name() {
        assert!(Stamp::at(5, "a") < Stamp::at(5, "b"));
        assert!(Stamp::at(4, "b") < Stamp::at(5, "a"));
    }

    #[test]
    fn packed_versions_keep_the_order_and_causality() {
        let mut a = Hlc::new("a");
        let mut b = Hlc::new("b");
        let v1 = a.now(5_000_000).version();
        let v2 = a.now(5_000_000).version();
        assert!(v2 > v1);
        // b's clock is a second behind; after seeing a's version its next one is newer.
        b.observe(&Stamp::from_version(v2), 4_000_000);
        assert!(b.now(4_000_100).version() > v2);
        assert_eq!(Stamp::from_version(v1).version(), v1);
    }

    proptest! {
        /// Whatever the clocks say, a stamp made after observing another is greater than it
        /// (causality), and a clock's own stamps only grow.
        #[test]
        fn causality_holds_under_any_skew(
            events in proptest::collection::vec((0usize..3, 0u64..1_000, any::<bool>()), 1..200)
        ) {
            let mut clocks = [Hlc::new("a"), Hlc::new("b"), Hlc::new("c")];
            let mut last: Vec<Option<Stamp>> = vec![None, None, None];
            let mut sent: Option<Stamp> = None;
            for (who, wall, receive) in events {
                if receive {
                    if let Some(s) = &sent {
                        clocks[who].observe(s, wall);
                        let after = clocks[who].now(wall);
                        prop_assert!(after > *s);
                    }
                }
                let s = clocks[who].now(wall);
                if let Some(prev) = &last[who] {
                    prop_assert!(s > *prev);
                }
                last[who] = Some(s.clone());
                sent = Some(s);
            }
        }
    }
}
