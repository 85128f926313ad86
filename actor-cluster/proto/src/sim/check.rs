//! The simulator's invariants over the whole cluster.

use std::collections::{BTreeMap, BTreeSet};

use super::{name, Sim};
use crate::supervisor::ChildStatus;

/// Whether node `i` has met every other live node: up in its membership, known to its
/// supervisor, synced in its registry, and not cut off from it.
pub(super) fn met_everyone(sim: &Sim, i: usize) -> bool {
    let Some(me) = sim.slots.get(i).and_then(|s| s.node.as_ref()) else {
        return false;
    };
    let up = me.up();
    let eligible: BTreeSet<String> = me.sup.eligible_members().into_iter().collect();
    sim.nodes().filter(|(j, _)| *j != i).all(|(j, _)| {
        let n = name(j);
        !sim.cut(i, j) && up.contains(&n) && eligible.contains(&n) && me.registry.is_synced_with(&n)
    })
}

/// The end state: membership stable and every child run exactly once, registered where it
/// runs, with the same table and registry on every node. `Err` says what does not hold yet.
pub(super) fn settled(sim: &Sim) -> Result<(), String> {
    let live: Vec<usize> = sim.nodes().map(|(i, _)| i).collect();
    if live.is_empty() {
        return Ok(());
    }
    for &i in &live {
        if sim.slots.get(i).is_some_and(|s| s.frozen) {
            return Err(format!("{} is frozen", name(i)));
        }
        if !met_everyone(sim, i) {
            return Err(format!(
                "{} has not met every member: {}",
                name(i),
                unmet(sim, i)
            ));
        }
    }
    let mut tables = sim.nodes().map(|(i, n)| {
        // Tombstones aside: each node collects its own when it may.
        let rows: BTreeMap<String, ChildStatus> = n
            .sup
            .table()
            .rows()
            .filter(|r| r.status != ChildStatus::Removed)
            .map(|r| (r.spec.id.clone(), r.status.clone()))
            .collect();
        (i, rows)
    });
    let Some((first, table)) = tables.next() else {
        return Ok(());
    };
    for (i, t) in tables {
        if t != table {
            let diff: Vec<String> = t
                .iter()
                .filter(|(k, v)| table.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}: {v:?} vs {:?}", table.get(k)))
                .chain(
                    table
                        .iter()
                        .filter(|(k, _)| !t.contains_key(*k))
                        .map(|(k, v)| format!("{k}: only {v:?} on the first")),
                )
                .take(3)
                .collect();
            return Err(format!(
                "the child tables of {} and {} differ: {diff:?}",
                name(first),
                name(i)
            ));
        }
    }
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, n) in sim.nodes() {
        for c in &n.children {
            runs.entry(c.clone()).or_default().push(name(i));
        }
    }
    for (id, status) in &table {
        let on = runs.get(id).map(Vec::as_slice).unwrap_or_default();
        match status {
            ChildStatus::Live if on.len() != 1 => {
                return Err(format!("live child {id} runs on {on:?}"));
            }
            ChildStatus::Removed | ChildStatus::Failed { .. } if !on.is_empty() => {
                return Err(format!("child {id} ({status:?}) still runs on {on:?}"));
            }
            _ => {}
        }
    }
    if let Some(stray) = runs.keys().find(|id| !table.contains_key(*id)) {
        return Err(format!("{stray} runs but has no live row"));
    }
    if let Some(back) = sim
        .collected_ids
        .iter()
        .find(|id| table.get(*id) == Some(&ChildStatus::Live))
    {
        return Err(format!(
            "child {back} is live again after its tombstone was collected"
        ));
    }
    let expected: BTreeMap<String, String> = runs
        .iter()
        .filter_map(|(id, on)| on.first().map(|n| (id.clone(), n.clone())))
        .collect();
    for (i, n) in sim.nodes() {
        let located = n.located();
        if located != expected {
            let missing: Vec<&String> = expected
                .iter()
                .filter(|(k, v)| located.get(*k) != Some(*v))
                .map(|(k, _)| k)
                .collect();
            return Err(format!(
                "the registry of {} differs from where children run (e.g. {missing:?})",
                name(i)
            ));
        }
    }
    Ok(())
}

/// Why node `i` has not met every member (for violation reports).
fn unmet(sim: &Sim, i: usize) -> String {
    let Some(me) = sim.slots.get(i).and_then(|s| s.node.as_ref()) else {
        return String::new();
    };
    let up = me.up();
    let eligible: BTreeSet<String> = me.sup.eligible_members().into_iter().collect();
    sim.nodes()
        .filter(|(j, _)| *j != i)
        .filter_map(|(j, _)| {
            let n = name(j);
            let why = [
                (sim.cut(i, j), "cut off"),
                (!up.contains(&n), "not up in membership"),
                (!eligible.contains(&n), "not in the supervisor"),
                (!me.registry.is_synced_with(&n), "registry not synced"),
            ];
            let why: Vec<&str> = why.iter().filter(|w| w.0).map(|w| w.1).collect();
            (!why.is_empty()).then(|| format!("{n} {}", why.join(", ")))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
