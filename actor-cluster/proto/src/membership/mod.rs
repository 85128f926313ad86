//! The sans-IO membership state machine.
//!
//! Fed by session events (a peer's session became ready or closed), probe frames from peers,
//! leave notices, discovery results, dial outcomes and clock ticks. It answers with
//! [`Action`]s: dial an address, close the sessions of a peer, send a probe frame, emit a
//! [`MemberEvent`]. It owns no clock, socket or random source: the caller passes `now` and, to
//! [`Membership::tick`], one random sample.
//!
//! # Failure detection
//!
//! Every node keeps a connection to every member (full mesh). A closed connection is a down
//! member at once (a killed process). A frozen process or a cut link keeps its connections
//! open; it is found by probes, in the manner of SWIM, so that an idle cluster costs a constant
//! per node instead of a heartbeat on every link:
//!
//! * every tick (`heartbeat_interval`) a node pings **one** member, the next in a shuffled
//!   round-robin order, and expects an ack;
//! * no answer for `suspect_after`: the member is suspect, and the node tells every member
//!   ([`Probe::Suspect`]); each of them pings the suspect itself at once;
//! * no answer to a node's own ping for `down_after` (or `down_after - suspect_after` after a
//!   rumor): the member is down **for that node**, which closes its connections and redials.
//!
//! A node never believes another's word that a member is down: every node decides from its
//! own probe, so a node with a broken link (or on the wrong side of a partition) cannot take a
//! healthy member down elsewhere, and a frozen member is seen down everywhere about
//! `down_after` after the first probe it failed. Any frame from a member is proof of life.
//!
//! Pings and acks carry a digest of the sender's member set (itself and the members it has
//! sessions with). When it differs from this node's, the two exchange their member lists
//! ([`Probe::Members`], at most once per [`MEMBERS_EVERY`] per peer, and only from a node whose
//! own set has been stable for [`MEMBERS_STABLE`]), so a node learns of the members it has no
//! connection to and dials them. A new session starts with a ping each way.
//!
//! # Driving it
//!
//! * [`Membership::on_discovered`] with the seed addresses at start, and with what discovery
//!   finds every `discovery_interval`.
//! * [`Membership::tick`] every `heartbeat_interval`, with a fresh random sample.
//! * [`Membership::on_probe`] for every probe frame received (on the control lane, ahead of
//!   queued data, or a busy node is declared down), naming the connection's peer.
//! * [`Membership::on_session_up`] when a connection to a peer is ready (authenticated; its
//!   process groups visible), [`Membership::on_session_down`] once for every such connection
//!   that closes, [`Membership::on_dial_failed`] for a dial that ended without a session, and
//!   [`Membership::on_leave`] when a peer announces that it leaves.
//!
//! # Actions
//!
//! * [`Action::Dial`]: open a connection to the address (expecting that name, if given) and
//!   report the outcome through `on_session_up` or `on_dial_failed`; the machine does not dial
//!   an address again while a dial is in flight.
//! * [`Action::Close`]: close every connection to that peer (each then reports
//!   `on_session_down`).
//! * [`Action::Send`] and [`Action::Broadcast`]: queue a probe frame on the control lane of
//!   that peer's connection, or of every connected member's (a frame that finds its queue full
//!   may be dropped: the protocol tolerates loss).
//! * [`Action::Emit`]: tell subscribers (the registry, the supervisor, the flag cache).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use self::types::{
    Action, DownReason, MemberEvent, MemberInfo, MemberState, Probe, Timings, CHURN_EXTENSIONS,
    DIAL_WARN_AFTER, DIAL_WARN_EVERY, MEMBERS_EVERY, MEMBERS_STABLE,
};
pub use crate::identity::NodeIdentity;

mod probe;
mod types;

#[derive(Debug, Clone)]
struct Member {
    node: NodeIdentity,
    state: MemberState,
    sessions: usize,
    /// This node's unanswered ping, if any.
    probe: Option<Pending>,
    /// When this node last sent the member its member list.
    members_sent: Option<Instant>,
}

/// An unanswered ping.
#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u64,
    /// When it is suspect (`None`: already, or by a rumor).
    suspect_at: Option<Instant>,
    /// When it is down.
    down_at: Instant,
    /// How many times the deadline was pushed back because the member set was changing.
    extended: u8,
}

#[derive(Debug, Clone)]
struct Target {
    name: Option<String>,
    in_flight: bool,
    next: Instant,
    backoff: Duration,
    /// Failed dials in a row.
    failures: u32,
    /// A session with the member at this address is up (nothing to dial).
    up: bool,
}

