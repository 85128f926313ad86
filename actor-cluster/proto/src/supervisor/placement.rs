//! Placement: where each child runs, as a pure function of (child, live eligible members), and
//! the reconciliation that turns a node's view into starts, stops and moves.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::table::{ChildStatus, ChildTable, DistChildSpec};
use super::RegistryView;

/// Where children run: a pure function of (child, live eligible members).
pub trait Placement: Send + Sync + 'static {
    /// The node (among `candidates`, sorted, non-empty) that should run `spec`.
    fn place(&self, spec: &DistChildSpec, candidates: &[String]) -> Option<String>;

    /// Whether a node that sees `live` (itself included) may run children at all.
    fn has_quorum(&self, live: &[String]) -> bool {
        let _ = live;
        true
    }

    /// How long after a member goes down its children wait before they are restarted
    /// elsewhere (quorum placement waits for the minority to stop).
    fn restart_delay(&self) -> Duration {
        Duration::ZERO
    }

    /// Whether the node that starts a child picks its node at random (then pinned).
    fn is_random(&self) -> bool {
        false
    }

    /// The members that grant leases and the lease's length, if children run only under a
    /// lease (see [`super::lease`]).
    fn lease(&self) -> Option<(BTreeSet<String>, Duration)> {
        None
    }
}

/// 64-bit FNV-1a, then a finalizer: stable across processes and builds.
pub(crate) fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Rendezvous (highest random weight) hashing over the live eligible members: uniform, and a
/// join or a leave moves only the children of the node that arrived or left.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uniform;

fn rendezvous(id: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .max_by_key(|n| (hash(&[id, n]), n.as_str()))
        .cloned()
}

impl Placement for Uniform {
    fn place(&self, spec: &DistChildSpec, candidates: &[String]) -> Option<String> {
        rendezvous(&spec.id, candidates)
    }
}

/// A random node, chosen when the child is first started and kept while that node lives; after
/// it dies, the child is placed by hashing.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomPlacement;

impl Placement for RandomPlacement {
    fn place(&self, spec: &DistChildSpec, candidates: &[String]) -> Option<String> {
        match &spec.pinned {
            Some(p) if candidates.contains(p) => Some(p.clone()),
            _ => rendezvous(&spec.id, candidates),
        }
    }

    fn is_random(&self) -> bool {
        true
    }
}

/// Quorum: only a node that sees a strict majority of the configured members (itself included)
/// runs children; a node without a majority stops its children and refuses new ones. After a
/// member goes down, its children wait `restart_delay` (longer than the minority needs to notice
/// and stop them) before they are restarted, so their lifetimes never overlap.
#[derive(Debug, Clone)]
pub struct Quorum {
    /// The configured members (static, as Horde's maintainers recommend).
    pub members: BTreeSet<String>,
    /// Wait before restarting a down member's children.
    pub restart_delay: Duration,
}

impl Placement for Quorum {
    fn place(&self, spec: &DistChildSpec, candidates: &[String]) -> Option<String> {
        rendezvous(&spec.id, candidates)
    }

    fn has_quorum(&self, live: &[String]) -> bool {
        let seen = live.iter().filter(|n| self.members.contains(*n)).count();
        seen * 2 > self.members.len()
    }

    fn restart_delay(&self) -> Duration {
        self.restart_delay
    }

    /// Half the restart delay: the other half is the margin for the spread of failure
    /// detection across the majority.
    fn lease(&self) -> Option<(BTreeSet<String>, Duration)> {
        Some((self.members.clone(), self.restart_delay / 2))
    }
}

/// What this node must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start this child here.
    Start(String),
    /// Stop this local child (it no longer belongs here).
    Stop(String),
    /// Hand this local child to another node (active redistribution), then stop it.
    Move(String, String),
}

/// The inputs of a reconciliation.
pub struct View<'a> {
    /// This node.
    pub me: &'a str,
    /// Live members that can run children, with the kinds each knows (this node included).
    pub members: &'a BTreeMap<String, BTreeSet<String>>,
    /// Where each child is registered (the supervisor's registry).
    pub located: &'a dyn RegistryView,
    /// Children running on this node.
    pub running: &'a BTreeSet<String>,
    /// Children this node may not start yet (their node went down less than `restart_delay`
    /// ago).
    pub held: &'a BTreeSet<String>,
    /// Move children whose placement is another node (active redistribution).
    pub active: bool,
    /// This node holds its lease, or runs without one: false, it runs nothing.
    pub leased: bool,
}

/// Decides what this node starts, stops and moves.
pub fn reconcile(table: &ChildTable, placement: &dyn Placement, v: &View<'_>) -> Vec<Decision> {
    let mut out = Vec::new();
    let live_names: Vec<String> = v.members.keys().cloned().collect();
    let quorum = placement.has_quorum(&live_names) && v.leased;
    for id in v.running {
        match table.get(id) {
            Some(row) if row.status == ChildStatus::Live && quorum => {
                if v.active {
                    let cands = candidates(v.members, &row.spec.kind);
                    if let Some(target) = placement.place(&row.spec, &cands) {
                        if target != v.me {
                            out.push(Decision::Move(id.clone(), target));
                        }
                    }
                }
            }
            _ => out.push(Decision::Stop(id.clone())),
        }
    }
    if !quorum {
        return out;
    }
    for row in table.live() {
        let id = &row.spec.id;
        if v.running.contains(id) || v.located.is_located(id) || v.held.contains(id) {
            continue;
        }
        let cands = candidates(v.members, &row.spec.kind);
        if placement.place(&row.spec, &cands).as_deref() == Some(v.me) {
            out.push(Decision::Start(id.clone()));
        }
    }
    out
}

