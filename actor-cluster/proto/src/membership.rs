//! The sans-IO membership state machine.
//!
//! Fed by session events (a peer's session became ready or closed), heartbeats (with the
//! sender's member list as gossip), leave notices, discovery results, dial outcomes and clock
//! ticks. It answers with [`Action`]s: dial an address, close the sessions of a peer, emit a
//! [`MemberEvent`]. It owns no clock, socket or random source: the caller passes `now`.
//!
//! # Driving it
//!
//! * [`Membership::on_discovered`] with the seed addresses at start, and with what discovery
//!   finds every `discovery_interval`.
//! * [`Membership::tick`] every `heartbeat_interval`; at the same time, send a heartbeat
//!   carrying [`Membership::gossip`] on every connection (ahead of queued data, or a busy node
//!   is declared down), and feed each one received to [`Membership::on_heartbeat`].
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
//! * [`Action::Emit`]: tell subscribers (the registry, the supervisor, the flag cache).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use crate::identity::NodeIdentity;

/// A member's state as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberState {
    /// Connected, and heartbeats arrive.
    Up,
    /// Connected, but no heartbeat for longer than `suspect_after`.
    Suspect,
    /// Unreachable: its connection closed or its heartbeats stopped. Reconnection is attempted.
    Down,
    /// Left the cluster gracefully; not reconnected to (unless it connects again).
    Left,
}

/// Why a member was declared down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownReason {
    /// Its last session closed (a crashed process, a reset connection).
    ConnectionClosed,
    /// No heartbeat within `down_after` (a frozen process, a partition).
    HeartbeatTimeout,
    /// It came back with a newer incarnation (it restarted); the old incarnation is down.
    Restarted,
}

/// What subscribers are told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberEvent {
    /// A member is reachable (a new node, or one that came back).
    MemberUp(NodeIdentity),
    /// A member became unreachable.
    MemberDown {
        /// The member.
        node: NodeIdentity,
        /// Why.
        reason: DownReason,
    },
    /// A member left gracefully.
    MemberLeft(NodeIdentity),
}

/// What the membership actor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to this address (the peer's name, if known).
    Dial {
        /// Where.
        addr: SocketAddr,
        /// The name expected there, if known.
        name: Option<String>,
    },
    /// Close every session and connection to this peer.
    Close(String),
    /// Tell subscribers.
    Emit(MemberEvent),
    /// Dials to this address keep failing: tell the operator (a wrong address, nothing
    /// listening, another cookie). Said after [`DIAL_WARN_AFTER`] failures in a row, then every
    /// [`DIAL_WARN_EVERY`].
    Unreachable {
        /// The address.
        addr: SocketAddr,
        /// The name expected there, if known.
        name: Option<String>,
        /// Failed dials in a row.
        failures: u32,
    },
}

/// Failed dials in a row to one address before [`Action::Unreachable`].
pub const DIAL_WARN_AFTER: u32 = 5;

/// After the first [`Action::Unreachable`], how many more failures before the next.
pub const DIAL_WARN_EVERY: u32 = 50;

/// Failure-detection and reconnection timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How often a heartbeat is sent to every member.
    pub heartbeat_interval: Duration,
    /// No heartbeat for this long: the member is suspect.
    pub suspect_after: Duration,
    /// No heartbeat for this long: the member is down and its sessions are closed.
    pub down_after: Duration,
    /// First delay before redialing an address that failed.
    pub reconnect_initial: Duration,
    /// Longest delay between redials.
    pub reconnect_max: Duration,
    /// How long a dial (TCP connect and the identity exchange) may take.
    pub dial_timeout: Duration,
    /// How often discovery is polled.
    pub discovery_interval: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(100),
            suspect_after: Duration::from_millis(400),
            down_after: Duration::from_millis(1000),
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_millis(1000),
            dial_timeout: Duration::from_millis(1000),
            discovery_interval: Duration::from_secs(5),
        }
    }
}

