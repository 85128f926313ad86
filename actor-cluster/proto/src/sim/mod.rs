//! A deterministic simulator of the cluster logic: N nodes' membership, registry and
//! supervisor cores in one process, over a simulated network with a virtual clock, under a
//! seeded schedule of message delay and loss, partitions, crashes, restarts, freezes and joins.
//!
//! A run is a pure function of its [`Scenario`] and seed: the same seed replays the same steps,
//! and a violated invariant names the step and the virtual time ([`Violation`]). Invariants:
//!
//! * after every step: a node that has met every member (all of them up in its membership, in
//!   its supervisor and synced in its registry, with no fault for [`QUIET`]) never starts a
//!   child that runs on another node; in [`Class::Join`] runs, no node ever does; with quorum
//!   placement ([`Class::Quorum`]), no child ever runs on two nodes at once;
//! * once the faults are over and membership is stable: every live child runs exactly once,
//!   every node's child table and registry are equal, and every running child is registered,
//!   on every node, where it runs (no registration of a live actor is lost).
//!
//! The shell's glue (what the actors do with each effect) is mirrored in `node.rs`.

mod check;
mod node;
mod rng;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core_base::supervision::ExitReason;

use self::node::{Out, SimNode, Wire, KIND};
pub use self::rng::Rng;
use crate::membership::Timings;
use crate::supervisor::{DistChildSpec, Placement, Quorum, Uniform};
use crate::{NodeIdentity, Now};

/// No fault for this long before a step: the cluster counts as quiet.
pub const QUIET: Duration = Duration::from_secs(3);

/// The kind of scenario a seed runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A formed cluster running children; nodes join through one seed each. No other faults.
    Join,
    /// Crashes, restarts, freezes, partitions, joins, child crashes and message loss.
    Faults,
    /// Quorum placement under partitions and crashes: lifetimes must never overlap.
    Quorum,
}

/// What a run simulates.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario's kind.
    pub class: Class,
    /// Nodes in all (some join later).
    pub nodes: usize,
    /// Nodes up from the start.
    pub initial: usize,
    /// Children started once the first nodes have formed.
    pub children: usize,
    /// How long faults are injected.
    pub faults_for: Duration,
    /// How long the cluster may take to converge once faults are over.
    pub settle_within: Duration,
}

impl Scenario {
    /// The scenario of a seed in the default mix (5 nodes): join, faults and quorum runs.
    pub fn for_seed(seed: u64) -> Self {
        let class = match seed % 4 {
            0 => Class::Join,
            1 | 2 => Class::Faults,
            _ => Class::Quorum,
        };
        Self {
            class,
            nodes: 5,
            initial: if class == Class::Join { 3 } else { 4 },
            children: 12,
            faults_for: Duration::from_secs(8),
            settle_within: Duration::from_secs(15),
        }
    }
}

/// A violated invariant: the seed, the step and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The seed that replays it.
    pub seed: u64,
    /// The step (event number) at which it was found.
    pub step: u64,
    /// Virtual time since the run began.
    pub at: Duration,
    /// What went wrong.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} step {} at {:?}: {}",
            self.seed, self.step, self.at, self.what
        )
    }
}

/// What a passing run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Its scenario's kind.
    pub class: Class,
    /// Events processed.
    pub steps: u64,
    /// Faults injected.
    pub faults: u64,
    /// Child starts (first starts, restarts and failovers).
    pub starts: u64,
    /// Starts of a child that ran elsewhere at that moment (views that disagreed; they lose
    /// the name conflict at once).
    pub duplicate_starts: u64,
    /// Virtual time from the end of the faults until every invariant held.
    pub settled_after: Duration,
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: usize,
        from: String,
        conn: u64,
        wire: Wire,
    },
    SessionUp {
        node: usize,
        peer: usize,
        conn: u64,
    },
    SessionDown {
        node: usize,
        peer: String,
    },
    PeerVisible {
        node: usize,
        peer: String,
        conn: u64,
    },
    DialFailed {
        node: usize,
        addr: SocketAddr,
    },
    MembershipTick(usize),
    ServiceTick(usize),
    Discover(usize),
    Fault(Fault),
}

#[derive(Debug, Clone)]
enum Fault {
    Start(usize),
    Crash(usize),
    Freeze(usize),
    Thaw(usize),
    Partition(BTreeSet<usize>),
    Heal,
    ChildCrash(usize),
    PutChildren(usize),
}

