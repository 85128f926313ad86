//! Leases: a node of a quorum-placed supervisor runs its children only while a majority of the
//! configured members has renewed its lease.
//!
//! Quorum placement alone stops a minority's children when the minority notices that it lost
//! its majority. A node that was frozen (SIGSTOP, a long GC pause, a VM migration) notices
//! nothing until it runs again, and then its children run on, for as long as failure detection
//! takes, beside the copies the majority has already started. A lease closes that window:
//!
//! * **Holder.** Every [`LeaseCore::RENEW_EVERY`] the node asks each other configured member
//!   for a renewal ([`SupPeerMsg::LeaseAsk`]), remembering when it sent each ask. A member's
//!   grant ([`SupPeerMsg::LeaseGrant`]) renews the lease from the *send time* of the ask it
//!   answers, so the holder's view of its lease never runs past the granter's. The lease holds
//!   until the newest time that a majority (this node counting for itself, at every instant)
//!   has renewed it, plus the lease length ([`LeaseCore::valid_until`]). The shell reads it
//!   before every message an entity handles: past it, the message is refused and the entity
//!   stops; the core starts nothing and stops what runs.
//! * **Granter.** A member grants only a node it sees up (a member of its supervisor). When that
//!   node goes down, its children are restarted elsewhere only after the restart delay and after
//!   the last grant this node gave it plus the lease length plus a margin
//!   ([`LeaseCore::expired_for`]), both by this node's monotonic clock.
//!
//! Both sides read monotonic clocks only, which run on while a process is stopped: a frozen
//! node's lease has expired by the time it runs again, whatever it believes about its members.
//! Quorum placement sets the lease to half its restart delay, the other half being the margin
//! for the spread of failure detection across the majority (the restart delay counts from the
//! moment each node sees the member go down).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::{SupEffect, SupPeerMsg};
use crate::Now;

/// Asks kept while their grants are awaited (older ones are forgotten: their grants, if they
/// ever come, renew nothing).
const OUTSTANDING: usize = 64;

/// One node's side of the leases of a quorum-placed supervisor.
#[derive(Debug, Clone)]
pub struct LeaseCore {
    voters: BTreeSet<String>,
    length: Duration,
    seq: u64,
    asked: VecDeque<(u64, Instant)>,
    last_ask: Option<Instant>,
    /// Each voter's newest renewal (the send time of the ask it granted).
    renewed: BTreeMap<String, Instant>,
    /// When this node last granted each requester.
    granted: BTreeMap<String, Instant>,
}

impl LeaseCore {
    /// How often the holder asks for renewals (a quarter of the lease, at most this).
    pub const RENEW_EVERY: Duration = Duration::from_millis(250);

    /// The lease of a node among `voters` (the quorum's configured members), `length` long.
    pub fn new(voters: BTreeSet<String>, length: Duration) -> Self {
        Self {
            voters,
            length,
            seq: 0,
            asked: VecDeque::new(),
            last_ask: None,
            renewed: BTreeMap::new(),
            granted: BTreeMap::new(),
        }
    }

    /// The lease's length.
    pub fn length(&self) -> Duration {
        self.length
    }

    fn renew_every(&self) -> Duration {
        (self.length / 4).min(Self::RENEW_EVERY)
    }

    /// Asks every other voter for a renewal, when one is due.
    pub(super) fn tick(&mut self, me: &str, now: Instant, out: &mut Vec<SupEffect>) {
        let due = self
            .last_ask
            .is_none_or(|t| now.saturating_duration_since(t) >= self.renew_every());
        if !due {
            return;
        }
        self.last_ask = Some(now);
        self.seq += 1;
        self.asked.push_back((self.seq, now));
        while self.asked.len() > OUTSTANDING {
            self.asked.pop_front();
        }
        for v in self.voters.iter().filter(|v| *v != me) {
            out.push(SupEffect::Send(
                v.clone(),
                SupPeerMsg::LeaseAsk {
                    from: me.to_owned(),
                    seq: self.seq,
                },
            ));
        }
    }