/// Members that know `kind`, sorted.
pub fn candidates(members: &BTreeMap<String, BTreeSet<String>>, kind: &str) -> Vec<String> {
    let mut c: Vec<String> = members
        .iter()
        .filter(|(_, kinds)| kinds.contains(kind))
        .map(|(n, _)| n.clone())
        .collect();
    c.sort();
    c
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::super::table::Row;
    use super::*;
    use actor_core_base::hlc::Stamp;

    fn members(names: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
        names
            .iter()
            .map(|n| (n.to_string(), BTreeSet::from(["k".to_string()])))
            .collect()
    }

    fn table(n: usize) -> ChildTable {
        let mut t = ChildTable::default();
        for i in 0..n {
            let stamp = Stamp::at(i as u64 + 1, "a");
            t.merge(Row {
                spec: DistChildSpec::new(format!("c{i}"), "k", vec![]),
                status: ChildStatus::Live,
                stamp,
                dot: Default::default(),
            });
        }
        t
    }

    #[test]
    fn uniform_spreads_and_moves_little_on_join() {
        let t = table(3000);
        let three = members(&["a", "b", "c"]);
        let four = members(&["a", "b", "c", "d"]);
        let c3 = candidates(&three, "k");
        let c4 = candidates(&four, "k");
        let mut per = BTreeMap::new();
        let mut moved = 0;
        for r in t.live() {
            let p3 = Uniform.place(&r.spec, &c3).unwrap_or_default();
            let p4 = Uniform.place(&r.spec, &c4).unwrap_or_default();
            *per.entry(p3.clone()).or_insert(0) += 1;
            if p3 != p4 {
                moved += 1;
                assert_eq!(p4, "d", "a join only moves children to the new node");
            }
        }
        for n in ["a", "b", "c"] {
            let share = per[n] as f64 / 3000.0;
            assert!((0.28..0.39).contains(&share), "{n}: {share}");
        }
        let share = moved as f64 / 3000.0;
        assert!((0.2..0.3).contains(&share), "moved {share}");
    }

    #[test]
    fn each_node_starts_exactly_its_unlocated_children() {
        let t = table(300);
        let m = members(&["a", "b", "c"]);
        let located = BTreeMap::new();
        let none = BTreeSet::new();
        let mut started = BTreeSet::new();
        for me in ["a", "b", "c"] {
            let v = View {
                me,
                members: &m,
                located: &located,
                running: &none,
                held: &none,
                active: false,
                leased: true,
            };
            for d in reconcile(&t, &Uniform, &v) {
                match d {
                    Decision::Start(id) => assert!(started.insert(id), "started twice"),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(started.len(), 300);
    }

    #[test]
    fn located_and_held_children_are_left_alone_and_strays_stopped() {
        let mut t = table(2);
        let m = members(&["a"]);
        let located = BTreeMap::from([("c0".to_string(), "b".to_string())]);
        let held = BTreeSet::from(["c1".to_string()]);
        let running = BTreeSet::from(["gone".to_string()]);
        let v = View {
            me: "a",
            members: &m,
            located: &located,
            running: &running,
            held: &held,
            active: false,
            leased: true,
        };
        assert_eq!(
            reconcile(&t, &Uniform, &v),
            vec![Decision::Stop("gone".into())]
        );
        // A removed child that still runs here is stopped.
        let stamp = Stamp::at(1_000_000, "b");
        let mut row = t.get("c0").cloned().unwrap_or_else(|| unreachable!());
        row.status = ChildStatus::Removed;
        row.stamp = stamp;
        assert!(t.merge(row));
        let running = BTreeSet::from(["c0".to_string()]);
        let none = BTreeSet::new();
        let v = View {
            me: "a",
            members: &m,
            located: &BTreeMap::new(),
            running: &running,
            held: &none,
            active: false,
            leased: true,
        };
        assert_eq!(
            reconcile(&t, &Uniform, &v),
            vec![Decision::Stop("c0".into()), Decision::Start("c1".into())]
        );
    }

    #[test]
    fn without_quorum_a_node_stops_everything_and_starts_nothing() {
        let t = table(10);
        let q = Quorum {
            members: ["a", "b", "c"].iter().map(|s| s.to_string()).collect(),
            restart_delay: Duration::from_secs(2),
        };
        let alone = members(&["a"]);
        let running: BTreeSet<String> = ["c0", "c1"].iter().map(|s| s.to_string()).collect();
        let none = BTreeSet::new();
        let v = View {
            me: "a",
            members: &alone,
            located: &BTreeMap::new(),
            running: &running,
            held: &none,
            active: false,
            leased: true,
        };
        let d = reconcile(&t, &q, &v);
        assert_eq!(
            d,
            vec![Decision::Stop("c0".into()), Decision::Stop("c1".into())]
        );
        assert!(q.has_quorum(&["a".into(), "b".into()]));
        assert!(!q.has_quorum(&["a".into(), "x".into()]));
    }

    #[test]
    fn lww_rows_and_kinds_decide_eligibility() {
        let mut t = ChildTable::default();
        let s1 = Stamp::at(5, "a");
        let row = Row {
            spec: DistChildSpec::new("x", "special", vec![]),
            status: ChildStatus::Live,
            stamp: s1.clone(),
            dot: Default::default(),
        };
        assert!(t.merge(row.clone()));
        assert!(!t.merge(row.clone()), "same stamp: no change");
        let older = Row {
            status: ChildStatus::Removed,
            stamp: Stamp::at(4, "z"),
            ..row
        };
        assert!(!t.merge(older), "older stamp loses");
        let mut m = members(&["a", "b"]);
        m.insert("c".into(), BTreeSet::from(["special".to_string()]));
        assert_eq!(candidates(&m, "special"), vec!["c".to_string()]);
        assert!(candidates(&m, "unknown").is_empty());
    }
}