struct Queued {
    at: Duration,
    seq: u64,
    /// The incarnation of the target node this event is for (0: any).
    inc: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Conn {
    a: usize,
    b: usize,
    open: bool,
    /// When the last message in each direction (a to b, b to a) is delivered: FIFO per link.
    last: [Duration; 2],
}

struct Slot {
    node: Option<SimNode>,
    incarnation: u64,
    frozen: bool,
    /// Events that arrived while frozen, delivered at the thaw.
    parked: Vec<Queued>,
    skew_ns: i64,
}

/// One simulation run.
pub struct Sim {
    seed: u64,
    scenario: Scenario,
    rng: Rng,
    base: Instant,
    now: Duration,
    step: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    slots: Vec<Slot>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    /// Nodes cut off from the rest (a partition), if any.
    island: BTreeSet<usize>,
    placement: Arc<dyn Placement>,
    timings: Timings,
    last_fault: Duration,
    faults: u64,
    duplicate_starts: u64,
    loss: f64,
    next_child: usize,
}

const WALL_BASE_NS: u64 = 1_800_000_000_000_000_000;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 7000 + i as u16))
}

fn name(i: usize) -> String {
    format!("n{i}")
}

impl Sim {
    /// A run of `scenario` with `seed`.
    pub fn new(seed: u64, scenario: Scenario) -> Self {
        let mut rng = Rng::new(seed);
        let timings = Timings::default();
        let members: BTreeSet<String> = (0..scenario.nodes).map(name).collect();
        let placement: Arc<dyn Placement> = match scenario.class {
            Class::Quorum => Arc::new(Quorum {
                members,
                // Longer than the minority needs to see the majority down and stop.
                restart_delay: timings.down_after * 3,
            }),
            _ => Arc::new(Uniform),
        };
        let slots = (0..scenario.nodes)
            .map(|_| Slot {
                node: None,
                incarnation: 0,
                frozen: false,
                parked: Vec::new(),
                skew_ns: rng.range(0, 400_000_000) as i64 - 200_000_000,
            })
            .collect();
        let loss = if scenario.class == Class::Faults {
            0.002
        } else {
            0.0
        };
        Self {
            seed,
            rng,
            base: Instant::now(),
            now: Duration::ZERO,
            step: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            slots,
            conns: BTreeMap::new(),
            next_conn: 1,
            island: BTreeSet::new(),
            placement,
            timings,
            last_fault: Duration::ZERO,
            faults: 0,
            duplicate_starts: 0,
            loss,
            next_child: 0,
            scenario,
        }
    }

    fn at(&self, i: usize) -> Now {
        let skew = self.slots.get(i).map(|s| s.skew_ns).unwrap_or(0);
        let wall = WALL_BASE_NS as i128 + self.now.as_nanos() as i128 + skew as i128;
        Now {
            mono: self.base + self.now,
            wall_ns: wall.max(0) as u64,
        }
    }

