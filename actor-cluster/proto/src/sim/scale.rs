//! Scale runs: the membership, registry and supervisor cores of hundreds or thousands of
//! nodes on the simulated network, with what they send counted in messages and bytes.
//!
//! A run forms a cluster (each node started with one live node as its seed, a few
//! milliseconds apart), measures the idle traffic, then a join, a crash (the peers' connections
//! close, as after SIGKILL) and a freeze (the process stops answering and its connections stay
//! open, as after SIGSTOP), and reports how long each took to be seen by every node
//! ([`ScaleReport`]). No message is lost and no link cut; the seeded faults of [`super::Sim`]
//! cover those at five nodes.
//!
//! Bytes are what the shell would write: a control frame is the codec's encoding of
//! [`Control::Probe`] behind a 5-byte chunk header; a registry or child-table message is the
//! codec's encoding plus [`DATA_OVERHEAD`] for ractor_cluster's envelope. ractor_cluster's own
//! session pings are not simulated (see the runtime-semantics chapter, "Scale").

use std::time::{Duration, Instant};

use super::node::Wire;
use super::{name, Class, Fault, Scenario, Sim, Violation};
use crate::membership::MemberState;
use crate::wire::{encode_control, Control};
use actor_core_base::codec;

/// Bytes added to a service message by ractor_cluster's envelope (a length prefix, the
/// target's id and the message's name) and the transport's chunk header, estimated.
pub const DATA_OVERHEAD: u64 = 40;

/// What a scale run simulates.
#[derive(Debug, Clone)]
pub struct ScaleScenario {
    /// Nodes in the formed cluster (one more joins later).
    pub nodes: usize,
    /// The seed of the run's random choices (delays, seeds, victims, ping orders).
    pub seed: u64,
    /// Time between two starts while the cluster forms.
    pub stagger: Duration,
    /// How long idle traffic is measured once the cluster has formed.
    pub idle_for: Duration,
    /// How long each phase may take before the run reports it as not converged.
    pub phase_limit: Duration,
}

impl ScaleScenario {
    /// `nodes` nodes with the default pacing: starts 5 ms apart, 5 s of idle, 30 s a phase.
    pub fn new(nodes: usize, seed: u64) -> Self {
        Self {
            nodes,
            seed,
            stagger: Duration::from_millis(5),
            idle_for: Duration::from_secs(5),
            phase_limit: Duration::from_secs(30),
        }
    }
}

/// Traffic over a window, per node and second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    /// Messages sent per node per second (probes and service messages).
    pub msgs: f64,
    /// Bytes sent per node per second.
    pub bytes: f64,
    /// Of those, bytes of probe frames.
    pub probe_bytes: f64,
}

/// What a scale run measured (virtual time). `None`: the phase did not converge within the
/// scenario's `phase_limit`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleReport {
    /// Nodes in the formed cluster.
    pub nodes: usize,
    /// The run's seed.
    pub seed: u64,
    /// From the last start until every node had every other up and had synced its registry
    /// with it.
    pub formed_after: Option<Duration>,
    /// Traffic while idle.
    pub idle: Rate,
    /// From a new node's start until it and every node had each other up and synced.
    pub join_converged: Option<Duration>,
    /// Traffic from that start until convergence.
    pub join: Rate,
    /// From a crash until every live node had the victim down.
    pub crash_converged: Option<Duration>,
    /// From a freeze until every live node had the victim down.
    pub freeze_converged: Option<Duration>,
    /// Traffic from the crash until the freeze was seen everywhere.
    pub churn: Rate,
    /// Members taken down that were neither crashed nor frozen.
    pub false_downs: u64,
    /// Events processed.
    pub steps: u64,
    /// Real time the run took.
    pub wall: Duration,
}

/// Messages and bytes sent since the counters were last reset.
#[derive(Debug, Clone, Default)]
pub(super) struct Traffic {
    /// Whether bytes are counted (they cost an encoding per message).
    pub(super) bytes_on: bool,
    msgs: u64,
    bytes: u64,
    probe_bytes: u64,
}

impl Traffic {
    pub(super) fn count(&mut self, wire: &Wire) {
        self.msgs += 1;
        if !self.bytes_on {
            return;
        }
        let (len, probe) = match wire {
            Wire::Probe(probe, services) => {
                let c = Control::Probe {
                    probe: probe.clone(),
                    services: services.clone(),
                    // A wall clock of today's size (it costs its bytes).
                    wall_ns: 1_764_000_000_000_000_000,
                };
                (encode_control(&c).map(|b| b.len() as u64 + 5), true)
            }
            Wire::Reg(m) => (
                codec::encode(m).map(|b| b.len() as u64 + DATA_OVERHEAD),
                false,
            ),
            Wire::Sup(m) => (
                codec::encode(m).map(|b| b.len() as u64 + DATA_OVERHEAD),
                false,
            ),
        };
        let len = len.unwrap_or(0);
        self.bytes += len;
        if probe {
            self.probe_bytes += len;
        }
    }

    fn rate(&self, nodes: usize, over: Duration) -> Rate {
        let per = nodes.max(1) as f64 * over.as_secs_f64().max(1e-9);
        Rate {
            msgs: self.msgs as f64 / per,
            bytes: self.bytes as f64 / per,
            probe_bytes: self.probe_bytes as f64 / per,
        }
    }

