//! Gates and flags with fun_with_flags' semantics (sans-IO: no store, no clock, no RNG of its
//! own; the %-of-time gate takes its random sample from the caller).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::FlagError;

/// One gate of a flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Gate {
    /// On or off for everyone.
    Boolean(bool),
    /// On or off for one actor (by its id).
    Actor {
        /// The actor's id, e.g. `"user:42"`.
        id: String,
        /// On or off.
        enabled: bool,
    },
    /// On or off for the actors in a group.
    Group {
        /// The group's name.
        name: String,
        /// On or off.
        enabled: bool,
    },
    /// On for this share of checks (`0 < ratio < 1`).
    PercentageOfTime(f64),
    /// On for this share of actors (`0 < ratio < 1`), chosen by FWF's score.
    PercentageOfActors(f64),
}

/// Identifies a gate within a flag (what `clear` removes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GateKey {
    /// The boolean gate.
    Boolean,
    /// An actor gate.
    Actor(String),
    /// A group gate.
    Group(String),
    /// The (single) percentage gate.
    Percentage,
}

impl Gate {
    /// The gate's key.
    pub fn key(&self) -> GateKey {
        match self {
            Gate::Boolean(_) => GateKey::Boolean,
            Gate::Actor { id, .. } => GateKey::Actor(id.clone()),
            Gate::Group { name, .. } => GateKey::Group(name.clone()),
            Gate::PercentageOfTime(_) | Gate::PercentageOfActors(_) => GateKey::Percentage,
        }
    }

    /// Checks the ratio of a percentage gate.
    pub fn validate(&self) -> Result<(), FlagError> {
        match self {
            Gate::PercentageOfTime(r) | Gate::PercentageOfActors(r) if !(*r > 0.0 && *r < 1.0) => {
                Err(FlagError::InvalidRatio(*r))
            }
            Gate::Actor { id, .. } if id.is_empty() => {
                Err(FlagError::InvalidTarget("empty actor id".into()))
            }
            Gate::Group { name, .. } if name.is_empty() => {
                Err(FlagError::InvalidTarget("empty group name".into()))
            }
            _ => Ok(()),
        }
    }
}

/// Something a flag can be checked for (FWF's `Actor` protocol, plus `Group.in?`).
pub trait FlagActor {
    /// A globally unique id, e.g. `"user:42"`.
    fn flag_id(&self) -> Cow<'_, str>;

    /// Whether the actor belongs to `group` (default: no group).
    fn in_group(&self, group: &str) -> bool {
        let _ = group;
        false
    }
}

impl FlagActor for str {
    fn flag_id(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl FlagActor for String {
    fn flag_id(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
}

/// FWF's %-of-actors score: the first 16 bits of SHA-256(actor id ‖ flag name), over 65,536.
pub fn actor_score(actor_id: &str, flag_name: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(actor_id.as_bytes());
    h.update(flag_name.as_bytes());
    let d = h.finalize();
    f64::from(u16::from_be_bytes([d[0], d[1]])) / 65_536.0
}

/// Validates a flag name as FWF's UI does: `^\w+$` (ASCII letters, digits, underscore).
pub fn validate_name(name: &str) -> Result<(), FlagError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err(FlagError::InvalidName(name.to_owned()))
    }
}

/// A flag: a name and its gates (at most one boolean and one percentage gate; one gate per
/// actor and per group).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Flag {
    /// The flag's name.
    pub name: String,
    /// Its gates.
    pub gates: Vec<Gate>,
}

impl Flag {
    /// A flag with no gates (off).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            gates: Vec::new(),
        }
    }

    /// Sets a gate, replacing the gate with the same key (a percentage gate replaces the other
    /// kind of percentage gate).
    pub fn put(&mut self, gate: Gate) {
        let key = gate.key();
        self.gates.retain(|g| g.key() != key);
        self.gates.push(gate);
    }

    /// Removes a gate.
    pub fn clear(&mut self, key: &GateKey) {
        self.gates.retain(|g| g.key() != *key);
    }

    fn boolean(&self) -> Option<bool> {
        self.gates.iter().find_map(|g| match g {
            Gate::Boolean(b) => Some(*b),
            _ => None,
        })
    }

    fn percentage(&self) -> Option<&Gate> {
        self.gates
            .iter()
            .find(|g| matches!(g, Gate::PercentageOfTime(_) | Gate::PercentageOfActors(_)))
    }

    /// Without an actor: boolean, else %-of-time (`sample` is uniform in `[0, 1)`; FWF draws
    /// 1..=10,000 / 10,000). A %-of-actors gate is ignored.
    pub fn enabled(&self, sample: f64) -> bool {
        if self.boolean() == Some(true) {
            return true;
        }
        match self.percentage() {
            Some(Gate::PercentageOfTime(r)) => time_hit(sample, *r),
            _ => false,
        }
    }

    /// With an actor: a matching actor gate decides; else groups (a matching disabled group wins
    /// over an enabled one); else boolean, else the percentage gate (%-of-actors by score, or
    /// %-of-time by `sample`).
    pub fn enabled_for<A: FlagActor + ?Sized>(&self, actor: &A, sample: f64) -> bool {
        let id = actor.flag_id();
        for g in &self.gates {
            if let Gate::Actor { id: gid, enabled } = g {
                if gid.as_str() == id.as_ref() {
                    return *enabled;
                }
            }
        }
        let mut group_on = false;
        for g in &self.gates {
            if let Gate::Group { name, enabled } = g {
                if actor.in_group(name) {
                    if !*enabled {
                        return false;
                    }
                    group_on = true;
                }
            }
        }
        if group_on || self.boolean() == Some(true) {
            return true;
        }
        match self.percentage() {
            Some(Gate::PercentageOfActors(r)) => actor_score(&id, &self.name) <= *r,
            Some(Gate::PercentageOfTime(r)) => time_hit(sample, *r),
            _ => false,
        }
    }

    /// Whether the flag's answer without an actor is fixed (no %-of-time gate): the value.
    pub fn constant(&self) -> Option<bool> {
        match (self.boolean(), self.percentage()) {
            (Some(true), _) => Some(true),
            (_, Some(Gate::PercentageOfTime(_))) => None,
            _ => Some(false),
        }
    }
}

