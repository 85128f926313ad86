//! The replicated data of a registry: every owner's registrations and the winner of each name.
//!
//! Every node is the only writer of its own registrations ("owner-authoritative" state, as in
//! Erlang's `pg`): it numbers its changes (a version per owner incarnation) and sends each change
//! to every node as a delta, plus a digest of its version from time to time so that a node that
//! missed a delta pulls the owner's full state. A node's replica is the union of every owner's
//! latest state. A name held by two owners (registered concurrently, or on both sides of a
//! partition) has one deterministic winner: the older registration (its hybrid-logical-clock
//! stamp, then the owner's incarnation). The loser's owner stops its actor.

use std::collections::{BTreeMap, HashMap};

use actor_core_base::hlc::Stamp;
use serde::{Deserialize, Serialize};

pub use crate::identity::Owner;

/// One registration as replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The registered name.
    pub name: String,
    /// When it was registered, on the owner's hybrid logical clock.
    pub stamp: Stamp,
    /// User metadata (opaque bytes).
    pub meta: Vec<u8>,
}

/// A change by one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The owner registered (or updated the metadata of) a name.
    Put(Registration),
    /// The owner unregistered a name.
    Remove(String),
}

/// A name's holder as seen by this replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The owner.
    pub owner: Owner,
    /// The registration.
    pub reg: Registration,
}

/// How the winner of a name changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The name.
    pub name: String,
    /// The winner before.
    pub before: Option<Holder>,
    /// The winner after.
    pub after: Option<Holder>,
}

/// A delta that does not follow the last version known of its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap;

#[derive(Debug, Clone, Default)]
struct OwnerState {
    version: u64,
    names: HashMap<String, Registration>,
}

fn older(a: &(Owner, Registration), b: &(Owner, Registration)) -> std::cmp::Ordering {
    (&a.1.stamp, &a.0.node, a.0.incarnation).cmp(&(&b.1.stamp, &b.0.node, b.0.incarnation))
}

/// One node's replica of a registry.
#[derive(Debug, Clone)]
pub struct RegistryCore {
    me: Owner,
    owners: BTreeMap<Owner, OwnerState>,
}

impl RegistryCore {
    /// An empty replica for node incarnation `me`.
    pub fn new(me: Owner) -> Self {
        let mut owners = BTreeMap::new();
        owners.insert(me.clone(), OwnerState::default());
        Self { me, owners }
    }

    /// This node.
    pub fn me(&self) -> &Owner {
        &self.me
    }

    /// The winner for `name`.
    pub fn winner(&self, name: &str) -> Option<Holder> {
        self.owners
            .iter()
            .filter_map(|(o, s)| s.names.get(name).map(|r| (o.clone(), r.clone())))
            .min_by(older)
            .map(|(owner, reg)| Holder { owner, reg })
    }

    /// Whether any owner holds `name`.
    pub fn is_held(&self, name: &str) -> bool {
        self.owners.values().any(|s| s.names.contains_key(name))
    }

    /// Every name with its winner.
    pub fn winners(&self) -> BTreeMap<String, Holder> {
        let mut out: BTreeMap<String, Holder> = BTreeMap::new();
        for (o, s) in &self.owners {
            for r in s.names.values() {
                let cand = (o.clone(), r.clone());
                match out.get(&r.name) {
                    Some(h) if older(&(h.owner.clone(), h.reg.clone()), &cand).is_le() => {}
                    _ => {
                        out.insert(
                            r.name.clone(),
                            Holder {
                                owner: cand.0,
                                reg: cand.1,
                            },
                        );
                    }
                }
            }
        }
        out
    }

    /// This node's own registrations.
    pub fn own(&self) -> (u64, Vec<Registration>) {
        let s = self.owners.get(&self.me).cloned().unwrap_or_default();
        (s.version, s.names.into_values().collect())
    }

    /// The version known of every owner, in owner order, without copying.
    pub fn versions_iter(&self) -> impl Iterator<Item = (&Owner, u64)> {
        self.owners.iter().map(|(o, s)| (o, s.version))
    }

    /// The version known of every owner.
    pub fn versions(&self) -> BTreeMap<Owner, u64> {
        self.owners
            .iter()
            .map(|(o, s)| (o.clone(), s.version))
            .collect()
    }

