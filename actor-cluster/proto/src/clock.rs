//! Clock agreement: each probe frame carries its sender's wall clock; this core estimates every
//! peer's offset from them and, when a majority of the cluster agrees that this node's clock
//! is off, says by how much to correct it (the Berkeley algorithm's median, over probes the
//! cluster sends anyway).
//!
//! * A sample is `their wall clock in the frame − this node's wall clock when it arrived`: the
//!   true offset minus the frame's delay, which is never negative. The estimate of a peer is
//!   the *largest* of its last [`SAMPLES`] samples (the least delayed frame), as in
//!   Cristian's algorithm, once there are [`MIN_SAMPLES`] and they lie within
//!   [`MAX_SPREAD_NS`] of each other (frames that waited in a queue and arrive in a burst do
//!   not).
//! * The correction is the median of this node's own offset (0) and the fresh estimates of
//!   its peers, taken only with at least two peers (with one, nobody can tell whose clock is
//!   wrong) and applied when it exceeds [`THRESHOLD_NS`]; for an even count, the middle value
//!   nearer to 0. A node whose clock runs 5 s behind in a cluster of three sees two peers 5 s
//!   ahead and moves forward by 5 s; the other two see one peer behind and one in agreement,
//!   and stay.
//! * After a correction the estimates are shifted by it, and the next one waits
//!   [`MIN_INTERVAL`], so a correction is not counted twice.
//!
//! The hybrid logical clock keeps stamps monotonic through a correction in either direction.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Samples kept per peer.
pub const SAMPLES: usize = 8;
/// Samples a peer's estimate needs.
pub const MIN_SAMPLES: usize = 4;
/// The widest spread of a peer's samples that still gives an estimate.
pub const MAX_SPREAD_NS: i64 = 250_000_000;
/// A median offset smaller than this is left alone (delays and jitter of a loaded machine).
pub const THRESHOLD_NS: i64 = 100_000_000;
/// How often the estimates are looked at (a decision per frame would sort them per frame).
pub const CHECK_EVERY: Duration = Duration::from_millis(200);
/// The least time between two corrections.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// An estimate older than this (its peer sent nothing since) is not counted.
pub const FRESH_FOR: Duration = Duration::from_secs(10);
/// The largest correction ever applied: a clock wrong by more is a misconfigured machine,
/// which no cluster should follow or drag along.
pub const MAX_CORRECTION_NS: i64 = 3_600_000_000_000;

#[derive(Debug, Clone, Default)]
struct Peer {
    samples: Vec<i64>,
    last: Option<Instant>,
}

impl Peer {
    /// The estimate, once the samples agree: frames that waited in a queue (a frozen sender,
    /// a stalled reader, a burst after a partition) arrive together with offsets as far apart
    /// as their send times, while a wrong clock gives the same offset every time.
    fn estimate(&self) -> Option<i64> {
        let max = self.samples.iter().copied().max()?;
        let min = self.samples.iter().copied().min()?;
        (self.samples.len() >= MIN_SAMPLES && max.saturating_sub(min) < MAX_SPREAD_NS)
            .then_some(max)
    }
}

/// A correction to apply to this node's wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjust {
    /// Add this to the correction in force, ns (positive: this node's clock was behind).
    pub by_ns: i64,
    /// The correction in force after it, ns.
    pub correction_ns: i64,
    /// Peers whose estimates were counted.
    pub peers: usize,
}

/// The offset estimates of one node's peers.
#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    peers: BTreeMap<String, Peer>,
    correction_ns: i64,
    last_adjust: Option<Instant>,
    last_check: Option<Instant>,
}

impl ClockSync {
    /// No estimates, no correction.
    pub fn new() -> Self {
        Self::default()
    }

    /// The correction this core has decided so far, ns.
    pub fn correction_ns(&self) -> i64 {
        self.correction_ns
    }

