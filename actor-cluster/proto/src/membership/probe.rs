//! Failure detection and member-list exchange: pings, acks, rumors and the tick (see the
//! module doc of [`super`]).

use std::time::Instant;

use super::{
    Action, DownReason, MemberEvent, MemberState, Membership, Pending, Probe, CHURN_EXTENSIONS,
    MEMBERS_EVERY, MEMBERS_STABLE,
};
use crate::hash::StableHash;
use crate::identity::NodeIdentity;

/// Fisher-Yates with a splitmix64 stream seeded by `sample`.
fn shuffle<T>(v: &mut [T], sample: u64) {
    let mut x = sample;
    let mut next = move || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

impl Membership {
    /// A digest of [`Membership::gossip`]: equal on every node of a formed full mesh.
    pub fn digest(&mut self) -> u64 {
        if let Some(d) = self.digest {
            return d;
        }
        // The members map is in name order: merge this node in at its place, with no copy
        // and no sort (this runs after every change, once per session while a cluster forms).
        let mut h = StableHash::default();
        let mut me_done = false;
        for m in self.members.values() {
            if !matches!(m.state, MemberState::Up | MemberState::Suspect) {
                continue;
            }
            if !me_done && self.me.name < m.node.name {
                h.str(&self.me.name).u64(self.me.incarnation);
                me_done = true;
            }
            h.str(&m.node.name).u64(m.node.incarnation);
        }
        if !me_done {
            h.str(&self.me.name).u64(self.me.incarnation);
        }
        let d = h.finish();
        self.digest = Some(d);
        d
    }

    /// A probe frame from the peer named `from` (the connection's peer).
    pub fn on_probe(&mut self, from: &str, probe: Probe, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let mine = self.digest();
        let Some(m) = self.members.get_mut(from) else {
            return out;
        };
        if m.sessions == 0 || !matches!(m.state, MemberState::Up | MemberState::Suspect) {
            return out;
        }
        // Any frame is proof of life.
        m.probe = None;
        m.state = MemberState::Up;
        let theirs = match probe {
            Probe::Ping { seq, members } => {
                out.push(Action::Send {
                    to: from.to_owned(),
                    probe: Probe::Ack { seq, members: mine },
                });
                Some(members)
            }
            Probe::Ack { members, .. } => Some(members),
            Probe::Suspect(node) => {
                self.on_rumor(&node, now, &mut out);
                None
            }
            Probe::Members(list) => {
                self.merge(&list, now);
                None
            }
        };
        if theirs.is_some_and(|d| d != mine) {
            self.send_members(from, now, &mut out);
        }
        if theirs.is_none() {
            // A member list (or a rumor) may have named someone to dial.
            out.extend(self.dial_due(now));
        }
        out
    }

    fn send_members(&mut self, to: &str, now: Instant, out: &mut Vec<Action>) {
        if self
            .changed_at
            .is_some_and(|t| now.saturating_duration_since(t) < MEMBERS_STABLE)
        {
            return;
        }
        let list = self.gossip();
        let Some(m) = self.members.get_mut(to) else {
            return;
        };
        if m.members_sent
            .is_some_and(|t| now.saturating_duration_since(t) < MEMBERS_EVERY)
        {
            return;
        }
        m.members_sent = Some(now);
        out.push(Action::Send {
            to: to.to_owned(),
            probe: Probe::Members(list),
        });
    }

    /// Another node could not get an answer from `node`: ping it now, and take it down if it
    /// does not answer within what is left of `down_after`.
    fn on_rumor(&mut self, node: &NodeIdentity, now: Instant, out: &mut Vec<Action>) {
        if node.name == self.me.name {
            return;
        }
        let window = self
            .timings
            .down_after
            .saturating_sub(self.timings.suspect_after);
        let mine = self.digest();
        self.seq += 1;
        let seq = self.seq;
        let Some(m) = self.members.get_mut(&node.name) else {
            return;
        };
        if m.node.incarnation != node.incarnation
            || m.sessions == 0
            || m.probe.is_some()
            || !matches!(m.state, MemberState::Up | MemberState::Suspect)
        {
            return;
        }
        m.state = MemberState::Suspect;
        m.probe = Some(Pending {
            seq,
            suspect_at: None,
            down_at: now + window,
            extended: 0,
        });
        out.push(Action::Send {
            to: node.name.clone(),
            probe: Probe::Ping { seq, members: mine },
        });
    }

    /// Periodic work (every `heartbeat_interval`): the deadlines of unanswered pings, the next
    /// ping, due redials. `sample` is a fresh random number (it shuffles the ping order).
    pub fn tick(&mut self, now: Instant, sample: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let mut down = false;
        let mut again = Vec::new();
        // A tick much later than due means this node itself was stalled (a saturated
        // machine, a pause): the answers may be waiting unread, so the stall does not count
        // against the members (Lifeguard's local-health rule, in its simplest form).
        let interval = self.timings.heartbeat_interval;
        if let Some(last) = self.last_tick.replace(now) {
            let gap = now.saturating_duration_since(last);
            if gap > interval * 2 {
                let stalled = gap - interval;
                for p in self.members.values_mut().filter_map(|m| m.probe.as_mut()) {
                    p.down_at += stalled;
                    if let Some(at) = p.suspect_at.as_mut() {
                        *at += stalled;
                    }
                }
            }
        }
        let down_after = self.timings.down_after;
        let churning = self
            .changed_at
            .is_some_and(|t| now.saturating_duration_since(t) < down_after);
        for m in self.members.values_mut() {
            if !matches!(m.state, MemberState::Up | MemberState::Suspect) {
                continue;
            }
            let Some(p) = m.probe.as_mut() else {
                continue;
            };
            if now >= p.down_at && churning && p.extended < CHURN_EXTENSIONS {
                p.extended += 1;
                p.down_at = now + down_after;
            }
            if now >= p.down_at {
                m.state = MemberState::Down;
                m.sessions = 0;
                m.probe = None;
                down = true;
                out.push(Action::Emit(MemberEvent::MemberDown {
                    node: m.node.clone(),
                    reason: DownReason::HeartbeatTimeout,
                }));
                out.push(Action::Close(m.node.name.clone()));
                if let Some(t) = self.targets.get_mut(&m.node.addr) {
                    t.in_flight = false;
                    t.up = false;
                    t.next = now + t.backoff;
                }
                continue;
            }
            if p.suspect_at.is_some_and(|at| now >= at) {
                p.suspect_at = None;
                m.state = MemberState::Suspect;
                out.push(Action::Broadcast(Probe::Suspect(m.node.clone())));
            }
            if m.state == MemberState::Suspect {
                // Asked again every tick: a lost frame does not take a live member down.
                again.push((m.node.name.clone(), p.seq));
            }
        }
        if down {
            self.digest = None;
            self.changed_at = Some(now);
        }
        let mine = self.digest();
        for (to, seq) in again {
            out.push(Action::Send {
                to,
                probe: Probe::Ping { seq, members: mine },
            });
        }
        if let Some(target) = self.next_target(sample) {
            self.ping(&target, now, &mut out);
        }
        out.extend(self.dial_due(now));
        out
    }

    /// Pings `to` (unless a ping to it is in flight), with the usual deadlines.
    pub(super) fn ping(&mut self, to: &str, now: Instant, out: &mut Vec<Action>) {
        let mine = self.digest();
        let (suspect_after, down_after) = (self.timings.suspect_after, self.timings.down_after);
        let Some(m) = self.members.get_mut(to) else {
            return;
        };
        if m.probe.is_some() {
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        m.probe = Some(Pending {
            seq,
            suspect_at: Some(now + suspect_after),
            down_at: now + down_after,
            extended: 0,
        });
        out.push(Action::Send {
            to: to.to_owned(),
            probe: Probe::Ping { seq, members: mine },
        });
    }

    /// The next member to ping: round-robin over the connected members, reshuffled (with
    /// `sample`) once per round; members with a ping in flight are skipped.
    fn next_target(&mut self, sample: u64) -> Option<String> {
        for _ in 0..2 {
            while self.cursor < self.order.len() {
                let name = &self.order[self.cursor];
                self.cursor += 1;
                if self.members.get(name).is_some_and(|m| {
                    m.sessions > 0
                        && m.probe.is_none()
                        && matches!(m.state, MemberState::Up | MemberState::Suspect)
                }) {
                    return Some(name.clone());
                }
            }
            self.order = self
                .members
                .values()
                .filter(|m| {
                    m.sessions > 0 && matches!(m.state, MemberState::Up | MemberState::Suspect)
                })
                .map(|m| m.node.name.clone())
                .collect();
            self.cursor = 0;
            shuffle(&mut self.order, sample);
        }
        None
    }
}