    fn reset(&mut self) {
        *self = Self {
            bytes_on: self.bytes_on,
            ..Self::default()
        };
    }
}

/// Runs a scale scenario.
pub fn run_scale(sc: &ScaleScenario) -> Result<ScaleReport, Violation> {
    let wall = Instant::now();
    let n = sc.nodes.max(2);
    let mut sim = Sim::new(
        sc.seed,
        Scenario {
            class: Class::Join,
            nodes: n + 1,
            initial: 1,
            children: 0,
            faults_for: Duration::ZERO,
            settle_within: Duration::ZERO,
        },
    );
    sim.traffic.bytes_on = true;
    for i in 0..n {
        sim.push(sc.stagger * i as u32, 0, super::Ev::Fault(Fault::Start(i)));
    }
    let last_start = sc.stagger * (n as u32 - 1);
    sim.run_for(last_start)?;
    let check = Duration::from_millis(10);
    let formed_after = sim.run_until(sc.phase_limit, check, |s| formed(s, n))?;

    sim.traffic.reset();
    sim.run_for(sc.idle_for)?;
    let idle = sim.traffic.rate(n, sc.idle_for);

    // A join through one live seed.
    sim.traffic.reset();
    let t0 = sim.now;
    sim.fault(Fault::Start(n))?;
    let join_converged = sim.run_until(sc.phase_limit, check, |s| joined(s, n))?;
    let join = sim.traffic.rate(n + 1, sim.now.saturating_sub(t0));

    // A crash, then a freeze, of two nodes picked at random.
    sim.traffic.reset();
    let t0 = sim.now;
    let crashed = sim.rng.range(0, n as u64 + 1) as usize;
    sim.fault(Fault::Crash(crashed))?;
    let crash_converged = sim.run_until(sc.phase_limit, check, |s| seen_down(s, crashed))?;
    let frozen = (crashed + 1 + sim.rng.range(0, n as u64) as usize) % (n + 1);
    sim.fault(Fault::Freeze(frozen))?;
    let freeze_converged = sim.run_until(sc.phase_limit, check, |s| seen_down(s, frozen))?;
    let churn = sim.traffic.rate(n - 1, sim.now.saturating_sub(t0));

    let victims = [name(crashed), name(frozen)];
    let false_downs = sim
        .nodes()
        .flat_map(|(_, node)| node.downs.iter())
        .filter(|d| !victims.contains(d))
        .count() as u64;
    Ok(ScaleReport {
        nodes: n,
        seed: sc.seed,
        formed_after,
        idle,
        join_converged,
        join,
        crash_converged,
        freeze_converged,
        churn,
        false_downs,
        steps: sim.step,
        wall: wall.elapsed(),
    })
}

impl Sim {
    /// Processes events for `d` of virtual time.
    pub(super) fn run_for(&mut self, d: Duration) -> Result<(), Violation> {
        let end = self.now + d;
        while self.queue.peek().is_some_and(|q| q.0.at <= end) {
            let Some(std::cmp::Reverse(q)) = self.queue.pop() else {
                break;
            };
            self.now = q.at;
            self.step += 1;
            self.handle(q)?;
        }
        self.now = end;
        Ok(())
    }

    /// Processes events until `cond` holds (checked every `every` of virtual time), for at
    /// most `limit`. Returns how long it took.
    pub(super) fn run_until(
        &mut self,
        limit: Duration,
        every: Duration,
        cond: impl Fn(&Sim) -> bool,
    ) -> Result<Option<Duration>, Violation> {
        let start = self.now;
        while self.now < start + limit {
            if cond(self) {
                return Ok(Some(self.now - start));
            }
            self.run_for(every)?;
        }
        Ok(cond(self).then(|| self.now - start))
    }
}

/// Every one of the first `n` nodes has every other up and has synced its registry with it.
fn formed(sim: &Sim, n: usize) -> bool {
    (0..n).all(|i| {
        sim.slots
            .get(i)
            .and_then(|s| s.node.as_ref())
            .is_some_and(|node| {
                node.membership.up_count() == n - 1
                    && (0..n)
                        .filter(|&j| j != i)
                        .all(|j| node.registry.is_synced_with(&name(j)))
            })
    })
}

/// The newcomer `k` and every other node have each other up and synced.
fn joined(sim: &Sim, k: usize) -> bool {
    let newcomer = name(k);
    let Some(me) = sim.slots.get(k).and_then(|s| s.node.as_ref()) else {
        return false;
    };
    me.membership.up_count() == k
        && sim.nodes().filter(|(i, _)| *i != k).all(|(i, node)| {
            let other = name(i);
            node.membership.member_state(&newcomer) == Some(MemberState::Up)
                && node.registry.is_synced_with(&newcomer)
                && me.registry.is_synced_with(&other)
        })
}

/// Every live node other than `victim` (and not frozen) has it down.
fn seen_down(sim: &Sim, victim: usize) -> bool {
    let v = name(victim);
    sim.nodes()
        .filter(|(i, _)| *i != victim && !sim.slots.get(*i).is_some_and(|s| s.frozen))
        .all(|(_, node)| {
            !matches!(
                node.membership.member_state(&v),
                Some(MemberState::Up | MemberState::Suspect)
            )
        })
}