/// The membership state machine of one node.
#[derive(Debug)]
pub struct Membership {
    me: NodeIdentity,
    timings: Timings,
    members: BTreeMap<String, Member>,
    targets: BTreeMap<SocketAddr, Target>,
    /// The round-robin order of pings, and the next position in it.
    order: Vec<String>,
    cursor: usize,
    seq: u64,
    /// [`Membership::digest`], cached (`None`: the member set changed since).
    digest: Option<u64>,
    /// When the member set last changed.
    changed_at: Option<Instant>,
    /// The previous tick.
    last_tick: Option<Instant>,
}

impl Membership {
    /// A node that knows nobody yet.
    pub fn new(me: NodeIdentity, timings: Timings) -> Self {
        Self {
            me,
            timings,
            members: BTreeMap::new(),
            targets: BTreeMap::new(),
            order: Vec::new(),
            cursor: 0,
            seq: 0,
            digest: None,
            changed_at: None,
            last_tick: None,
        }
    }

    /// This node.
    pub fn me(&self) -> &NodeIdentity {
        &self.me
    }

    /// The timings in force.
    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Every member ever seen this run, with its state (this node excluded).
    pub fn members(&self) -> Vec<MemberInfo> {
        self.members
            .values()
            .map(|m| MemberInfo {
                node: m.node.clone(),
                state: m.state,
            })
            .collect()
    }

    /// Names of the members that are up (or suspect: still connected).
    pub fn up_members(&self) -> Vec<NodeIdentity> {
        self.members
            .values()
            .filter(|m| matches!(m.state, MemberState::Up | MemberState::Suspect))
            .map(|m| m.node.clone())
            .collect()
    }

    /// The state of the member named `name`, if it was ever seen.
    pub fn member_state(&self, name: &str) -> Option<MemberState> {
        self.members.get(name).map(|m| m.state)
    }

