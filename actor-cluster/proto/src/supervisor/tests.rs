//! The supervisor core's own rules, driven without a network.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::Now;

fn at(base: Instant, ms: u64) -> Now {
    Now {
        mono: base + Duration::from_millis(ms),
        wall_ns: 1_000_000 + ms * 1_000_000,
    }
}

fn hello(node: &str) -> SupPeerMsg {
    SupPeerMsg::Hello {
        node: node.into(),
        kinds: vec!["w".into()],
        ask: false,
        members: vec![node.into()],
    }
}

#[test]
fn a_node_that_regains_a_majority_waits_the_restart_delay_before_starting() {
    let quorum = Quorum {
        members: ["a", "b", "c"].into_iter().map(String::from).collect(),
        restart_delay: Duration::from_secs(3),
    };
    let mut core = SupervisorCore::new("a", ["w".to_owned()], Arc::new(quorum), false);
    let reg: BTreeMap<String, String> = BTreeMap::new();
    let base = Instant::now();
    let _ = core.on_member_up(at(base, 0), "b");
    let _ = core.on_peer(at(base, 1), hello("b"));
    let _ = core.reconcile(at(base, 2), &reg);
    assert!(
        !core.is_holding(at(base, 2), &reg),
        "a majority from the start"
    );
    // b goes: no majority (a alone of three).
    core.on_member_down(at(base, 100), "b");
    let _ = core.reconcile(at(base, 100), &reg);
    // Long after the hold of b's going, c comes: a majority again, as a node that came up on
    // both sides of a split may make it for a moment. a waits before starting anything.
    let _ = core.on_member_up(at(base, 10_000), "c");
    let _ = core.on_peer(at(base, 10_001), hello("c"));
    let _ = core.reconcile(at(base, 10_002), &reg);
    assert!(core.is_holding(at(base, 10_002), &reg));
    assert!(core.is_holding(at(base, 12_900), &reg));
    assert!(!core.is_holding(at(base, 13_100), &reg));
}