/// A member as listed by [`Membership::members`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The member.
    pub node: NodeIdentity,
    /// Its state.
    pub state: MemberState,
}

#[derive(Debug, Clone)]
struct Member {
    node: NodeIdentity,
    state: MemberState,
    sessions: usize,
    last_heard: Instant,
}

#[derive(Debug, Clone)]
struct Target {
    name: Option<String>,
    in_flight: bool,
    next: Instant,
    backoff: Duration,
    /// Failed dials in a row.
    failures: u32,
}

/// The membership state machine of one node.
#[derive(Debug)]
pub struct Membership {
    me: NodeIdentity,
    timings: Timings,
    members: BTreeMap<String, Member>,
    targets: BTreeMap<SocketAddr, Target>,
}

impl Membership {
    /// A node that knows nobody yet.
    pub fn new(me: NodeIdentity, timings: Timings) -> Self {
        Self {
            me,
            timings,
            members: BTreeMap::new(),
            targets: BTreeMap::new(),
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

    /// What this node gossips: itself and the members it has sessions with.
    pub fn gossip(&self) -> Vec<NodeIdentity> {
        let mut v = vec![self.me.clone()];
        v.extend(self.up_members());
        v
    }

    fn is_connected_addr(&self, addr: &SocketAddr) -> bool {
        self.members
            .values()
            .any(|m| m.node.addr == *addr && m.sessions > 0)
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
                },
            );
        }
        match self.members.get_mut(&peer.name) {
            Some(m) if peer.incarnation < m.node.incarnation => {
                // A stale incarnation: refuse it.
                out.push(Action::Close(peer.name.clone()));
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
                m.last_heard = now;
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
                        last_heard: now,
                    },
                );
                out.push(Action::Emit(MemberEvent::MemberUp(peer)));
            }
        }
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
            out.push(Action::Emit(MemberEvent::MemberDown {
                node: m.node.clone(),
                reason: DownReason::ConnectionClosed,
            }));
        }
        let (addr, name) = (m.node.addr, m.node.name.clone());
        let next = now + self.courtesy(&name);
        if let Some(t) = self.targets.get_mut(&addr) {
            t.next = t.next.max(next);
        }
        out
    }

    /// A heartbeat from `from`, carrying its member list.
    pub fn on_heartbeat(
        &mut self,
        from: &NodeIdentity,
        gossip: &[NodeIdentity],
        now: Instant,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(m) = self.members.get_mut(&from.name) {
            if m.node.incarnation == from.incarnation && m.sessions > 0 {
                m.last_heard = now;
                if m.state == MemberState::Suspect {
                    m.state = MemberState::Up;
                }
            }
        }
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
            });
            target.name = Some(node.name.clone());
        }
        out.extend(self.dial_due(now));
        out
    }

    /// `from` announced that it leaves.
    pub fn on_leave(&mut self, from: &NodeIdentity) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(m) = self.members.get_mut(&from.name) {
            if m.node.incarnation == from.incarnation && m.state != MemberState::Left {
                m.state = MemberState::Left;
                out.push(Action::Emit(MemberEvent::MemberLeft(m.node.clone())));
                self.targets.remove(&m.node.addr);
            }
        }
        out
    }

    /// Periodic check: heartbeat timeouts and due redials.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        for m in self.members.values_mut() {
            if !matches!(m.state, MemberState::Up | MemberState::Suspect) {
                continue;
            }
            let silent = now.saturating_duration_since(m.last_heard);
            if silent >= self.timings.down_after {
                m.state = MemberState::Down;
                m.sessions = 0;
                out.push(Action::Emit(MemberEvent::MemberDown {
                    node: m.node.clone(),
                    reason: DownReason::HeartbeatTimeout,
                }));
                out.push(Action::Close(m.node.name.clone()));
                if let Some(t) = self.targets.get_mut(&m.node.addr) {
                    t.in_flight = false;
                    t.next = now + t.backoff;
                }
            } else if silent >= self.timings.suspect_after {
                m.state = MemberState::Suspect;
            }
        }
        out.extend(self.dial_due(now));
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
        let due: Vec<SocketAddr> = self
            .targets
            .iter()
            .filter(|(_, t)| !t.in_flight && now >= t.next)
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            if self.is_connected_addr(&addr) {
                continue;
            }
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
mod tests {
    use super::*;