    /// `from` asks for a renewal; `up`: this node sees it as a member. The grant, if any.
    pub(super) fn on_ask(
        &mut self,
        me: &str,
        from: String,
        seq: u64,
        up: bool,
        now: Instant,
    ) -> Option<SupEffect> {
        if !up || !self.voters.contains(me) {
            return None;
        }
        self.granted.insert(from.clone(), now);
        Some(SupEffect::Send(
            from,
            SupPeerMsg::LeaseGrant {
                from: me.to_owned(),
                seq,
            },
        ))
    }

    /// `from` granted the ask numbered `seq`.
    pub(super) fn on_grant(&mut self, from: String, seq: u64) {
        if !self.voters.contains(&from) {
            return;
        }
        let Some(sent) = self.asked.iter().find(|(s, _)| *s == seq).map(|(_, t)| *t) else {
            return;
        };
        let r = self.renewed.entry(from).or_insert(sent);
        *r = (*r).max(sent);
    }

    /// A member went down: its renewals no longer count.
    pub(super) fn member_down(&mut self, node: &str) {
        self.renewed.remove(node);
    }

    /// Until when this node holds its lease (`None`: it does not).
    pub fn valid_until(&self, me: &str, now: Instant) -> Option<Instant> {
        let mut times: Vec<Instant> = self
            .renewed
            .iter()
            .filter(|(v, _)| *v != me && self.voters.contains(*v))
            .map(|(_, t)| *t)
            .collect();
        if self.voters.contains(me) {
            times.push(now);
        }
        times.sort_unstable_by(|a, b| b.cmp(a));
        let majority = self.voters.len() / 2 + 1;
        times.get(majority - 1).map(|t| *t + self.length)
    }

    /// Whether this node holds its lease now.
    pub fn is_valid(&self, me: &str, now: Instant) -> bool {
        self.valid_until(me, now).is_some_and(|t| now < t)
    }

    /// When the lease this node last granted `node` has expired, plus a margin of the same
    /// length: before then, `node` may still run its children.
    pub fn expired_for(&self, node: &str) -> Option<Instant> {
        self.granted.get(node).map(|t| *t + self.length * 2)
    }
}

impl super::SupervisorCore {
    /// Whether this node may run children now: it holds its lease, or needs none.
    pub fn leased(&self, now: Now) -> bool {
        self.lease
            .as_ref()
            .is_none_or(|l| l.is_valid(&self.me, now.mono))
    }

    /// Until when this node's children may handle messages: `None` without a lease (always);
    /// an instant not after `now` when this node does not hold its lease. The shell checks it
    /// before each message an entity handles.
    pub fn fence(&self, now: Now) -> Option<Instant> {
        let lease = self.lease.as_ref()?;
        Some(lease.valid_until(&self.me, now.mono).unwrap_or(now.mono))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn voters() -> BTreeSet<String> {
        ["a", "b", "c"].into_iter().map(String::from).collect()
    }

    #[test]
    fn a_lease_runs_from_the_ask_a_majority_granted_and_lapses_without_renewals() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut a = LeaseCore::new(voters(), second);
        assert!(!a.is_valid("a", t0), "no grant yet: no lease");
        let mut out = Vec::new();
        a.tick("a", t0, &mut out);
        assert_eq!(out.len(), 2, "one ask to each other voter: {out:?}");
        // b's grant arrives late: the lease still counts from the ask.
        let mut b = LeaseCore::new(voters(), second);
        let grant = b.on_ask("b", "a".into(), 1, true, t0 + second / 2);
        assert!(grant.is_some());
        a.on_grant("b".into(), 1);
        assert_eq!(a.valid_until("a", t0 + second / 2), Some(t0 + second));
        assert!(a.is_valid("a", t0 + second / 2));
        assert!(!a.is_valid("a", t0 + second), "lapsed: no renewal since");
        // The granter holds the restart of a's children until its grant has surely lapsed.
        assert_eq!(b.expired_for("a"), Some(t0 + second / 2 + second * 2));
        // A grant of an ask never sent, and a grant from a non-voter, renew nothing.
        a.on_grant("c".into(), 99);
        a.on_grant("x".into(), 1);
        assert_eq!(a.valid_until("a", t0 + second / 2), Some(t0 + second));
        // A member that does not see the asker up does not grant.
        assert!(b.on_ask("b", "a".into(), 2, false, t0).is_none());
        // A voter that goes down no longer counts.
        a.member_down("b");
        assert!(!a.is_valid("a", t0 + second / 2));
    }
}
