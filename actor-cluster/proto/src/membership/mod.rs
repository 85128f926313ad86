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

use serde::{Deserialize, Serialize};

use crate::hash::StableHash;
pub use crate::identity::NodeIdentity;

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

/// A membership frame between two connected nodes (on the control lane).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Probe {
    /// "Are you alive?", with the digest of the sender's member set.
    Ping {
        /// Echoed in the ack.
        seq: u64,
        /// The sender's [`Membership::digest`].
        members: u64,
    },
    /// The answer to a ping.
    Ack {
        /// The ping's.
        seq: u64,
        /// The sender's [`Membership::digest`].
        members: u64,
    },
    /// The sender's ping of this member went unanswered: probe it yourself.
    Suspect(NodeIdentity),
    /// The sender's member set (itself included), sent when digests differ.
    Members(Vec<NodeIdentity>),
}

/// Member lists are sent to one peer at most this often.
pub const MEMBERS_EVERY: Duration = Duration::from_millis(500);

/// A node sends its member list only once its own member set has not changed for this long:
/// while members come and go, lists would be stale on arrival, and many nodes joining at once
/// would flood each other with them.
pub const MEMBERS_STABLE: Duration = Duration::from_millis(200);

/// What the membership actor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue this frame for that peer.
    Send {
        /// The peer's name.
        to: String,
        /// The frame.
        probe: Probe,
    },
    /// Queue this frame for every member with a session.
    Broadcast(Probe),
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
    /// How often this node pings one member (and checks its pings' deadlines).
    pub heartbeat_interval: Duration,
    /// A ping unanswered this long: the member is suspect, and every member is asked to probe it.
    pub suspect_after: Duration,
    /// A ping unanswered this long: the member is down and its sessions are closed.
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
            suspect_after: Duration::from_millis(300),
            down_after: Duration::from_millis(900),
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

    /// What this node gossips: itself and the members it has sessions with.
    pub fn gossip(&self) -> Vec<NodeIdentity> {
        let mut v = vec![self.me.clone()];
        v.extend(self.up_members());
        v
    }

    /// A digest of [`Membership::gossip`]: equal on every node of a formed full mesh.
    pub fn digest(&mut self) -> u64 {
        if let Some(d) = self.digest {
            return d;
        }
        let mut all = self.gossip();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let mut h = StableHash::default();
        for n in &all {
            h.str(&n.name).u64(n.incarnation);
        }
        let d = h.finish();
        self.digest = Some(d);
        d
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
        let (addr, name) = (m.node.addr, m.node.name.clone());
        let next = now + self.courtesy(&name);
        if let Some(t) = self.targets.get_mut(&addr) {
            t.next = t.next.max(next);
        }
        out
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

    /// Itself and its connected members, for [`Probe::Members`].
    fn gossip_list(&self) -> Vec<NodeIdentity> {
        self.gossip()
    }

    fn send_members(&mut self, to: &str, now: Instant, out: &mut Vec<Action>) {
        if self
            .changed_at
            .is_some_and(|t| now.saturating_duration_since(t) < MEMBERS_STABLE)
        {
            return;
        }
        let list = self.gossip_list();
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
        });
        out.push(Action::Send {
            to: node.name.clone(),
            probe: Probe::Ping {
                seq,
                members: self.digest.unwrap_or_default(),
            },
        });
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

    /// Periodic work (every `heartbeat_interval`): the deadlines of unanswered pings, the next
    /// ping, due redials. `sample` is a fresh random number (it shuffles the ping order).
    pub fn tick(&mut self, now: Instant, sample: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let mut down = false;
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
        for m in self.members.values_mut() {
            if !matches!(m.state, MemberState::Up | MemberState::Suspect) {
                continue;
            }
            let Some(p) = m.probe.as_mut() else {
                continue;
            };
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
                out.push(Action::Send {
                    to: m.node.name.clone(),
                    probe: Probe::Ping {
                        seq: p.seq,
                        members: 0,
                    },
                });
            }
        }
        if down {
            self.digest = None;
            self.changed_at = Some(now);
        }
        let mine = self.digest();
        for a in out.iter_mut() {
            if let Action::Send {
                probe: Probe::Ping { members, .. },
                ..
            } = a
            {
                *members = mine;
            }
        }
        if let Some(target) = self.next_target(sample) {
            self.ping(&target, now, &mut out);
        }
        out.extend(self.dial_due(now));
        out
    }

    /// Pings `to` (unless a ping to it is in flight), with the usual deadlines.
    fn ping(&mut self, to: &str, now: Instant, out: &mut Vec<Action>) {
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
        // One pass over the members, not one per target: this runs on every tick.
        let connected: std::collections::BTreeSet<SocketAddr> = self
            .members
            .values()
            .filter(|m| m.sessions > 0)
            .map(|m| m.node.addr)
            .collect();
        let due: Vec<SocketAddr> = self
            .targets
            .iter()
            .filter(|(a, t)| !t.in_flight && now >= t.next && !connected.contains(a))
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
