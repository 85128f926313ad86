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
//!   every node's child table (tombstones aside) and registry are equal, every running child
//!   is registered, on every node, where it runs (no registration of a live actor is lost),
//!   and no child whose tombstone a node has collected is live again anywhere;
//! * then, within [`COLLECT_WITHIN`], every node has collected every tombstone, and all of the
//!   above still holds.
//!
//! The shell's glue (what the actors do with each effect) is mirrored in `node.rs`.

mod check;
mod churn;
mod faults;
mod net;
mod node;
mod rng;
mod scale;
mod step;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::churn::{run_churn, ChurnReport, ChurnSample, ChurnScenario};
use self::node::{SimNode, Wire};
pub use self::rng::Rng;
use self::scale::Traffic;
pub use self::scale::{run_scale, Rate, ScaleReport, ScaleScenario, DATA_OVERHEAD};
use crate::membership::Timings;
use crate::supervisor::{Placement, Quorum, Uniform};
use crate::Now;

/// Once the cluster has settled, every tombstone is collected within this long.
pub const COLLECT_WITHIN: Duration = Duration::from_secs(10);

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
    /// The node terminates one of the live children in its table.
    Terminate(usize),
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
    /// The open connections of each pair of nodes (lower index first).
    open: HashMap<(usize, usize), BTreeSet<u64>>,
    next_conn: u64,
    /// What the nodes sent, for the scale runs.
    traffic: Traffic,
    /// Nodes cut off from the rest (a partition), if any.
    island: BTreeSet<usize>,
    placement: Arc<dyn Placement>,
    timings: Timings,
    last_fault: Duration,
    faults: u64,
    duplicate_starts: u64,
    loss: f64,
    next_child: usize,
    /// Children whose tombstone some node has collected (ids are never reused: none may be
    /// live again).
    collected_ids: BTreeSet<String>,
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
            open: HashMap::new(),
            next_conn: 1,
            traffic: Traffic::default(),
            island: BTreeSet::new(),
            placement,
            timings,
            last_fault: Duration::ZERO,
            faults: 0,
            duplicate_starts: 0,
            loss,
            next_child: 0,
            collected_ids: BTreeSet::new(),
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
                    let settled = self.now.saturating_sub(faults_end);
                    self.collected()?;
                    return Ok(self.report(settled));
                }
            }
        }
        match check::settled(&self) {
            Ok(()) => {
                let settled = self.now.saturating_sub(faults_end);
                self.collected()?;
                Ok(self.report(settled))
            }
            Err(what) => Err(self.violation(format!("not settled by the deadline: {what}"))),
        }
    }

    /// Once settled, every tombstone is collected on every node within [`COLLECT_WITHIN`],
    /// and the cluster stays settled.
    fn collected(&mut self) -> Result<(), Violation> {
        let kept = |s: &Sim| -> usize {
            s.nodes()
                .map(|(_, n)| n.sup.table().tombstone_count())
                .sum()
        };
        let done = self.run_until(COLLECT_WITHIN, Duration::from_millis(250), |s| kept(s) == 0)?;
        if done.is_none() {
            let left: Vec<String> = self
                .nodes()
                .map(|(i, n)| format!("{}: {}", name(i), n.sup.table().tombstone_count()))
                .collect();
            return Err(self.violation(format!(
                "tombstones not collected within {COLLECT_WITHIN:?}: {left:?}"
            )));
        }
        check::settled(self).map_err(|w| self.violation(format!("unsettled after collection: {w}")))
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