    fn names_of(&self, owner: &Owner) -> Vec<String> {
        self.owners
            .get(owner)
            .map(|s| s.names.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn track<F: FnOnce(&mut Self)>(&mut self, names: Vec<String>, f: F) -> Vec<Change> {
        let before: Vec<(String, Option<Holder>)> =
            names.iter().map(|n| (n.clone(), self.winner(n))).collect();
        f(self);
        before
            .into_iter()
            .filter_map(|(name, before)| {
                let after = self.winner(&name);
                (before != after).then_some(Change {
                    name,
                    before,
                    after,
                })
            })
            .collect()
    }

    /// Registers `name` on this node. Fails with the current holder if the name is taken.
    pub fn register_local(
        &mut self,
        name: &str,
        stamp: Stamp,
        meta: Vec<u8>,
    ) -> Result<(u64, Op, Vec<Change>), Holder> {
        if let Some(h) = self.winner(name) {
            return Err(h);
        }
        let reg = Registration {
            name: name.to_owned(),
            stamp,
            meta,
        };
        Ok(self.put_local(reg))
    }

    /// Updates the metadata of a name this node holds.
    pub fn update_meta_local(
        &mut self,
        name: &str,
        meta: Vec<u8>,
    ) -> Option<(u64, Op, Vec<Change>)> {
        let mut reg = self.owners.get(&self.me)?.names.get(name)?.clone();
        reg.meta = meta;
        Some(self.put_local(reg))
    }

    fn put_local(&mut self, reg: Registration) -> (u64, Op, Vec<Change>) {
        let me = self.me.clone();
        let op = Op::Put(reg.clone());
        let mut version = 0;
        let changes = self.track(vec![reg.name.clone()], |c| {
            let s = c.owners.entry(me).or_default();
            s.version += 1;
            version = s.version;
            s.names.insert(reg.name.clone(), reg);
        });
        (version, op, changes)
    }

    /// Unregisters a name this node holds.
    pub fn unregister_local(&mut self, name: &str) -> Option<(u64, Op, Vec<Change>)> {
        let me = self.me.clone();
        if !self.owners.get(&me)?.names.contains_key(name) {
            return None;
        }
        let mut version = 0;
        let changes = self.track(vec![name.to_owned()], |c| {
            if let Some(s) = c.owners.get_mut(&me) {
                s.names.remove(name);
                s.version += 1;
                version = s.version;
            }
        });
        Some((version, Op::Remove(name.to_owned()), changes))
    }

    /// Applies an owner's delta. A delta that skips versions is refused with [`Gap`] (pull the
    /// owner's full state); an old one is ignored.
    pub fn apply_delta(&mut self, owner: &Owner, version: u64, op: Op) -> Result<Vec<Change>, Gap> {
        if *owner == self.me {
            return Ok(Vec::new());
        }
        self.retire_older_incarnations(owner);
        let known = self.owners.get(owner).map(|s| s.version).unwrap_or(0);
        if version <= known {
            return Ok(Vec::new());
        }
        if version != known + 1 {
            return Err(Gap);
        }
        let name = match &op {
            Op::Put(r) => r.name.clone(),
            Op::Remove(n) => n.clone(),
        };
        let owner = owner.clone();
        Ok(self.track(vec![name], |c| {
            let s = c.owners.entry(owner).or_default();
            s.version = version;
            match op {
                Op::Put(r) => {
                    s.names.insert(r.name.clone(), r);
                }
                Op::Remove(n) => {
                    s.names.remove(&n);
                }
            }
        }))
    }

    /// Replaces what is known of an owner with its full state (if newer).
    pub fn apply_full(
        &mut self,
        owner: &Owner,
        version: u64,
        regs: Vec<Registration>,
    ) -> Vec<Change> {
        if *owner == self.me {
            return Vec::new();
        }
        self.retire_older_incarnations(owner);
        if self
            .owners
            .get(owner)
            .is_some_and(|s| s.version >= version && version > 0)
        {
            return Vec::new();
        }
        let mut names = self.names_of(owner);
        names.extend(regs.iter().map(|r| r.name.clone()));
        names.sort();
        names.dedup();
        let owner = owner.clone();
        self.track(names, |c| {
            c.owners.insert(
                owner,
                OwnerState {
                    version,
                    names: regs.into_iter().map(|r| (r.name.clone(), r)).collect(),
                },
            );
        })
    }

    /// Whether this replica is behind the owner's announced version.
    pub fn is_behind(&self, owner: &Owner, version: u64) -> bool {
        *owner != self.me && self.owners.get(owner).map(|s| s.version).unwrap_or(0) < version
    }

    /// Drops every registration of the node `node` (it went down or left).
    pub fn drop_node(&mut self, node: &str) -> Vec<Change> {
        let gone: Vec<Owner> = self
            .owners
            .keys()
            .filter(|o| o.node == node && **o != self.me)
            .cloned()
            .collect();
        let mut names: Vec<String> = gone.iter().flat_map(|o| self.names_of(o)).collect();
        names.sort();
        names.dedup();
        self.track(names, |c| {
            for o in &gone {
                c.owners.remove(o);
            }
        })
    }

    fn retire_older_incarnations(&mut self, owner: &Owner) {
        let old: Vec<Owner> = self
            .owners
            .keys()
            .filter(|o| o.node == owner.node && o.incarnation < owner.incarnation)
            .cloned()
            .collect();
        for o in old {
            self.owners.remove(&o);
        }
    }

    /// Of `names`, those this node holds but does not win: it must stop their actors and
    /// unregister them.
    pub fn lost_locally<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Vec<(String, Holder)> {
        let Some(mine) = self.owners.get(&self.me) else {
            return Vec::new();
        };
        names
            .into_iter()
            .filter(|n| mine.names.contains_key(*n))
            .filter_map(|n| {
                let w = self.winner(n)?;
                (w.owner != self.me).then(|| (n.clone(), w))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(n: &str) -> Owner {
        Owner {
            node: n.into(),
            incarnation: 1,
        }
    }

    fn reg(name: &str, at: u64) -> Registration {
        Registration {
            name: name.into(),
            stamp: Stamp::at(at, "w"),
            meta: vec![],
        }
    }

    #[test]
    fn local_registration_and_taken_names() {
        let mut a = RegistryCore::new(owner("a"));
        let (v, op, ch) = a
            .register_local("x", Stamp::at(10, "a"), vec![1])
            .unwrap_or_else(|_| (0, Op::Remove(String::new()), vec![]));
        assert_eq!(v, 1);
        assert_eq!(
            op,
            Op::Put(Registration {
                name: "x".into(),
                stamp: Stamp::at(10, "a"),
                meta: vec![1]
            })
        );
        assert_eq!(ch.len(), 1);
        let err = a.register_local("x", Stamp::at(11, "a"), vec![]).err();
        assert_eq!(err.map(|h| h.owner), Some(owner("a")));
        assert!(a.unregister_local("x").is_some());
        assert!(a.winner("x").is_none());
        assert!(a.unregister_local("x").is_none());
    }

    #[test]
    fn deltas_apply_in_order_and_gaps_are_detected() {
        let mut b = RegistryCore::new(owner("b"));
        let a = owner("a");
        assert_eq!(
            b.apply_delta(&a, 1, Op::Put(reg("x", 1))).map(|c| c.len()),
            Ok(1)
        );
        assert_eq!(
            b.apply_delta(&a, 1, Op::Put(reg("x", 1))),
            Ok(vec![]),
            "duplicate ignored"
        );
        assert_eq!(b.apply_delta(&a, 3, Op::Put(reg("y", 3))), Err(Gap));
        assert!(b.is_behind(&a, 3));
        let ch = b.apply_full(&a, 3, vec![reg("y", 3)]);
        assert_eq!(ch.len(), 2, "x removed, y added: {ch:?}");
        assert!(b.winner("x").is_none());
        assert_eq!(b.winner("y").map(|h| h.owner), Some(a.clone()));
        assert!(!b.is_behind(&a, 3));
    }

    #[test]
    fn the_older_registration_wins_a_conflict_and_the_loser_knows() {
        let mut a = RegistryCore::new(owner("a"));
        let mut b = RegistryCore::new(owner("b"));
        let (va, opa, _) = a
            .register_local("x", Stamp::at(200, "a"), vec![])
            .unwrap_or_else(|_| (0, Op::Remove(String::new()), vec![]));
        let (vb, opb, _) = b
            .register_local("x", Stamp::at(100, "b"), vec![])
            .unwrap_or_else(|_| (0, Op::Remove(String::new()), vec![]));
        a.apply_delta(&owner("b"), vb, opb).unwrap_or_default();
        b.apply_delta(&owner("a"), va, opa).unwrap_or_default();
        // Both agree: b's registration (older) wins.
        assert_eq!(a.winner("x").map(|h| h.owner), Some(owner("b")));
        assert_eq!(b.winner("x").map(|h| h.owner), Some(owner("b")));
        let x = vec!["x".to_string()];
        assert_eq!(a.lost_locally(&x).len(), 1);
        assert!(b.lost_locally(&x).is_empty());
        // Equal wall-clock times: the writer's name decides.
        let mut c = RegistryCore::new(owner("c"));
        c.register_local("y", Stamp::at(5, "c"), vec![]).ok();
        let from_b = Registration {
            name: "y".into(),
            stamp: Stamp::at(5, "b"),
            meta: vec![],
        };
        c.apply_delta(&owner("b"), 1, Op::Put(from_b))
            .unwrap_or_default();
        assert_eq!(c.winner("y").map(|h| h.owner), Some(owner("b")));
    }

    #[test]
    fn a_down_node_loses_its_entries_and_a_restart_replaces_the_old_incarnation() {
        let mut b = RegistryCore::new(owner("b"));
        b.apply_full(&owner("a"), 2, vec![reg("x", 1), reg("y", 2)]);
        assert_eq!(b.winners().len(), 2);
        let ch = b.drop_node("a");
        assert_eq!(ch.len(), 2);
        assert!(b.winners().is_empty());
        b.apply_full(&owner("a"), 1, vec![reg("x", 1)]);
        let a2 = Owner {
            node: "a".into(),
            incarnation: 2,
        };
        b.apply_delta(&a2, 1, Op::Put(reg("z", 9)))
            .unwrap_or_default();
        let w = b.winners();
        assert_eq!(w.keys().cloned().collect::<Vec<_>>(), vec!["z".to_string()]);
    }
}