fn starts(effects: &[SupEffect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            SupEffect::Start { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn below_min_members_nothing_starts_and_starts_are_refused() {
    let mut core =
        SupervisorCore::new("a", ["w".to_owned()], Arc::new(Uniform), false).with_min_members(2);
    let reg: BTreeMap<String, String> = BTreeMap::new();
    let base = Instant::now();
    let spec = DistChildSpec::new("c1", "w", vec![]);
    assert_eq!(
        core.put(at(base, 0), vec![spec.clone()], 0).err(),
        Some(SupRefusal::TooFewMembers { have: 1, need: 2 })
    );
    let _ = core.on_member_up(at(base, 1), "b");
    let _ = core.on_peer(at(base, 2), hello("b"));
    assert!(core.put(at(base, 3), vec![spec], 0).is_ok());
    // b goes: a alone again starts nothing, even a child that nobody runs.
    core.on_member_down(at(base, 10), "b");
    let effects = core.reconcile(at(base, 60_000), &reg);
    assert!(starts(&effects).is_empty(), "{effects:?}");
}

#[test]
fn start_or_get_reports_an_id_that_already_runs_and_whether_its_args_differ() {
    let mut core = SupervisorCore::new("a", ["w".to_owned()], Arc::new(Uniform), false);
    let base = Instant::now();
    let (first, _) = core
        .start_or_get(at(base, 0), DistChildSpec::new("c1", "w", vec![1]), 0)
        .expect("a lone node has a quorum");
    assert_eq!(first, PutOutcome::Created);
    let (same, effects) = core
        .start_or_get(at(base, 1), DistChildSpec::new("c1", "w", vec![1]), 0)
        .expect("put");
    assert_eq!(same, PutOutcome::AlreadyStarted { args_differ: false });
    assert!(effects.is_empty());
    let (other, _) = core
        .start_or_get(at(base, 2), DistChildSpec::new("c1", "w", vec![2]), 0)
        .expect("put");
    assert_eq!(other, PutOutcome::AlreadyStarted { args_differ: true });
    assert_eq!(
        core.table().get("c1").map(|r| r.spec.args.clone()),
        Some(vec![1])
    );
}

#[test]
fn a_temporary_child_whose_node_went_away_is_removed_and_a_permanent_one_restarted() {
    let mut core = SupervisorCore::new("a", ["w".to_owned()], Arc::new(Uniform), false);
    let base = Instant::now();
    let _ = core.on_member_up(at(base, 0), "b");
    let _ = core.on_peer(at(base, 1), hello("b"));
    let temp = DistChildSpec::new("t", "w", vec![]).restart(RestartType::Temporary);
    let perm = DistChildSpec::new("p", "w", vec![]);
    assert!(core.put(at(base, 2), vec![temp, perm], 0).is_ok());
    // Both run on b.
    let mut reg: BTreeMap<String, String> = BTreeMap::new();
    reg.insert("t".into(), "b".into());
    reg.insert("p".into(), "b".into());
    let before = core.reconcile(at(base, 3), &reg);
    assert!(starts(&before).is_empty(), "{before:?}");
    // b dies: its registrations go with it.
    reg.clear();
    core.on_unregistered("t", "b");
    core.on_unregistered("p", "b");
    core.on_member_down(at(base, 100), "b");
    let effects = core.reconcile(at(base, 101), &reg);
    assert_eq!(starts(&effects), vec!["p".to_owned()], "{effects:?}");
    assert!(effects.iter().any(|e| matches!(
        e,
        SupEffect::Event(SupEvent::Dropped { id, node }) if id == "t" && node == "b"
    )));
    assert_eq!(
        core.table().get("t").map(|r| r.status.clone()),
        Some(ChildStatus::Removed)
    );
    // The removal travels to the peers like any other row change.
    assert!(effects.iter().any(|e| matches!(e, SupEffect::Broadcast(_))));
    // And nothing revives it later.
    let later = core.reconcile(at(base, 10_000), &reg);
    assert!(!starts(&later).contains(&"t".to_owned()), "{later:?}");
}

#[test]
fn a_temporary_child_that_moves_between_live_nodes_is_started_on_its_new_node() {
    let mut core = SupervisorCore::new("a", ["w".to_owned()], Arc::new(Uniform), false);
    let base = Instant::now();
    let _ = core.on_member_up(at(base, 0), "b");
    let _ = core.on_peer(at(base, 1), hello("b"));
    let temp = DistChildSpec::new("t", "w", vec![]).restart(RestartType::Temporary);
    assert!(core.put(at(base, 2), vec![temp], 0).is_ok());
    // Its registration went away from b, which is still a member (a handoff): not lost.
    core.on_unregistered("t", "b");
    let reg: BTreeMap<String, String> = BTreeMap::new();
    let effects = core.reconcile(at(base, 3), &reg);
    assert_eq!(
        core.table().get("t").map(|r| r.status.clone()),
        Some(ChildStatus::Live),
        "{effects:?}"
    );
}

#[test]
fn a_temporary_child_placed_on_a_node_that_died_before_it_was_seen_registered_is_removed() {
    let mut core = SupervisorCore::new("a", ["w".to_owned()], Arc::new(Uniform), false);
    let base = Instant::now();
    let _ = core.on_member_up(at(base, 0), "b");
    let _ = core.on_peer(at(base, 1), hello("b"));
    let specs: Vec<DistChildSpec> = (0..20)
        .map(|i| DistChildSpec::new(format!("t{i}"), "w", vec![]).restart(RestartType::Temporary))
        .collect();
    assert!(core.put(at(base, 2), specs, 0).is_ok());
    let on_b: Vec<String> = core
        .table()
        .live()
        .filter(|r| r.spec.pinned.as_deref() == Some("b"))
        .map(|r| r.spec.id.clone())
        .collect();
    assert!(
        !on_b.is_empty() && on_b.len() < 20,
        "placed on both: {on_b:?}"
    );
    // b dies before its registrations of them reached a (no `on_unregistered`).
    core.on_member_down(at(base, 100), "b");
    let reg: BTreeMap<String, String> = BTreeMap::new();
    let effects = core.reconcile(at(base, 101), &reg);
    let started = starts(&effects);
    for id in &on_b {
        assert!(!started.contains(id), "{id} restarted: {effects:?}");
        assert_eq!(
            core.table().get(id).map(|r| r.status.clone()),
            Some(ChildStatus::Removed)
        );
    }
    // Its own are started as usual.
    assert_eq!(started.len(), 20 - on_b.len(), "{effects:?}");
}

/// Cores that exchange every message at once, except with the nodes in `cut`.
struct Mesh {
    cores: BTreeMap<String, SupervisorCore>,
    cut: std::collections::BTreeSet<String>,
}

impl Mesh {
    fn new(names: &[&str]) -> Self {
        let mut mesh = Mesh {
            cores: names
                .iter()
                .map(|n| {
                    let core = SupervisorCore::new(*n, ["w".to_owned()], Arc::new(Uniform), false);
                    (n.to_string(), core)
                })
                .collect(),
            cut: Default::default(),
        };
        let now = at(Instant::now(), 0);
        for a in names {
            for b in names.iter().filter(|b| *b != a) {
                let out = mesh.core(a).on_member_up(now, b);
                mesh.deliver(now, a, out);
            }
        }
        mesh
    }

    fn core(&mut self, n: &str) -> &mut SupervisorCore {
        self.cores.get_mut(n).unwrap()
    }

    fn deliver(&mut self, now: Now, from: &str, effects: Vec<SupEffect>) {
        let mut queue: Vec<(String, String, SupPeerMsg)> = Vec::new();
        let names: Vec<String> = self.cores.keys().cloned().collect();
        let push = |from: &str, effects: Vec<SupEffect>, q: &mut Vec<_>| {
            for e in effects {
                match e {
                    SupEffect::Broadcast(m) => {
                        for n in names.iter().filter(|n| *n != from) {
                            q.push((from.to_owned(), n.clone(), m.clone()));
                        }
                    }
                    SupEffect::Send(n, m) => q.push((from.to_owned(), n, m)),
                    _ => {}
                }
            }
        };
        push(from, effects, &mut queue);
        while !queue.is_empty() {
            for (from, to, m) in std::mem::take(&mut queue) {
                if self.cut.contains(&from) || self.cut.contains(&to) {
                    continue;
                }
                let out = self.core(&to).on_peer(now, m);
                push(&to, out, &mut queue);
            }
        }
    }

    /// Every core ticks `n` times, 500 ms apart, from `ms`.
    fn ticks(&mut self, base: Instant, ms: u64, n: u64) {
        let reg: BTreeMap<String, String> = BTreeMap::new();
        for k in 0..n {
            let now = at(base, ms + k * 500);
            let names: Vec<String> = self.cores.keys().cloned().collect();
            for name in names {
                let out = self.core(&name).tick(now, &reg);
                self.deliver(now, &name, out);
            }
        }
    }

    fn tombstones(&self) -> Vec<usize> {
        self.cores
            .values()
            .map(|c| c.table().tombstone_count())
            .collect()
    }
}

#[test]
fn a_tombstone_goes_once_every_member_has_seen_it_and_a_stale_copy_of_its_row_stays_out() {
    let base = Instant::now();
    let mut mesh = Mesh::new(&["a", "b", "c"]);
    let spec = DistChildSpec::new("x", "w", vec![]);
    let out = mesh.core("a").put(at(base, 10), vec![spec], 0).unwrap();
    mesh.deliver(at(base, 10), "a", out);
    let stale = mesh.core("c").table().get("x").cloned().unwrap();
    assert_eq!(stale.status, ChildStatus::Live);
    // c is cut off: it never hears of the termination.
    mesh.cut.insert("c".into());
    let out = mesh.core("a").terminate(at(base, 20), "x").unwrap();
    mesh.deliver(at(base, 20), "a", out);
    mesh.ticks(base, 100, 12);
    assert_eq!(
        mesh.tombstones(),
        vec![1, 1, 0],
        "c has not seen it: a and b keep it"
    );
    // c hears of it (a repair); then everyone collects it.
    mesh.cut.clear();
    let summary = mesh.core("a").table_summary();
    let out = mesh
        .core("c")
        .on_table_summary(at(base, 7_000), "a", summary);
    mesh.deliver(at(base, 7_000), "c", out);
    assert_eq!(
        mesh.core("c").table().get("x").unwrap().status,
        ChildStatus::Removed
    );
    mesh.ticks(base, 7_100, 12);
    assert_eq!(mesh.tombstones(), vec![0, 0, 0]);
    assert!(mesh.cores.values().all(|c| c.table().get("x").is_none()));
    assert_eq!(mesh.core("a").tombstones_collected(), 1);
    // The live row c had before comes back in a copy of a table: it is not merged.
    let part = SupPeerMsg::Table(crate::replication::SyncMsg::Part {
        from: "c".into(),
        part: TablePart {
            rows: vec![stale],
            index: 0,
            total: 1,
            seen: Vec::new(),
        },
    });
    let _ = mesh.core("a").on_peer(at(base, 14_000), part);
    assert!(
        mesh.core("a").table().get("x").is_none(),
        "the collected child came back"
    );
}

#[test]
fn a_member_that_went_down_without_leaving_holds_tombstones_for_the_hold_time() {
    let base = Instant::now();
    let mut mesh = Mesh::new(&["a", "b"]);
    let spec = DistChildSpec::new("x", "w", vec![]);
    let out = mesh.core("a").put(at(base, 10), vec![spec], 0).unwrap();
    mesh.deliver(at(base, 10), "a", out);
    mesh.ticks(base, 100, 4);
    // b goes down (it may come back with its table), then a terminates x.
    mesh.cut.insert("b".into());
    mesh.core("a").on_member_down(at(base, 2_000), "b");
    let out = mesh.core("a").terminate(at(base, 2_100), "x").unwrap();
    mesh.deliver(at(base, 2_100), "a", out);
    mesh.ticks(base, 2_200, 12);
    assert_eq!(mesh.core("a").table().tombstone_count(), 1);
    let after = 2_000 + gc::TOMBSTONE_HOLD.as_millis() as u64;
    mesh.ticks(base, after, 4);
    assert_eq!(mesh.core("a").table().tombstone_count(), 0);

    // A member that leaves gracefully holds nothing.
    let mut mesh = Mesh::new(&["a", "b"]);
    let spec = DistChildSpec::new("y", "w", vec![]);
    let out = mesh.core("a").put(at(base, 10), vec![spec], 0).unwrap();
    mesh.deliver(at(base, 10), "a", out);
    let _ = mesh
        .core("a")
        .on_peer(at(base, 1_000), SupPeerMsg::Leaving("b".into()));
    mesh.cut.insert("b".into());
    mesh.core("a").on_member_down(at(base, 1_100), "b");
    let out = mesh.core("a").terminate(at(base, 1_200), "y").unwrap();
    mesh.deliver(at(base, 1_200), "a", out);
    mesh.ticks(base, 1_300, 4);
    assert_eq!(mesh.core("a").table().tombstone_count(), 0);
}