    /// How many members are up (or suspect), without copying them.
    pub fn up_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| matches!(m.state, MemberState::Up | MemberState::Suspect))
            .count()
    }

    /// What this node gossips: itself and the members it has sessions with.
    pub fn gossip(&self) -> Vec<NodeIdentity> {
        let mut v = vec![self.me.clone()];
        v.extend(self.up_members());
        v
    }

    /// Addresses from configuration or discovery.
    pub fn on_discovered(&mut self, addrs: &[SocketAddr], now: Instant) -> Vec<Action> {
        for addr in addrs {
            if *addr == self.me.addr {
                continue;
            }
            self.targets.entry(*addr).or_insert(Target {
                name: None,
                in_flight: false,
                next: now,
                backoff: self.timings.reconnect_initial,
                failures: 0,
                up: false,
            });
        }
        self.dial_due(now)
    }

    /// A dial finished without a session (refused, timed out, wrong peer).
    pub fn on_dial_failed(&mut self, addr: SocketAddr, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(t) = self.targets.get_mut(&addr) {
            t.in_flight = false;
            t.next = now + t.backoff;
            t.backoff = (t.backoff * 2).min(self.timings.reconnect_max);
            t.failures = t.failures.saturating_add(1);
            if t.failures == DIAL_WARN_AFTER
                || (t.failures > DIAL_WARN_AFTER
                    && (t.failures - DIAL_WARN_AFTER) % DIAL_WARN_EVERY == 0)
            {
                out.push(Action::Unreachable {
                    addr,
                    name: t.name.clone(),
                    failures: t.failures,
                });
            }
        }
        out
    }

    /// A dial reached a node that turned out to be this node: never dial that address again.
    pub fn on_dialed_self(&mut self, addr: SocketAddr) {
        self.targets.remove(&addr);
    }

    /// A session with `peer` is ready (authenticated, state exchanged).
    pub fn on_session_up(&mut self, peer: NodeIdentity, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if peer.name == self.me.name {
            return out;
        }
        self.digest = None;
        self.changed_at = Some(now);
        if let Some(t) = self.targets.get_mut(&peer.addr) {
            t.in_flight = false;
            t.name = Some(peer.name.clone());
            t.backoff = self.timings.reconnect_initial;
            t.failures = 0;
        } else {
            self.targets.insert(
                peer.addr,
                Target {
                    name: Some(peer.name.clone()),
                    in_flight: false,
                    next: now,
                    backoff: self.timings.reconnect_initial,
                    failures: 0,
                    up: false,
                },
            );
        }
        match self.members.get_mut(&peer.name) {
            Some(m) if peer.incarnation < m.node.incarnation => {
                // A stale incarnation: refuse it.
                out.push(Action::Close(peer.name.clone()));
                return out;
            }
            Some(m) => {
                if peer.incarnation > m.node.incarnation {
                    if matches!(m.state, MemberState::Up | MemberState::Suspect) {
                        out.push(Action::Emit(MemberEvent::MemberDown {
                            node: m.node.clone(),
                            reason: DownReason::Restarted,
                        }));
                    }
                    if m.node.addr != peer.addr {
                        self.targets.remove(&m.node.addr);
                    }
                    m.node = peer.clone();
                    m.sessions = 0;
                    m.state = MemberState::Down;
                }
                m.sessions += 1;
                m.probe = None;
                if !matches!(m.state, MemberState::Up | MemberState::Suspect) {
                    m.state = MemberState::Up;
                    out.push(Action::Emit(MemberEvent::MemberUp(m.node.clone())));
                }
            }
            None => {
                self.members.insert(
                    peer.name.clone(),
                    Member {
                        node: peer.clone(),
                        state: MemberState::Up,
                        sessions: 1,
                        probe: None,
                        members_sent: None,
                    },
                );
                out.push(Action::Emit(MemberEvent::MemberUp(peer.clone())));
            }
        }
        if let Some(t) = self.targets.get_mut(&peer.addr) {
            t.up = true;
        }
        // A new session starts with a ping: its digest tells either side whether to send the
        // other its member list.
        self.ping(&peer.name, now, &mut out);
        out
    }

    /// A session with the peer named `name` closed.
    pub fn on_session_down(&mut self, name: &str, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(m) = self.members.get_mut(name) else {
            return out;
        };
        m.sessions = m.sessions.saturating_sub(1);
        if m.sessions == 0 && matches!(m.state, MemberState::Up | MemberState::Suspect) {
            m.state = MemberState::Down;
            m.probe = None;
            self.digest = None;
            self.changed_at = Some(now);
            out.push(Action::Emit(MemberEvent::MemberDown {
                node: m.node.clone(),
                reason: DownReason::ConnectionClosed,
            }));
        }
        let (addr, name, gone) = (m.node.addr, m.node.name.clone(), m.sessions == 0);
        let next = now + self.courtesy(&name);
        if let Some(t) = self.targets.get_mut(&addr) {
            t.next = t.next.max(next);
            t.up &= !gone;
        }
        out
    }

    /// Learns of the members in a peer's list: targets to dial.
    fn merge(&mut self, gossip: &[NodeIdentity], now: Instant) {
        for node in gossip {
            if node.name == self.me.name {
                continue;
            }
            let known = self.members.get(&node.name);
            let connected = known.is_some_and(|m| m.sessions > 0);
            let newer = known.is_none_or(|m| node.incarnation > m.node.incarnation);
            let left = known.is_some_and(|m| {
                m.state == MemberState::Left && m.node.incarnation >= node.incarnation
            });
            if connected && !newer || left {
                continue;
            }
            let next = now + self.courtesy(&node.name);
            let backoff = self.timings.reconnect_initial;
            let target = self.targets.entry(node.addr).or_insert(Target {
                name: Some(node.name.clone()),
                in_flight: false,
                next,
                backoff,
                failures: 0,
                up: false,
            });
            target.name = Some(node.name.clone());
        }
    }

    /// `from` announced that it leaves.
    pub fn on_leave(&mut self, from: &NodeIdentity) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(m) = self.members.get_mut(&from.name) {
            if m.node.incarnation == from.incarnation && m.state != MemberState::Left {
                m.state = MemberState::Left;
                m.probe = None;
                self.digest = None;
                out.push(Action::Emit(MemberEvent::MemberLeft(m.node.clone())));
                self.targets.remove(&m.node.addr);
            }
        }
        out
    }

    /// The delay before this node dials a member it learned of: none if this node's name sorts
    /// after the peer's (it is expected to dial, by Erlang's simultaneous-connect rule, which
    /// ractor_cluster applies too), else one `reconnect_max` period, to let the peer dial first.
    fn courtesy(&self, peer: &str) -> Duration {
        if peer > self.me.name.as_str() {
            self.timings.reconnect_max
        } else {
            Duration::ZERO
        }
    }

    /// Dials every target that is due, not connected and not being dialed.
    fn dial_due(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        // This runs on every tick: a target with a session up is skipped by its flag.
        let due: Vec<SocketAddr> = self
            .targets
            .iter()
            .filter(|(_, t)| !t.in_flight && !t.up && now >= t.next)
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            let Some(t) = self.targets.get_mut(&addr) else {
                continue;
            };
            t.in_flight = true;
            out.push(Action::Dial {
                addr,
                name: t.name.clone(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;