    /// A frame from `peer` stamped `theirs_ns` (its wall clock) arrived when this node's
    /// (corrected) wall clock read `mine_ns`. A zero stamp (a sender that does not stamp) is
    /// ignored.
    pub fn on_sample(&mut self, peer: &str, theirs_ns: u64, mine_ns: u64, now: Instant) {
        if theirs_ns == 0 || mine_ns == 0 {
            return;
        }
        let sample = (i128::from(theirs_ns) - i128::from(mine_ns))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        let p = self.peers.entry(peer.to_owned()).or_default();
        if p.samples.len() >= SAMPLES {
            p.samples.remove(0);
        }
        p.samples.push(sample);
        p.last = Some(now);
    }

    /// `peer` is gone (down or left): its estimate no longer counts.
    pub fn on_peer_gone(&mut self, peer: &str) {
        self.peers.remove(peer);
    }

    /// The current estimate of `peer`'s offset (ns; positive: its clock is ahead of this one).
    pub fn offset_of(&self, peer: &str) -> Option<i64> {
        self.peers.get(peer).and_then(Peer::estimate)
    }

    /// The fresh estimates, by peer name.
    pub fn offsets(&self, now: Instant) -> Vec<(String, i64)> {
        self.peers
            .iter()
            .filter(|(_, p)| Self::fresh(p, now))
            .filter_map(|(n, p)| p.estimate().map(|o| (n.clone(), o)))
            .collect()
    }

    fn fresh(p: &Peer, now: Instant) -> bool {
        p.last
            .is_some_and(|t| now.saturating_duration_since(t) < FRESH_FOR)
    }

