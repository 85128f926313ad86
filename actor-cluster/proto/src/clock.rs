//! Clock agreement: each probe frame carries its sender's wall clock; this core bounds every
//! peer's offset from them and, when a majority of the cluster's bounds agree that this node's
//! clock is off, says by how much to correct it (the Berkeley algorithm's median, over probes
//! the cluster sends anyway).
//!
//! Everything is measured against this node's *system* clock (the machine's, before any
//! correction), so a correction never changes what was already measured.
//!
//! * Every frame gives a **lower bound** on its sender's offset: `their stamp − this node's
//!   clock when it arrived` is the true offset minus the frame's delay, which is never
//!   negative. A peer's lower bound is the *largest* of its last [`SAMPLES`] (the least
//!   delayed frame, as in Cristian's algorithm), once there are [`MIN_SAMPLES`] and they lie
//!   within [`MAX_SPREAD_NS`] of each other (frames that waited in a queue and arrive in a
//!   burst do not count).
//! * An ack of this node's ping also gives an **upper bound**: `their stamp − this node's clock
//!   when the ping left`, as the peer stamped the ack after the ping left ([`ClockSync::on_ping_sent`]
//!   records when). A peer's upper bound is the smallest of its last [`SAMPLES`], under the
//!   same agreement rule.
//! * The clock moves **forward** only by the median of the lower bounds (this node counting
//!   as 0), and **back** only by the median of the upper bounds (a peer without one counting as
//!   unbounded), when that median exceeds [`THRESHOLD_NS`]; with at least two peers (with one,
//!   nobody can tell whose clock is wrong); for an even count, the middle value nearer to 0.
//!   Bounds hold whatever the delays, so a node never moves past the median of its peers' real
//!   clocks: a loaded machine whose frames all wait in queues widens the bounds and moves
//!   nothing (estimates from one-way delays alone walked a saturated 100-node cluster's clocks
//!   back by 50 s, each node following peers that had followed it). A node 5 s behind in a
//!   cluster of three sees two peers at least 5 s ahead and moves forward; a node 5 s ahead
//!   sees two peers at most 5 s behind and moves back; the others stay.
//! * The next correction waits [`MIN_INTERVAL`].
//!
//! The hybrid logical clock keeps stamps monotonic through a correction in either direction.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Samples kept per peer, of each bound.
pub const SAMPLES: usize = 8;
/// Lower-bound samples a peer's bounds need.
pub const MIN_SAMPLES: usize = 4;
/// The widest spread of a peer's samples that still gives a bound.
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
/// Pings remembered per peer for their acks.
const PINGS: usize = 8;

#[derive(Debug, Clone, Default)]
struct Peer {
    /// Lower-bound samples (their stamp − this node's system clock on arrival), ns.
    lows: VecDeque<i64>,
    /// Upper-bound samples (an ack's stamp − this node's system clock when its ping left), ns.
    highs: VecDeque<i64>,
    /// Pings sent to this peer and not yet acked: `(seq, system clock when sent)`.
    pings: VecDeque<(u64, u64)>,
    last: Option<Instant>,
}

fn push(q: &mut VecDeque<i64>, v: i64) {
    if q.len() >= SAMPLES {
        q.pop_front();
    }
    q.push_back(v);
}

/// The samples' agreed extreme (`max` for lower bounds, `min` for upper ones), when at least
/// `min` of them lie within [`MAX_SPREAD_NS`]: frames that waited in a queue (a frozen sender,
/// a stalled reader, a burst after a partition) arrive together with offsets as far apart as
/// their send times, and a peer that corrected its own clock leaves samples from before.
fn agreed(q: &VecDeque<i64>, min: usize, pick: fn(i64, i64) -> i64) -> Option<i64> {
    let hi = q.iter().copied().max()?;
    let lo = q.iter().copied().min()?;
    (q.len() >= min && hi.saturating_sub(lo) < MAX_SPREAD_NS).then(|| pick(lo, hi))
}

impl Peer {
    /// The bounds on this peer's offset from the system clock: `(lower, upper)`.
    fn bounds(&self) -> Option<(i64, Option<i64>)> {
        let low = agreed(&self.lows, MIN_SAMPLES, |_, hi| hi)?;
        let high = agreed(&self.highs, 1, |lo, _| lo);
        // Bounds that cross: the peer's clock moved while they were taken.
        match high {
            Some(h) if h < low => None,
            _ => Some((low, high)),
        }
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

/// The offset bounds of one node's peers.
#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    peers: BTreeMap<String, Peer>,
    correction_ns: i64,
    last_adjust: Option<Instant>,
    last_check: Option<Instant>,
}

/// The median of `v` (sorted here); for an even count, the middle value nearer to 0.
fn median(v: &mut [i64]) -> i64 {
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        return v[n / 2];
    }
    let (a, b) = (v[n / 2 - 1], v[n / 2]);
    if a.unsigned_abs() <= b.unsigned_abs() {
        a
    } else {
        b
    }
}

