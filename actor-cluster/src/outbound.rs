//! Per-peer outbound accounting.
//!
//! [`Outbound`] is the one place that counts what a peer's connection owes the socket: the
//! mux writer reports ractor frames as they are written ([`Outbound::wrote`]), bounded sends
//! are admitted or refused against the limit ([`Outbound::admit`]), and senders waiting for
//! room are woken. Its counters are private: nothing else adds to them.
//! The node's session table ([`crate::sessions`]) finds a peer's connection, and so its
//! accounting.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// A peer's outbound queue, as [`crate::Remote::outbound`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundStats {
    /// The peer node.
    pub peer: String,
    /// Messages sent through bounded sends, not yet written to the socket.
    pub queued: u64,
    /// The bound.
    pub limit: u64,
    /// Bounded sends refused because the queue was full.
    pub dropped: u64,
    /// Messages sent through bounded sends.
    pub sent: u64,
}

/// What one connection owes the socket, and the bound on it.
#[derive(Debug)]
pub(crate) struct Outbound {
    peer: String,
    /// ractor frames written to the socket.
    frames_out: AtomicU64,
    /// Messages admitted by bounded sends (reset up to `frames_out` when seen empty).
    submitted: AtomicU64,
    /// Bounded sends admitted.
    sent: AtomicU64,
    /// Bounded sends refused because the queue was full.
    dropped: AtomicU64,
    /// Most messages queued towards this peer before bounded sends are refused.
    limit: AtomicU64,
    /// Wakes senders waiting for room (and, when the connection ends, for its end).
    drained: Notify,
    /// The connection's writer ended.
    closed: AtomicBool,
}

impl Outbound {
    pub(crate) fn new(peer: String) -> Self {
        Self {
            peer,
            frames_out: AtomicU64::new(0),
            submitted: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
            drained: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// The peer's node name.
    pub(crate) fn peer(&self) -> &str {
        &self.peer
    }

    pub(crate) fn set_limit(&self, limit: u64) {
        self.limit.store(limit.max(1), Ordering::Relaxed);
    }

    /// The writer put `frames` ractor frames on the socket.
    pub(crate) fn wrote(&self, frames: u64) {
        if frames > 0 {
            self.frames_out.fetch_add(frames, Ordering::AcqRel);
            self.drained.notify_waiters();
        }
    }

    /// The connection ended: wake every waiting sender so it notices.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.drained.notify_waiters();
    }

    /// Whether the connection's writer ended (nothing more reaches the socket).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A future woken the next time frames reach the socket (or the connection ends). Enable
    /// it before checking for room, so a wake between the check and the wait is not lost.
    pub(crate) fn drained(&self) -> Notified<'_> {
        self.drained.notified()
    }

    /// Messages sent through bounded sends that have not reached the socket yet. Frames
    /// ractor sends on its own (pings, process groups) also count as written, so the
    /// estimate can run low by those; it never drifts, as it resets whenever the queue is
    /// seen empty.
    pub(crate) fn queued(&self) -> u64 {
        let out = self.frames_out.load(Ordering::Acquire);
        let sub = self.submitted.load(Ordering::Acquire);
        if out >= sub {
            self.submitted.fetch_max(out, Ordering::AcqRel);
            0
        } else {
            sub - out
        }
    }

    /// Admits one bounded send, or returns how many messages are queued when the queue is
    /// full (nothing is counted then: see [`Outbound::refuse`]).
    pub(crate) fn admit(&self) -> Result<(), u64> {
        let queued = self.queued();
        if queued >= self.limit.load(Ordering::Relaxed) {
            return Err(queued);
        }
        self.submitted.fetch_add(1, Ordering::AcqRel);
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Counts a bounded send refused because the queue was full.
    pub(crate) fn refuse(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cluster_casts_dropped_total").increment(1);
    }

    pub(crate) fn stats(&self) -> OutboundStats {
        OutboundStats {
            peer: self.peer.clone(),
            queued: self.queued(),
            limit: self.limit.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
        }
    }

    /// ractor frames written so far.
    #[cfg(test)]
    pub(crate) fn frames_out(&self) -> u64 {
        self.frames_out.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_estimate_resets_when_ractor_wrote_frames_of_its_own() {
        let o = Outbound::new("p".into());
        // ractor's handshake frames were written before any bounded send.
        o.wrote(5);
        assert_eq!(o.queued(), 0);
        for _ in 0..10 {
            o.admit().unwrap();
        }
        assert_eq!(o.queued(), 10);
        o.wrote(4);
        assert_eq!(o.queued(), 6);
        // More frames written than sent (pings while the queue drained): empty, not negative,
        // and later sends count from there.
        o.wrote(9);
        assert_eq!(o.queued(), 0);
        for _ in 0..3 {
            o.admit().unwrap();
        }
        assert_eq!(o.queued(), 3);
    }

    #[test]
    fn a_full_queue_refuses_until_frames_are_written() {
        let o = Outbound::new("p".into());
        o.set_limit(2);
        assert_eq!(o.admit(), Ok(()));
        assert_eq!(o.admit(), Ok(()));
        assert_eq!(o.admit(), Err(2));
        o.refuse();
        o.wrote(1);
        assert_eq!(o.admit(), Ok(()));
        let s = o.stats();
        assert_eq!((s.queued, s.limit, s.sent, s.dropped), (2, 2, 3, 1));
    }
}