    /// Whether this node's clock should be corrected now, and by how much.
    pub fn decide(&mut self, now: Instant) -> Option<Adjust> {
        // Called on every frame; looked at every [`CHECK_EVERY`].
        if self
            .last_check
            .is_some_and(|t| now.saturating_duration_since(t) < CHECK_EVERY)
        {
            return None;
        }
        self.last_check = Some(now);
        // Peers silent for a long while are forgotten (names come and go).
        self.peers.retain(|_, p| {
            p.last
                .is_some_and(|t| now.saturating_duration_since(t) < FRESH_FOR * 6)
        });
        if self
            .last_adjust
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_INTERVAL)
        {
            return None;
        }
        let mut offsets: Vec<i64> = self
            .peers
            .values()
            .filter(|p| Self::fresh(p, now))
            .filter_map(Peer::estimate)
            .collect();
        let peers = offsets.len();
        if peers < 2 {
            return None;
        }
        offsets.push(0);
        offsets.sort_unstable();
        let n = offsets.len();
        let median = if n % 2 == 1 {
            offsets[n / 2]
        } else {
            let (a, b) = (offsets[n / 2 - 1], offsets[n / 2]);
            if a.unsigned_abs() <= b.unsigned_abs() {
                a
            } else {
                b
            }
        };
        if median.abs() < THRESHOLD_NS
            || self.correction_ns.saturating_add(median).abs() > MAX_CORRECTION_NS
        {
            return None;
        }
        self.correction_ns = self.correction_ns.saturating_add(median);
        self.last_adjust = Some(now);
        for p in self.peers.values_mut() {
            for s in &mut p.samples {
                *s = s.saturating_sub(median);
            }
        }
        Some(Adjust {
            by_ns: median,
            correction_ns: self.correction_ns,
            peers,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn feed(c: &mut ClockSync, peer: &str, offset_ns: i64, delays_ms: &[u64], now: Instant) {
        let mine = 1_000 * S;
        for d in delays_ms {
            let theirs = (mine as i64 + offset_ns) as u64;
            // Delivered `d` ms late: this node's clock had moved on.
            c.on_sample(peer, theirs, mine + d * 1_000_000, now);
        }
    }

    #[test]
    fn a_node_behind_a_majority_moves_to_it_and_the_majority_stays() {
        let now = Instant::now();
        let mut behind = ClockSync::new();
        feed(&mut behind, "a", 5 * S as i64, &[3, 1, 7, 4], now);
        feed(&mut behind, "c", 5 * S as i64, &[2, 9, 5, 6], now);
        let adj = behind.decide(now).unwrap();
        // The least delayed frames: 1 ms and 2 ms; the median of (0, 5 s - 2 ms, 5 s - 1 ms).
        assert_eq!(adj.by_ns, 5 * S as i64 - 2_000_000);
        assert_eq!(behind.correction_ns(), adj.by_ns);
        // Counted once: the next decision (after the interval) leaves it.
        assert_eq!(behind.decide(now + MIN_INTERVAL), None);

        let mut right = ClockSync::new();
        feed(&mut right, "b", -5 * S as i64, &[1, 1, 1, 1], now);
        feed(&mut right, "c", 0, &[1, 1, 1, 1], now);
        assert_eq!(right.decide(now), None);
    }

    #[test]
    fn one_peer_is_not_enough_to_tell_whose_clock_is_wrong() {
        let now = Instant::now();
        let mut c = ClockSync::new();
        feed(&mut c, "a", 5 * S as i64, &[1, 1, 1, 1], now);
        assert_eq!(c.decide(now), None);
    }

    #[test]
    fn small_offsets_stale_peers_and_gone_peers_do_not_count() {
        let now = Instant::now();
        let mut c = ClockSync::new();
        feed(&mut c, "a", 50_000_000, &[0, 0, 0, 0], now);
        feed(&mut c, "b", 60_000_000, &[0, 0, 0, 0], now);
        assert_eq!(c.decide(now), None, "under the threshold");
        feed(&mut c, "a", 5 * S as i64, &[0; 8], now);
        feed(&mut c, "b", 5 * S as i64, &[0; 8], now);
        assert_eq!(c.decide(now + FRESH_FOR), None, "stale");
        let later = now + FRESH_FOR + CHECK_EVERY;
        feed(&mut c, "b", 5 * S as i64, &[0, 0, 0, 0], later);
        c.on_peer_gone("b");
        feed(&mut c, "a", 5 * S as i64, &[0, 0, 0, 0], later);
        assert_eq!(c.decide(later), None, "one peer left");
        feed(&mut c, "d", 5 * S as i64, &[0, 0, 0, 0], later);
        assert!(c.decide(later + CHECK_EVERY).is_some(), "two again");
    }

    #[test]
    fn a_node_ahead_moves_back() {
        let now = Instant::now();
        let mut c = ClockSync::new();
        feed(&mut c, "a", -5 * S as i64, &[0, 0, 0, 0], now);
        feed(&mut c, "b", -5 * S as i64, &[0, 0, 0, 0], now);
        feed(&mut c, "d", 0, &[0, 0, 0, 0], now);
        // (−5, −5, 0, 0): the middle value nearer 0 is... −5 and 0: 0 is nearer. Even split: stay.
        assert_eq!(c.decide(now), None);
        feed(&mut c, "e", -5 * S as i64, &[0, 0, 0, 0], now);
        assert_eq!(
            c.decide(now).map(|a| a.by_ns),
            None,
            "looked at once per interval"
        );
        assert_eq!(
            c.decide(now + CHECK_EVERY).map(|a| a.by_ns),
            Some(-5 * S as i64)
        );
    }

    #[test]
    fn frames_that_waited_in_a_queue_do_not_move_the_clock() {
        let now = Instant::now();
        let mut c = ClockSync::new();
        // After a freeze: frames sent 100 ms apart over 0.8 s, read at once.
        let queued: Vec<u64> = (1..=8).map(|i| i * 100).collect();
        feed(&mut c, "a", 0, &queued, now);
        feed(&mut c, "b", 0, &queued, now);
        assert_eq!(c.offset_of("a"), None);
        assert_eq!(c.decide(now), None);
        // Fresh frames replace them; the estimate is back, and right.
        feed(&mut c, "a", 0, &[1; 8], now);
        assert_eq!(c.offset_of("a"), Some(-1_000_000));
    }

    #[test]
    fn garbage_stamps_neither_panic_nor_count() {
        let now = Instant::now();
        let mut c = ClockSync::new();
        c.on_sample("a", 0, 5, now);
        c.on_sample("b", u64::MAX, 1, now);
        c.on_sample("c", 1, u64::MAX, now);
        assert_eq!(c.offset_of("a"), None);
        let _ = c.decide(now);
    }
}