fn diff(a: u64, b: u64) -> i64 {
    (i128::from(a) - i128::from(b)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
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

    /// This node sent ping `seq` to `peer` when its system clock read `system_ns`: the ack
    /// bounds the peer's offset from above.
    pub fn on_ping_sent(&mut self, peer: &str, seq: u64, system_ns: u64) {
        let p = self.peers.entry(peer.to_owned()).or_default();
        if p.pings.len() >= PINGS {
            p.pings.pop_front();
        }
        p.pings.push_back((seq, system_ns));
    }

    /// A frame from `peer` stamped `theirs_ns` (its wall clock) arrived when this node's system
    /// clock read `system_ns`; `ack_of` is the ping it acks, if it is an ack. A zero stamp (a
    /// sender that does not stamp) is ignored.
    pub fn on_sample(
        &mut self,
        peer: &str,
        theirs_ns: u64,
        system_ns: u64,
        ack_of: Option<u64>,
        now: Instant,
    ) {
        if theirs_ns == 0 || system_ns == 0 {
            return;
        }
        let p = self.peers.entry(peer.to_owned()).or_default();
        push(&mut p.lows, diff(theirs_ns, system_ns));
        if let Some(seq) = ack_of {
            if let Some(i) = p.pings.iter().position(|(s, _)| *s == seq) {
                // The earliest ping of that number: a member asked again repeats its ping's
                // number, and an ack may answer any of them.
                let (_, sent) = p.pings[i];
                p.pings.drain(..=i);
                p.pings.retain(|(s, _)| *s != seq);
                if sent <= system_ns {
                    push(&mut p.highs, diff(theirs_ns, sent));
                }
            }
        }
        p.last = Some(now);
    }

    /// `peer` is gone (down or left): its estimate no longer counts.
    pub fn on_peer_gone(&mut self, peer: &str) {
        self.peers.remove(peer);
    }

    /// The current estimate of `peer`'s offset (ns; positive: its clock is ahead of this node's
    /// corrected one): the middle of its bounds, or its lower bound while it has no upper one.
    pub fn offset_of(&self, peer: &str) -> Option<i64> {
        let (low, high) = self.peers.get(peer)?.bounds()?;
        let mid = match high {
            Some(h) => low + (h - low) / 2,
            None => low,
        };
        Some(mid.saturating_sub(self.correction_ns))
    }

    /// The fresh estimates, by peer name.
    pub fn offsets(&self, now: Instant) -> Vec<(String, i64)> {
        self.peers
            .iter()
            .filter(|(_, p)| Self::fresh(p, now))
            .filter_map(|(n, _)| self.offset_of(n).map(|o| (n.clone(), o)))
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
        let c = self.correction_ns;
        // Bounds on each fresh peer's offset from this node's corrected clock.
        let bounds: Vec<(i64, i64)> = self
            .peers
            .values()
            .filter(|p| Self::fresh(p, now))
            .filter_map(Peer::bounds)
            .map(|(l, h)| {
                (
                    l.saturating_sub(c),
                    h.map_or(i64::MAX, |h| h.saturating_sub(c)),
                )
            })
            .collect();
        let peers = bounds.len();
        if peers < 2 {
            return None;
        }
        let mut lows: Vec<i64> = bounds.iter().map(|b| b.0).chain([0]).collect();
        let mut highs: Vec<i64> = bounds.iter().map(|b| b.1).chain([0]).collect();
        let forward = median(&mut lows);
        let back = median(&mut highs);
        let by = if forward >= THRESHOLD_NS {
            forward
        } else if back <= -THRESHOLD_NS {
            back
        } else {
            return None;
        };
        if c.saturating_add(by).abs() > MAX_CORRECTION_NS {
            return None;
        }
        self.correction_ns = c.saturating_add(by);
        self.last_adjust = Some(now);
        Some(Adjust {
            by_ns: by,
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
    const MINE: u64 = 1_000 * S;

    /// One-way frames from `peer`, whose clock is `offset_ns` ahead, each delivered `d` ms late.
    fn feed(c: &mut ClockSync, peer: &str, offset_ns: i64, delays_ms: &[u64], now: Instant) {
        for d in delays_ms {
            let theirs = (MINE as i64 + offset_ns) as u64;
            c.on_sample(peer, theirs, MINE + d * 1_000_000, None, now);
        }
    }

    /// Pings to `peer` answered by acks, each ping taking `out` ms and its ack `back` ms.
    fn round_trips(c: &mut ClockSync, peer: &str, offset_ns: i64, out: u64, back: u64, n: u64) {
        let now = Instant::now();
        for seq in 0..n {
            let sent = MINE + seq * 100_000_000;
            c.on_ping_sent(peer, seq, sent);
            let theirs = (sent as i64 + offset_ns) as u64 + out * 1_000_000;
            c.on_sample(
                peer,
                theirs,
                sent + (out + back) * 1_000_000,
                Some(seq),
                now,
            );
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
        assert_eq!(behind.offset_of("a"), Some(1_000_000));

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
    fn a_node_ahead_moves_back_only_on_upper_bounds() {
        let now = Instant::now();
        let mut c = ClockSync::new();
        // One-way frames alone cannot tell a peer behind from a delayed frame.
        feed(&mut c, "a", -5 * S as i64, &[0, 0, 0, 0], now);
        feed(&mut c, "b", -5 * S as i64, &[0, 0, 0, 0], now);
        assert_eq!(c.decide(now), None);
        // Round trips bound them from above: each is at least 5 s - 1 ms behind.
        round_trips(&mut c, "a", -5 * S as i64, 1, 1, 4);
        round_trips(&mut c, "b", -5 * S as i64, 1, 1, 4);
        round_trips(&mut c, "d", 0, 1, 1, 4);
        feed(&mut c, "d", 0, &[0, 0, 0, 0], now);
        // Upper bounds (-5 s + 1 ms, -5 s + 1 ms, 1 ms, and this node's 0): the middle value
        // nearer 0 of -5 s and 0 is 0. Even split: stay.
        let t = now + CHECK_EVERY;
        assert_eq!(c.decide(t), None);
        round_trips(&mut c, "e", -5 * S as i64, 1, 1, 4);
        feed(&mut c, "e", -5 * S as i64, &[0, 0, 0, 0], now);
        assert_eq!(c.decide(t), None, "looked at once per interval");
        let back = -5 * S as i64 + 1_000_000;
        assert_eq!(c.decide(t + CHECK_EVERY).map(|a| a.by_ns), Some(back));
        // Measured against the system clock, so what was measured still holds afterwards.
        assert_eq!(c.offset_of("d"), Some(-back + 500_000));
    }

    #[test]
    fn delays_everywhere_move_no_clock() {
        // A saturated machine: every frame and every ack waits 300-900 ms, on every node.
        // One-way estimates read every peer as behind; bounds say nothing.
        let now = Instant::now();
        let mut c = ClockSync::new();
        for (i, p) in ["a", "b", "c", "d"].iter().enumerate() {
            let d = 300 + 100 * i as u64;
            feed(&mut c, p, 0, &[d, d + 50, d + 20, d + 10], now);
            round_trips(&mut c, p, 0, d, d, 4);
        }
        assert_eq!(c.decide(now), None);
        assert!(
            c.offset_of("a").unwrap().abs() < 1_000_000,
            "the middle of its bounds"
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
    fn an_ack_of_a_repeated_ping_is_bounded_by_its_first_send() {
        let now = Instant::now();
        let mut c = ClockSync::new();
        feed(&mut c, "a", 0, &[0, 0, 0, 0], now);
        // Ping 7 sent at 0 and again at 100 ms; the peer stamps its ack at 50 ms (the answer
        // to the first); a later ack of 7 counts nothing.
        c.on_ping_sent("a", 7, MINE);
        c.on_ping_sent("a", 7, MINE + 100_000_000);
        c.on_sample("a", MINE + 50_000_000, MINE + 150_000_000, Some(7), now);
        c.on_sample("a", MINE + 60_000_000, MINE + 160_000_000, Some(7), now);
        // Bounds [0, 50 ms] (not 50 - 100 = -50 ms, which would claim the peer is behind).
        assert_eq!(c.offset_of("a"), Some(25_000_000));
    }

    #[test]
    fn garbage_stamps_and_unknown_acks_neither_panic_nor_count() {
        let now = Instant::now();
        let mut c = ClockSync::new();
        c.on_sample("a", 0, 5, None, now);
        c.on_sample("b", u64::MAX, 1, Some(3), now);
        c.on_sample("c", 1, u64::MAX, None, now);
        c.on_ping_sent("d", 1, u64::MAX);
        c.on_sample("d", 5, 1, Some(1), now);
        assert_eq!(c.offset_of("a"), None);
        let _ = c.decide(now);
    }
}