/// FWF: `:rand.uniform(10_000) / 10_000 <= ratio`.
fn time_hit(sample: f64, ratio: f64) -> bool {
    let draw = ((sample.clamp(0.0, 0.999_999) * 10_000.0).floor() + 1.0) / 10_000.0;
    draw <= ratio
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct User {
        id: u32,
        groups: Vec<&'static str>,
    }

    impl FlagActor for User {
        fn flag_id(&self) -> Cow<'_, str> {
            Cow::Owned(format!("user:{}", self.id))
        }
        fn in_group(&self, group: &str) -> bool {
            self.groups.contains(&group)
        }
    }

    fn flag(gates: Vec<Gate>) -> Flag {
        Flag {
            name: "f".into(),
            gates,
        }
    }

    #[test]
    fn no_gates_is_off() {
        let f = flag(vec![]);
        assert!(!f.enabled(0.0));
        assert!(!f.enabled_for("user:1", 0.0));
    }

    #[test]
    fn boolean_and_time_without_actor() {
        assert!(flag(vec![Gate::Boolean(true)]).enabled(0.9));
        assert!(!flag(vec![Gate::Boolean(false)]).enabled(0.9));
        let t = flag(vec![Gate::Boolean(false), Gate::PercentageOfTime(0.5)]);
        assert!(t.enabled(0.1));
        assert!(!t.enabled(0.9));
        // %-of-actors is ignored without an actor.
        assert!(!flag(vec![Gate::PercentageOfActors(0.99)]).enabled(0.0));
    }

    #[test]
    fn actor_gate_beats_groups_and_boolean() {
        let u = User {
            id: 1,
            groups: vec!["beta"],
        };
        let f = flag(vec![
            Gate::Boolean(true),
            Gate::Group {
                name: "beta".into(),
                enabled: true,
            },
            Gate::Actor {
                id: "user:1".into(),
                enabled: false,
            },
        ]);
        assert!(!f.enabled_for(&u, 0.0));
        let f = flag(vec![
            Gate::Boolean(false),
            Gate::Group {
                name: "beta".into(),
                enabled: false,
            },
            Gate::Actor {
                id: "user:1".into(),
                enabled: true,
            },
        ]);
        assert!(f.enabled_for(&u, 0.0));
    }

    #[test]
    fn a_disabled_group_beats_an_enabled_group_and_the_boolean() {
        let u = User {
            id: 2,
            groups: vec!["beta", "banned"],
        };
        let f = flag(vec![
            Gate::Boolean(true),
            Gate::Group {
                name: "beta".into(),
                enabled: true,
            },
            Gate::Group {
                name: "banned".into(),
                enabled: false,
            },
        ]);
        assert!(!f.enabled_for(&u, 0.0));
        let f = flag(vec![
            Gate::Boolean(false),
            Gate::Group {
                name: "beta".into(),
                enabled: true,
            },
        ]);
        assert!(f.enabled_for(&u, 0.0));
        // Not in the group: falls through to the boolean.
        let outsider = User {
            id: 3,
            groups: vec![],
        };
        assert!(!f.enabled_for(&outsider, 0.0));
    }

    #[test]
    fn with_an_actor_boolean_then_percentage() {
        let f = flag(vec![Gate::Boolean(true), Gate::PercentageOfActors(0.0001)]);
        assert!(f.enabled_for("anyone", 0.0));
        let f = flag(vec![Gate::PercentageOfTime(0.5)]);
        assert!(f.enabled_for("a", 0.2));
        assert!(!f.enabled_for("a", 0.8));
    }

    #[test]
    fn percentage_of_actors_uses_the_score() {
        let name = "f";
        for i in 0..200 {
            let id = format!("user:{i}");
            let s = actor_score(&id, name);
            let f = flag(vec![Gate::PercentageOfActors(0.3)]);
            assert_eq!(f.enabled_for(id.as_str(), 0.99), s <= 0.3, "{id}");
        }
    }

    #[test]
    fn put_replaces_by_key_and_percentages_replace_each_other() {
        let mut f = Flag::new("x");
        f.put(Gate::Boolean(true));
        f.put(Gate::Boolean(false));
        f.put(Gate::PercentageOfTime(0.2));
        f.put(Gate::PercentageOfActors(0.4));
        assert_eq!(
            f.gates,
            vec![Gate::Boolean(false), Gate::PercentageOfActors(0.4)]
        );
        f.clear(&GateKey::Percentage);
        assert_eq!(f.gates, vec![Gate::Boolean(false)]);
    }

    #[test]
    fn names_and_ratios_are_validated() {
        assert!(validate_name("new_checkout_2").is_ok());
        for bad in ["", "a-b", "a b", "é", "a?"] {
            assert_eq!(validate_name(bad), Err(FlagError::InvalidName(bad.into())));
        }
        assert!(Gate::PercentageOfTime(0.5).validate().is_ok());
        for r in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert!(Gate::PercentageOfActors(r).validate().is_err(), "{r}");
        }
    }
}
