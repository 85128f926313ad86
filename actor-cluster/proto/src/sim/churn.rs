//! Churn runs: three nodes start and terminate short-lived children in waves, for as many
//! children as asked (a million, say), and the replicated state is sampled as it goes: the
//! child table's rows, its tombstones and their encoded bytes, and the registry's names, on
//! every node. With tombstones collected the state stays flat; without, it grows by one row
//! per child ever started.

use std::time::{Duration, Instant};

use super::node::KIND;
use super::{Class, Fault, Scenario, Sim, Violation};
use crate::supervisor::DistChildSpec;
use actor_core_base::codec;

/// What a churn run simulates.
#[derive(Debug, Clone)]
pub struct ChurnScenario {
    /// Children started (and terminated) in all.
    pub children: u64,
    /// Children started per wave; the wave's children are terminated a second later.
    pub wave: u64,
    /// A sample every this many waves.
    pub sample_every: u64,
    /// The seed of the run's random choices.
    pub seed: u64,
}

/// The replicated state at one moment, the largest over the three nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnSample {
    /// Children started so far.
    pub started: u64,
    /// Rows of the child table, tombstones included.
    pub rows: usize,
    /// Of those, tombstones.
    pub tombstones: usize,
    /// The rows' encoded size, in bytes.
    pub row_bytes: usize,
    /// Names in the registry.
    pub names: usize,
    /// Tombstones collected so far, summed over the nodes.
    pub collected: u64,
}

/// What a churn run measured.
#[derive(Debug, Clone)]
pub struct ChurnReport {
    /// The samples, in order.
    pub samples: Vec<ChurnSample>,
    /// Real time the run took.
    pub wall: Duration,
}

/// Runs a churn scenario.
pub fn run_churn(sc: &ChurnScenario) -> Result<ChurnReport, Violation> {
    let wall = Instant::now();
    let mut sim = Sim::new(
        sc.seed,
        Scenario {
            class: Class::Join,
            nodes: 3,
            initial: 3,
            children: 0,
            faults_for: Duration::ZERO,
            settle_within: Duration::ZERO,
        },
    );
    for i in 0..3 {
        sim.push(
            Duration::from_millis(i * 37),
            0,
            super::Ev::Fault(Fault::Start(i as usize)),
        );
    }
    sim.run_for(Duration::from_secs(3))?;
    let mut samples = Vec::new();
    let mut started = 0;
    let mut wave = 0;
    while started < sc.children {
        let n = sc.wave.min(sc.children - started);
        let ids: Vec<String> = (started..started + n).map(|k| format!("w{k}")).collect();
        started += n;
        let on = (wave % 3) as usize;
        sim.churn_put(on, &ids)?;
        sim.run_for(Duration::from_secs(1))?;
        sim.churn_terminate((on + 1) % 3, &ids)?;
        sim.run_for(Duration::from_secs(1))?;
        wave += 1;
        if wave % sc.sample_every.max(1) == 0 || started >= sc.children {
            samples.push(sample(&sim, started));
        }
    }
    // The last wave's tombstones go too.
    sim.run_for(Duration::from_secs(5))?;
    samples.push(sample(&sim, started));
    Ok(ChurnReport {
        samples,
        wall: wall.elapsed(),
    })
}

fn sample(sim: &Sim, started: u64) -> ChurnSample {
    let mut s = ChurnSample {
        started,
        rows: 0,
        tombstones: 0,
        row_bytes: 0,
        names: 0,
        collected: 0,
    };
    for (_, n) in sim.nodes() {
        let t = n.sup.table();
        s.rows = s.rows.max(t.len());
        s.tombstones = s.tombstones.max(t.tombstone_count());
        let bytes = t
            .rows()
            .map(|r| codec::encode(r).map(|b| b.len()).unwrap_or(0))
            .sum();
        s.row_bytes = s.row_bytes.max(bytes);
        s.names = s.names.max(n.registry.state().winners().len());
        s.collected += n.sup.tombstones_collected();
    }
    s
}

impl Sim {
    fn churn_put(&mut self, i: usize, ids: &[String]) -> Result<(), Violation> {
        let specs = ids
            .iter()
            .map(|id| DistChildSpec::new(id.clone(), KIND, Vec::new()))
            .collect();
        let sample = self.rng.next_u64();
        let now = self.at(i);
        let mut out = Vec::new();
        if let Some(n) = self.slots.get_mut(i).and_then(|s| s.node.as_mut()) {
            if let Ok(effects) = n.sup.put(now, specs, sample) {
                n.sup_effects(now, effects, &mut out);
                n.settle(now, &mut out);
            }
        }
        self.outputs(i, out)
    }

    fn churn_terminate(&mut self, i: usize, ids: &[String]) -> Result<(), Violation> {
        let now = self.at(i);
        let mut out = Vec::new();
        if let Some(n) = self.slots.get_mut(i).and_then(|s| s.node.as_mut()) {
            for id in ids {
                if let Ok(effects) = n.sup.terminate(now, id) {
                    n.sup_effects(now, effects, &mut out);
                }
            }
            n.settle(now, &mut out);
        }
        self.outputs(i, out)
    }
}
