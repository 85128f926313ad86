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

/// Why a check answered what it answered (the names follow OpenFeature's reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The boolean gate decided: the same answer for everyone.
    Static,
    /// An actor or group gate matched the actor.
    TargetingMatch,
    /// A percentage gate decided (by the actor's score, or by the sample for %-of-time).
    Split,
    /// The flag has gates but none applied (a %-of-actors gate checked without an actor, or only
    /// actor and group gates that did not match): off.
    Default,
    /// The flag has no gates, or was never created: off.
    NotFound,
}

/// The kind of gate that decided a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateKind {
    /// The boolean gate.
    Boolean,
    /// An actor gate.
    Actor,
    /// A group gate.
    Group,
    /// The %-of-time gate.
    PercentageOfTime,
    /// The %-of-actors gate.
    PercentageOfActors,
}

impl GateKind {
    /// The name used in JSON, metrics and OpenFeature variants: `boolean`, `actor`, `group`,
    /// `percentage_of_time`, `percentage_of_actors`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateKind::Boolean => "boolean",
            GateKind::Actor => "actor",
            GateKind::Group => "group",
            GateKind::PercentageOfTime => "percentage_of_time",
            GateKind::PercentageOfActors => "percentage_of_actors",
        }
    }
}

/// A check's answer with its reason and deciding gate (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The answer.
    pub enabled: bool,
    /// Why.
    pub reason: Reason,
    /// The gate that decided (`None` for [`Reason::Default`] and [`Reason::NotFound`]).
    pub gate: Option<GateKind>,
}

impl Decision {
    const fn new(enabled: bool, reason: Reason, gate: Option<GateKind>) -> Self {
        Self {
            enabled,
            reason,
            gate,
        }
    }

    /// The decision in one byte (bit 0 the answer, bits 1-3 the reason, bits 4-6 the gate), so
    /// a cache can keep a fixed decision in one atomic. Never `0xFF`.
    pub fn pack(self) -> u8 {
        let reason = match self.reason {
            Reason::Static => 0,
            Reason::TargetingMatch => 1,
            Reason::Split => 2,
            Reason::Default => 3,
            Reason::NotFound => 4,
        };
        let gate = match self.gate {
            None => 0,
            Some(GateKind::Boolean) => 1,
            Some(GateKind::Actor) => 2,
            Some(GateKind::Group) => 3,
            Some(GateKind::PercentageOfTime) => 4,
            Some(GateKind::PercentageOfActors) => 5,
        };
        u8::from(self.enabled) | (reason << 1) | (gate << 4)
    }

    /// The decision [`Decision::pack`] made into `b` (a byte it did not make reads as not
    /// found, off).
    pub fn unpack(b: u8) -> Self {
        let reason = match (b >> 1) & 0b111 {
            0 => Reason::Static,
            1 => Reason::TargetingMatch,
            2 => Reason::Split,
            3 => Reason::Default,
            4 => Reason::NotFound,
            _ => return Self::new(false, Reason::NotFound, None),
        };
        let gate = match (b >> 4) & 0b111 {
            1 => Some(GateKind::Boolean),
            2 => Some(GateKind::Actor),
            3 => Some(GateKind::Group),
            4 => Some(GateKind::PercentageOfTime),
            5 => Some(GateKind::PercentageOfActors),
            _ => None,
        };
        Self::new(b & 1 == 1, reason, gate)
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
    #[inline]
    pub fn enabled(&self, sample: f64) -> bool {
        self.decide(sample).enabled
    }

    /// With an actor: a matching actor gate decides; else groups (a matching disabled group wins
    /// over an enabled one); else boolean, else the percentage gate (%-of-actors by score, or
    /// %-of-time by `sample`).
    #[inline]
    pub fn enabled_for<A: FlagActor + ?Sized>(&self, actor: &A, sample: f64) -> bool {
        self.decide_for(actor, sample).enabled
    }

    /// [`Flag::enabled`] with the reason and the gate that decided.
    pub fn decide(&self, sample: f64) -> Decision {
        let boolean = self.boolean();
        if boolean == Some(true) {
            return Decision::new(true, Reason::Static, Some(GateKind::Boolean));
        }
        match self.percentage() {
            Some(Gate::PercentageOfTime(r)) => Decision::new(
                time_hit(sample, *r),
                Reason::Split,
                Some(GateKind::PercentageOfTime),
            ),
            _ => self.fall_through(boolean),
        }
    }

    /// [`Flag::enabled_for`] with the reason and the gate that decided.
    pub fn decide_for<A: FlagActor + ?Sized>(&self, actor: &A, sample: f64) -> Decision {
        let id = actor.flag_id();
        for g in &self.gates {
            if let Gate::Actor { id: gid, enabled } = g {
                if gid.as_str() == id.as_ref() {
                    return Decision::new(*enabled, Reason::TargetingMatch, Some(GateKind::Actor));
                }
            }
        }
        let mut group_on = false;
        for g in &self.gates {
            if let Gate::Group { name, enabled } = g {
                if actor.in_group(name) {
                    if !*enabled {
                        return Decision::new(false, Reason::TargetingMatch, Some(GateKind::Group));
                    }
                    group_on = true;
                }
            }
        }
        if group_on {
            return Decision::new(true, Reason::TargetingMatch, Some(GateKind::Group));
        }
        let boolean = self.boolean();
        if boolean == Some(true) {
            return Decision::new(true, Reason::Static, Some(GateKind::Boolean));
        }
        match self.percentage() {
            Some(Gate::PercentageOfActors(r)) => Decision::new(
                actor_score(&id, &self.name) <= *r,
                Reason::Split,
                Some(GateKind::PercentageOfActors),
            ),
            Some(Gate::PercentageOfTime(r)) => Decision::new(
                time_hit(sample, *r),
                Reason::Split,
                Some(GateKind::PercentageOfTime),
            ),
            _ => self.fall_through(boolean),
        }
    }

    /// No gate said yes: a boolean gate set to false decided; without gates the flag does not
    /// exist; else nothing matched and the answer is the default (off).
    fn fall_through(&self, boolean: Option<bool>) -> Decision {
        if boolean.is_some() {
            Decision::new(false, Reason::Static, Some(GateKind::Boolean))
        } else if self.gates.is_empty() {
            Decision::new(false, Reason::NotFound, None)
        } else {
            Decision::new(false, Reason::Default, None)
        }
    }

    /// Whether a check may use the random sample (the flag has a %-of-time gate): a caller can
    /// skip drawing one otherwise.
    pub fn needs_sample(&self) -> bool {
        self.gates
            .iter()
            .any(|g| matches!(g, Gate::PercentageOfTime(_)))
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
mod tests;