    fn node(name: &str, inc: u64, port: u16) -> NodeIdentity {
        NodeIdentity {
            name: name.into(),
            incarnation: inc,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn emitted(actions: &[Action]) -> Vec<MemberEvent> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Emit(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    fn dials(actions: &[Action]) -> Vec<SocketAddr> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Dial { addr, .. } => Some(*addr),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn seeds_are_dialed_and_retried_with_backoff() {
        let t0 = Instant::now();
        let mut m = Membership::new(node("a", 1, 1), Timings::default());
        let seed = node("b", 1, 2).addr;
        let acts = m.on_discovered(&[seed, m.me().addr], t0);
        assert_eq!(dials(&acts), vec![seed], "never dials itself");
        // In flight: no second dial.
        assert!(dials(&m.tick(t0 + Duration::from_millis(10))).is_empty());
        m.on_dial_failed(seed, t0);
        assert!(dials(&m.tick(t0 + Duration::from_millis(50))).is_empty());
        assert_eq!(dials(&m.tick(t0 + Duration::from_millis(100))), vec![seed]);
        m.on_dial_failed(seed, t0 + Duration::from_millis(100));
        // Backoff doubled to 200 ms.
        assert!(dials(&m.tick(t0 + Duration::from_millis(250))).is_empty());
        assert_eq!(dials(&m.tick(t0 + Duration::from_millis(300))), vec![seed]);
    }

    #[test]
    fn dials_that_keep_failing_are_reported_then_rarely_and_a_session_resets_the_count() {
        let t0 = Instant::now();
        let mut m = Membership::new(node("a", 1, 1), Timings::default());
        let b = node("b", 1, 2);
        let _ = m.on_discovered(&[b.addr], t0);
        let unreachable = |acts: &[Action]| {
            acts.iter()
                .filter(|a| matches!(a, Action::Unreachable { .. }))
                .count()
        };
        let mut said = Vec::new();
        for i in 1..=(DIAL_WARN_AFTER + DIAL_WARN_EVERY) {
            if unreachable(&m.on_dial_failed(b.addr, t0)) > 0 {
                said.push(i);
            }
        }
        assert_eq!(
            said,
            vec![DIAL_WARN_AFTER, DIAL_WARN_AFTER + DIAL_WARN_EVERY]
        );
        let _ = m.on_session_up(b.clone(), t0);
        for _ in 1..DIAL_WARN_AFTER {
            assert_eq!(unreachable(&m.on_dial_failed(b.addr, t0)), 0);
        }
        assert_eq!(unreachable(&m.on_dial_failed(b.addr, t0)), 1);
    }

    #[test]
    fn session_up_and_down_emit_events() {
        let t0 = Instant::now();
        let mut m = Membership::new(node("a", 1, 1), Timings::default());
        let b = node("b", 1, 2);
        assert_eq!(
            emitted(&m.on_session_up(b.clone(), t0)),
            vec![MemberEvent::MemberUp(b.clone())]
        );
        // A duplicate session adds nothing; closing one of two keeps the member up.
        assert!(emitted(&m.on_session_up(b.clone(), t0)).is_empty());
        assert!(emitted(&m.on_session_down("b", t0)).is_empty());
        assert_eq!(
            emitted(&m.on_session_down("b", t0)),
            vec![MemberEvent::MemberDown {
                node: b.clone(),
                reason: DownReason::ConnectionClosed
            }]
        );
        assert_eq!(m.members()[0].state, MemberState::Down);
    }

    #[test]
    fn silence_makes_a_member_suspect_then_down_and_closes_it() {
        let t0 = Instant::now();
        let tm = Timings::default();
        let mut m = Membership::new(node("a", 1, 1), tm);
        let b = node("b", 1, 2);
        m.on_session_up(b.clone(), t0);
        m.on_heartbeat(&b, &[], t0 + Duration::from_millis(100));
        m.tick(t0 + Duration::from_millis(100) + tm.suspect_after);
        assert_eq!(m.members()[0].state, MemberState::Suspect);
        // A heartbeat clears the suspicion.
        m.on_heartbeat(&b, &[], t0 + Duration::from_millis(600));
        assert_eq!(m.members()[0].state, MemberState::Up);
        let acts = m.tick(t0 + Duration::from_millis(600) + tm.down_after);
        assert_eq!(
            emitted(&acts),
            vec![MemberEvent::MemberDown {
                node: b.clone(),
                reason: DownReason::HeartbeatTimeout
            }]
        );
        assert!(acts.contains(&Action::Close("b".into())));
        // The late session close adds no second event.
        assert!(emitted(&m.on_session_down("b", t0 + Duration::from_secs(3))).is_empty());
    }

    #[test]
    fn gossip_leads_to_dials_with_the_later_name_first() {
        let t0 = Instant::now();
        let mut m = Membership::new(node("b", 1, 2), Timings::default());
        let a = node("a", 1, 1);
        let c = node("c", 1, 3);
        let d = node("d", 1, 4);
        m.on_session_up(c.clone(), t0);
        let acts = m.on_heartbeat(&c, &[c.clone(), a.clone(), d.clone()], t0);
        // "b" > "a": b dials a at once; "d" > "b": d is expected to dial b.
        assert_eq!(dials(&acts), vec![a.addr]);
        // If d has not dialed after the grace period, b dials it.
        let later = t0 + Timings::default().reconnect_max;
        assert_eq!(dials(&m.tick(later)), vec![d.addr]);
    }

    #[test]
    fn a_new_incarnation_replaces_the_old_one() {
        let t0 = Instant::now();
        let mut m = Membership::new(node("a", 1, 1), Timings::default());
        let b1 = node("b", 1, 2);
        let b2 = node("b", 2, 2);
        m.on_session_up(b1.clone(), t0);
        let acts = m.on_session_up(b2.clone(), t0);
        assert_eq!(
            emitted(&acts),
            vec![
                MemberEvent::MemberDown {
                    node: b1.clone(),
                    reason: DownReason::Restarted
                },
                MemberEvent::MemberUp(b2.clone())
            ]
        );
        // A stale incarnation is refused.
        let acts = m.on_session_up(b1, t0);
        assert_eq!(acts, vec![Action::Close("b".into())]);
        // Heartbeats of the old incarnation do not keep the new one alive.
        assert_eq!(m.members()[0].node, b2);
    }

    #[test]
    fn a_member_that_left_is_not_redialed() {
        let t0 = Instant::now();
        let mut m = Membership::new(node("z", 1, 9), Timings::default());
        let b = node("b", 1, 2);
        m.on_session_up(b.clone(), t0);
        assert_eq!(
            emitted(&m.on_leave(&b)),
            vec![MemberEvent::MemberLeft(b.clone())]
        );
        assert!(emitted(&m.on_session_down("b", t0)).is_empty());
        assert!(dials(&m.tick(t0 + Duration::from_secs(10))).is_empty());
        // Gossip about the same incarnation does not bring it back.
        let c = node("c", 1, 3);
        m.on_session_up(c.clone(), t0);
        assert!(
            dials(&m.on_heartbeat(&c, std::slice::from_ref(&b), t0 + Duration::from_secs(11)))
                .is_empty()
        );
    }
}