    fn push(&mut self, after: Duration, inc: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at: self.now + after,
            seq: self.seq,
            inc,
            ev,
        }));
    }

    fn inc(&self, i: usize) -> u64 {
        self.slots.get(i).map(|s| s.incarnation).unwrap_or(0)
    }

    fn alive(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(|s| s.node.is_some())
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        !self.island.is_empty() && self.island.contains(&a) != self.island.contains(&b)
    }

    fn delay(&mut self) -> Duration {
        Duration::from_micros(self.rng.range(200, 8_000))
    }

    fn schedule(&mut self) {
        let sc = self.scenario.clone();
        for i in 0..sc.initial {
            self.push(
                Duration::from_millis(i as u64 * 37),
                0,
                Ev::Fault(Fault::Start(i)),
            );
        }
        let formed = Duration::from_secs(3);
        self.push(formed, 0, Ev::Fault(Fault::PutChildren(0)));
        let start = formed + Duration::from_secs(2);
        let end = start + sc.faults_for;
        let mut t = start;
        let mut joined = sc.initial;
        while t < end {
            t += Duration::from_millis(self.rng.range(400, 1_500));
            if t >= end {
                break;
            }
            let after = t.saturating_sub(self.now);
            let victim = self.rng.range(0, sc.nodes as u64) as usize;
            let fault = match sc.class {
                Class::Join => {
                    if joined >= sc.nodes {
                        break;
                    }
                    joined += 1;
                    // Joins come a few seconds apart, each through one seed.
                    t += Duration::from_secs(2);
                    Fault::Start(joined - 1)
                }
                Class::Faults => match self.rng.range(0, 8) {
                    0 if joined < sc.nodes => {
                        joined += 1;
                        Fault::Start(joined - 1)
                    }
                    0 | 1 => Fault::Crash(victim),
                    2 => Fault::Start(victim),
                    3 => Fault::Freeze(victim),
                    4 => Fault::Thaw(victim),
                    5 => self.partition(sc.nodes),
                    6 => Fault::Heal,
                    _ => Fault::ChildCrash(victim),
                },
                Class::Quorum => match self.rng.range(0, 5) {
                    0 => Fault::Crash(victim),
                    1 => Fault::Start(victim),
                    2 => self.partition(sc.nodes),
                    3 => Fault::Heal,
                    _ => Fault::PutChildren(victim),
                },
            };
            self.push(after, 0, Ev::Fault(fault));
        }
        // The end of the faults: heal, thaw and bring every node up.
        let after = end.saturating_sub(self.now);
        self.push(after, 0, Ev::Fault(Fault::Heal));
        for i in 0..sc.nodes {
            self.push(after, 0, Ev::Fault(Fault::Thaw(i)));
            self.push(after, 0, Ev::Fault(Fault::Start(i)));
        }
    }

    fn partition(&mut self, n: usize) -> Fault {
        let size = self.rng.range(1, (n as u64).div_ceil(2)) as usize;
        let mut island = BTreeSet::new();
        while island.len() < size {
            island.insert(self.rng.range(0, n as u64) as usize);
        }
        Fault::Partition(island)
    }

    /// Runs the scenario: the faults, then until every invariant holds or the settle time is
    /// up.
    pub fn run(mut self) -> Result<Report, Violation> {
        self.schedule();
        let faults_end = Duration::from_secs(5) + self.scenario.faults_for;
        let deadline = faults_end + self.scenario.settle_within;
        let mut next_check = faults_end + Duration::from_millis(500);
        while let Some(Reverse(q)) = self.queue.pop() {
            if q.at > deadline {
                break;
            }
            self.now = q.at;
            self.step += 1;
            self.handle(q)?;
            if self.now >= next_check {
                next_check = self.now + Duration::from_millis(250);
                if check::settled(&self).is_ok() {
                    return Ok(self.report(self.now.saturating_sub(faults_end)));
                }
            }
        }
        match check::settled(&self) {
            Ok(()) => Ok(self.report(self.now.saturating_sub(faults_end))),
            Err(what) => Err(self.violation(format!("not settled by the deadline: {what}"))),
        }
    }

    fn report(&self, settled_after: Duration) -> Report {
        Report {
            seed: self.seed,
            class: self.scenario.class,
            steps: self.step,
            faults: self.faults,
            starts: self
                .slots
                .iter()
                .filter_map(|s| s.node.as_ref())
                .map(|n| n.starts)
                .sum(),
            duplicate_starts: self.duplicate_starts,
            settled_after,
        }
    }

    fn violation(&self, what: String) -> Violation {
        Violation {
            seed: self.seed,
            step: self.step,
            at: self.now,
            what,
        }
    }

    fn handle(&mut self, q: Queued) -> Result<(), Violation> {
        if let Ev::Fault(f) = q.ev {
            return self.fault(f);
        }
        let target = match &q.ev {
            Ev::Deliver { to, .. } => *to,
            Ev::SessionUp { node, .. }
            | Ev::SessionDown { node, .. }
            | Ev::PeerVisible { node, .. }
            | Ev::DialFailed { node, .. } => *node,
            Ev::MembershipTick(n) | Ev::ServiceTick(n) | Ev::Discover(n) => *n,
            Ev::Fault(_) => return Ok(()),
        };
        if q.inc != self.inc(target) || !self.alive(target) {
            return Ok(());
        }
        if self.slots.get(target).is_some_and(|s| s.frozen) {
            if let Some(s) = self.slots.get_mut(target) {
                s.parked.push(q);
            }
            return Ok(());
        }
        let now = self.at(target);
        let inc = q.inc;
        let Some(mut node) = self.slots.get_mut(target).and_then(|s| s.node.take()) else {
            return Ok(());
        };
        let out = match q.ev {
            Ev::Deliver {
                from, conn, wire, ..
            } => {
                if self.conns.get(&conn).is_some_and(|c| c.open) {
                    node.on_wire(now, &from, wire)
                } else {
                    Vec::new()
                }
            }
            Ev::SessionUp { peer, conn, .. } => {
                let open = self.conns.get(&conn).is_some_and(|c| c.open);
                match self.slots.get(peer).and_then(|s| s.node.as_ref()) {
                    Some(p) if open => {
                        let ident = p.me.clone();
                        let name = ident.name.clone();
                        // ractor_cluster syncs the process groups before the session is
                        // ready: the peer's endpoints are visible when membership hears of it.
                        node.visible.insert(name.clone());
                        let d = self.delay();
                        self.push(
                            d,
                            inc,
                            Ev::PeerVisible {
                                node: target,
                                peer: name,
                                conn,
                            },
                        );
                        let actions = node.membership.on_session_up(ident, now.mono);
                        node.membership_actions(now, actions)
                    }
                    _ => Vec::new(),
                }
            }
            Ev::SessionDown { peer, .. } => {
                if !self
                    .conns
                    .values()
                    .any(|c| c.open && self.endpoints_named(c, target, &peer))
                {
                    node.visible.remove(&peer);
                }
                let actions = node.membership.on_session_down(&peer, now.mono);
                node.membership_actions(now, actions)
            }
            Ev::PeerVisible { peer, conn, .. } => {
                if self.conns.get(&conn).is_some_and(|c| c.open) {
                    node.visible.insert(peer.clone());
                    let mut out = Vec::new();
                    let effects = node.registry.on_peer_joined(&peer);
                    node.reg_effects(now, effects, &mut out);
                    out
                } else {
                    Vec::new()
                }
            }
            Ev::DialFailed { addr, .. } => {
                let actions = node.membership.on_dial_failed(addr, now.mono);
                node.membership_actions(now, actions)
            }
            Ev::MembershipTick(_) => {
                let t = self.timings.heartbeat_interval;
                self.push(t, inc, Ev::MembershipTick(target));
                node.tick_membership(now)
            }
            Ev::ServiceTick(_) => {
                self.push(
                    crate::supervisor::TICK_INTERVAL,
                    inc,
                    Ev::ServiceTick(target),
                );
                node.tick_services(now)
            }
            Ev::Discover(_) => {
                let t = self.timings.discovery_interval;
                self.push(t, inc, Ev::Discover(target));
                let actions = node.discovered(now.mono);
                node.membership_actions(now, actions)
            }
            Ev::Fault(_) => Vec::new(),
        };
        if let Some(s) = self.slots.get_mut(target) {
            s.node = Some(node);
        }
        self.outputs(target, out)
    }

    /// Whether `c` connects `node` with the node named `peer`.
    fn endpoints_named(&self, c: &Conn, node: usize, peer: &str) -> bool {
        let other = if c.a == node {
            c.b
        } else if c.b == node {
            c.a
        } else {
            return false;
        };
        name(other) == peer
    }

    fn outputs(&mut self, from: usize, out: Vec<Out>) -> Result<(), Violation> {
        for o in out {
            match o {
                Out::Broadcast(wire) => {
                    let peers: Vec<String> = self
                        .slots
                        .get(from)
                        .and_then(|s| s.node.as_ref())
                        .map(|n| n.visible.iter().cloned().collect())
                        .unwrap_or_default();
                    for p in peers {
                        self.send(from, &p, wire.clone());
                    }
                }
                Out::Send(to, wire) => self.send(from, &to, wire),
                Out::Dial(addr, expect) => self.dial(from, addr, expect),
                Out::Close(peer) => self.close(from, &peer),
                Out::Started(id) => self.started(from, &id)?,
            }
        }
        Ok(())
    }

    fn send(&mut self, from: usize, to: &str, wire: Wire) {
        let heartbeat = matches!(wire, Wire::Heartbeat(..));
        let visible = self
            .slots
            .get(from)
            .and_then(|s| s.node.as_ref())
            .is_some_and(|n| n.visible.contains(to));
        // Heartbeats go on every connection (the control lane); services need the peer's
        // endpoints.
        let Some((&id, conn)) = self.conns.iter().find(|(_, c)| {
            c.open && ((c.a == from && name(c.b) == to) || (c.b == from && name(c.a) == to))
        }) else {
            return;
        };
        if !heartbeat && !visible {
            return;
        }
        let (peer, dir) = if conn.a == from {
            (conn.b, 0)
        } else {
            (conn.a, 1)
        };
        let last = conn.last[dir];
        if self.cut(from, peer) || (self.loss > 0.0 && self.rng.chance(self.loss)) {
            return;
        }
        let d = self.delay();
        let at = (self.now + d).max(last);
        if let Some(c) = self.conns.get_mut(&id) {
            c.last[dir] = at;
        }
        let inc = self.inc(peer);
        let after = at.saturating_sub(self.now);
        self.push(
            after,
            inc,
            Ev::Deliver {
                to: peer,
                from: name(from),
                conn: id,
                wire,
            },
        );
    }

    fn dial(&mut self, from: usize, to: SocketAddr, expect: Option<String>) {
        let target = (0..self.slots.len()).find(|&i| addr(i) == to);
        let inc = self.inc(from);
        let refused = Duration::from_millis(self.rng.range(1, 5));
        let Some(t) = target.filter(|&t| self.alive(t)) else {
            self.push(
                refused,
                inc,
                Ev::DialFailed {
                    node: from,
                    addr: to,
                },
            );
            return;
        };
        if expect.as_deref().is_some_and(|e| e != name(t)) {
            self.push(
                refused,
                inc,
                Ev::DialFailed {
                    node: from,
                    addr: to,
                },
            );
            return;
        }
        if self.cut(from, t) || self.slots.get(t).is_some_and(|s| s.frozen) {
            let timeout = self.timings.dial_timeout;
            self.push(
                timeout,
                inc,
                Ev::DialFailed {
                    node: from,
                    addr: to,
                },
            );
            return;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                a: from,
                b: t,
                open: true,
                last: [Duration::ZERO; 2],
            },
        );
        let d1 = self.delay() * 2;
        let d2 = self.delay() * 2;
        let tinc = self.inc(t);
        self.push(
            d1,
            inc,
            Ev::SessionUp {
                node: from,
                peer: t,
                conn: id,
            },
        );
        self.push(
            d2,
            tinc,
            Ev::SessionUp {
                node: t,
                peer: from,
                conn: id,
            },
        );
    }

    fn close(&mut self, from: usize, peer: &str) {
        let ids: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.open && self.endpoints_named(c, from, peer))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close_conn(id);
        }
    }

    fn close_conn(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if !c.open {
            return;
        }
        c.open = false;
        let (a, b) = (c.a, c.b);
        for (node, other) in [(a, b), (b, a)] {
            let d = self.delay();
            let inc = self.inc(node);
            self.push(
                d,
                inc,
                Ev::SessionDown {
                    node,
                    peer: name(other),
                },
            );
        }
    }

    fn started(&mut self, on: usize, id: &str) -> Result<(), Violation> {
        let elsewhere: Vec<usize> = (0..self.slots.len())
            .filter(|&i| i != on)
            .filter(|&i| {
                self.slots
                    .get(i)
                    .and_then(|s| s.node.as_ref())
                    .is_some_and(|n| n.children.contains(id))
            })
            .collect();
        if elsewhere.is_empty() {
            return Ok(());
        }
        self.duplicate_starts += 1;
        let on_names: Vec<String> = elsewhere.iter().map(|&i| name(i)).collect();
        if self.scenario.class == Class::Join {
            return Err(self.violation(format!(
                "{} started {id} while it ran on {on_names:?} (a joining node must sync first)",
                name(on)
            )));
        }
        if self.scenario.class == Class::Quorum {
            return Err(self.violation(format!(
                "quorum: {} started {id} while it ran on {on_names:?}",
                name(on)
            )));
        }
        if self.now.saturating_sub(self.last_fault) >= QUIET && check::met_everyone(self, on) {
            return Err(self.violation(format!(
                "{} had met every member, yet started {id} while it ran on {on_names:?}",
                name(on)
            )));
        }
        Ok(())
    }

    fn fault(&mut self, f: Fault) -> Result<(), Violation> {
        let counted = !matches!(f, Fault::PutChildren(_));
        match f {
            Fault::Start(i) => {
                if self.alive(i) {
                    return Ok(());
                }
                self.start_node(i);
            }
            Fault::Crash(i) => {
                if !self.alive(i) {
                    return Ok(());
                }
                if let Some(s) = self.slots.get_mut(i) {
                    s.node = None;
                    s.frozen = false;
                    s.parked.clear();
                }
                let ids: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.open && (c.a == i || c.b == i))
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.close_conn(id);
                }
            }
            Fault::Freeze(i) => {
                if let Some(s) = self.slots.get_mut(i).filter(|s| s.node.is_some()) {
                    s.frozen = true;
                }
            }
            Fault::Thaw(i) => {
                let parked = match self.slots.get_mut(i) {
                    Some(s) if s.frozen => {
                        s.frozen = false;
                        std::mem::take(&mut s.parked)
                    }
                    _ => Vec::new(),
                };
                for q in parked {
                    self.push(Duration::ZERO, q.inc, q.ev);
                }
            }
            Fault::Partition(island) => self.island = island,
            Fault::Heal => self.island.clear(),
            Fault::ChildCrash(i) => {
                let now = self.at(i);
                let mut out = Vec::new();
                if let Some(n) = self.slots.get_mut(i).and_then(|s| s.node.as_mut()) {
                    if let Some(id) = n.children.iter().next().cloned() {
                        let exit = ExitReason::Failed("simulated crash".into());
                        n.stop_child(now, &id, exit, &mut out);
                        n.settle(now, &mut out);
                    }
                }
                self.outputs(i, out)?;
            }
            Fault::PutChildren(i) => self.put_children(i)?,
        }
        if counted && self.now >= Duration::from_secs(5) {
            self.faults += 1;
            self.last_fault = self.now;
        }
        Ok(())
    }

    fn start_node(&mut self, i: usize) {
        let incarnation = self.inc(i) + 1;
        let me = NodeIdentity {
            name: name(i),
            incarnation,
            addr: addr(i),
        };
        // Nodes of the first group know each other's addresses; later ones know one seed.
        let seeds: Vec<SocketAddr> = if i < self.scenario.initial {
            (0..self.scenario.initial).map(addr).collect()
        } else {
            let alive: Vec<usize> = (0..self.slots.len())
                .filter(|&j| j != i && self.alive(j))
                .collect();
            let pick = alive
                .get(self.rng.range(0, alive.len().max(1) as u64) as usize)
                .copied()
                .unwrap_or(0);
            vec![addr(pick)]
        };
        let node = SimNode::new(me, self.timings, self.placement.clone(), seeds);
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        slot.incarnation = incarnation;
        let inc = incarnation;
        slot.node = Some(node);
        slot.frozen = false;
        slot.parked.clear();
        let jitter = Duration::from_millis(self.rng.range(0, 100));
        self.push(Duration::ZERO, inc, Ev::Discover(i));
        self.push(jitter, inc, Ev::MembershipTick(i));
        self.push(jitter * 3, inc, Ev::ServiceTick(i));
    }

    fn put_children(&mut self, i: usize) -> Result<(), Violation> {
        let count = if self.next_child == 0 {
            self.scenario.children
        } else {
            2
        };
        let specs: Vec<DistChildSpec> = (0..count)
            .map(|k| DistChildSpec::new(format!("c{}", self.next_child + k), KIND, Vec::new()))
            .collect();
        let sample = self.rng.next_u64();
        let now = self.at(i);
        let mut out = Vec::new();
        let Some(n) = self.slots.get_mut(i).and_then(|s| s.node.as_mut()) else {
            return Ok(());
        };
        // Refused (no quorum, or nobody known yet): nothing was added.
        if let Ok(effects) = n.sup.put(now, specs, sample) {
            self.next_child += count;
            n.sup_effects(now, effects, &mut out);
            n.settle(now, &mut out);
        }
        self.outputs(i, out)
    }

    fn nodes(&self) -> impl Iterator<Item = (usize, &SimNode)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.node.as_ref().map(|n| (i, n)))
    }
}

/// Runs one seed of the default mix.
pub fn run_seed(seed: u64) -> Result<Report, Violation> {
    Sim::new(seed, Scenario::for_seed(seed)).run()
}
