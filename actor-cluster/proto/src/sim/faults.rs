//! The seeded schedule of faults and what each does to the simulated cluster.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use actor_core_base::supervision::ExitReason;

use super::node::{SimNode, KIND};
use super::{addr, name, Class, Ev, Fault, Sim, Violation};
use crate::supervisor::DistChildSpec;
use crate::NodeIdentity;

impl Sim {
    pub(super) fn schedule(&mut self) {
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
                Class::Faults => match self.rng.range(0, 9) {
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
                    7 => Fault::ChildCrash(victim),
                    _ => Fault::Terminate(victim),
                },
                Class::Quorum => match self.rng.range(0, 8) {
                    0 => Fault::Crash(victim),
                    1 => Fault::Start(victim),
                    2 => self.partition(sc.nodes),
                    3 => Fault::Heal,
                    4 => Fault::Terminate(victim),
                    5 => Fault::Freeze(victim),
                    6 => Fault::Thaw(victim),
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

    pub(super) fn partition(&mut self, n: usize) -> Fault {
        let size = self.rng.range(1, (n as u64).div_ceil(2)) as usize;
        let mut island = BTreeSet::new();
        while island.len() < size {
            island.insert(self.rng.range(0, n as u64) as usize);
        }
        Fault::Partition(island)
    }

    pub(super) fn fault(&mut self, f: Fault) -> Result<(), Violation> {
        // A frozen process runs nothing: its children cannot crash and it takes no request.
        if let Fault::ChildCrash(i) | Fault::PutChildren(i) | Fault::Terminate(i) = f {
            if self.slots.get(i).is_some_and(|s| s.frozen) {
                return Ok(());
            }
        }
        let counted = !matches!(f, Fault::PutChildren(_) | Fault::Terminate(_));
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
                let mut ids: Vec<u64> = (0..self.slots.len())
                    .flat_map(|j| self.open_between(i, j).collect::<Vec<_>>())
                    .collect();
                ids.sort_unstable();
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
            Fault::Terminate(i) => self.terminate_one(i)?,
        }
        if counted && self.now >= Duration::from_secs(5) {
            self.faults += 1;
            self.last_fault = self.now;
        }
        Ok(())
    }

    pub(super) fn start_node(&mut self, i: usize) {
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

    pub(super) fn put_children(&mut self, i: usize) -> Result<(), Violation> {
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

    /// Node `i` terminates one of the live children of its table, picked at random.
    pub(super) fn terminate_one(&mut self, i: usize) -> Result<(), Violation> {
        let pick = self.rng.next_u64();
        let now = self.at(i);
        let mut out = Vec::new();
        let Some(n) = self.slots.get_mut(i).and_then(|s| s.node.as_mut()) else {
            return Ok(());
        };
        let live: Vec<String> = n.sup.table().live().map(|r| r.spec.id.clone()).collect();
        let Some(id) = live
            .get((pick % live.len().max(1) as u64) as usize)
            .cloned()
        else {
            return Ok(());
        };
        if let Ok(effects) = n.sup.terminate(now, &id) {
            n.sup_effects(now, effects, &mut out);
            n.settle(now, &mut out);
        }
        self.outputs(i, out)
    }
}
