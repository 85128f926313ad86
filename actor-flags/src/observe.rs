//! What checks and changes tell: evaluation details, change events, counters.

use std::sync::atomic::Ordering;

use crate::gate::{GateKind, Reason};
use crate::{stats, Flags};

/// A check's answer, why, and from which cached state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    /// The answer.
    pub enabled: bool,
    /// Why it answered so.
    pub reason: Reason,
    /// The gate that decided (`None` for [`Reason::Default`] and [`Reason::NotFound`]).
    pub gate: Option<GateKind>,
    /// The version of the cached flag state that answered (0: never loaded).
    pub version: u64,
}

impl Evaluation {
    pub(crate) const NOT_FOUND: Self = Self {
        enabled: false,
        reason: Reason::NotFound,
        gate: None,
        version: 0,
    };
}

/// Where an installed change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeOrigin {
    /// A write made through this node's cache.
    Local,
    /// A change another node made, received through the cluster or a change channel.
    Remote,
    /// Read from the store: [`Flags::refresh`], or [`Flags::reload`] finding it changed.
    Store,
}

/// A flag state installed in this node's cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// The flag.
    pub name: String,
    /// The version installed: a hybrid-logical-clock stamp
    /// ([`actor_core::hlc::Stamp::from_version`]); newer states have higher versions on every
    /// node.
    pub version: u64,
    /// Where it came from.
    pub origin: ChangeOrigin,
}

/// One flag's evaluation counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationCount {
    /// The flag.
    pub name: String,
    /// Checks that answered true.
    pub enabled: u64,
    /// Checks that answered false.
    pub disabled: u64,
}

impl Flags {
    /// Turns the evaluation counters on or off for every flag, now and later ones. A counted
    /// check costs about a nanosecond more (no atomic read-modify-write: each thread counts in
    /// its own shard). Read them with [`Flags::evaluation_counts`], or export them with
    /// [`Flags::publish_metrics`].
    pub fn count_evaluations(&self, on: bool) {
        let _g = self.inner.grow.lock();
        self.inner.counting.store(on, Ordering::Release);
        for slot in self.inner.index.load().values() {
            slot.counted.store(on, Ordering::Relaxed);
        }
    }

    /// The checks counted per flag since counting was first turned on, by name (flags never
    /// checked while counting are left out).
    pub fn evaluation_counts(&self) -> Vec<EvaluationCount> {
        let mut v: Vec<EvaluationCount> = self
            .inner
            .index
            .load()
            .iter()
            .filter_map(|(name, slot)| {
                let (disabled, enabled) = stats::counts(slot.id);
                (disabled + enabled > 0).then(|| EvaluationCount {
                    name: name.clone(),
                    enabled,
                    disabled,
                })
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Checks by name of flags that do not exist, per name (at most [`MAX_UNKNOWN`] names),
    /// and the checks of names past those. A name leaves the list when the flag is created.
    pub fn unknown_checks(&self) -> (Vec<(String, u64)>, u64) {
        self.inner.unknown.snapshot()
    }

    /// Sets the Prometheus-style counters `flags_evaluations_total{flag, result="true"|"false"}`
    /// and `flags_unknown_name_checks_total{flag}` to the current counts (call it before a
    /// scrape renders, as the example node's `/metrics` does).
    pub fn publish_metrics(&self) {
        for c in self.evaluation_counts() {
            metrics::counter!("flags_evaluations_total", "flag" => c.name.clone(), "result" => "true")
                .absolute(c.enabled);
            metrics::counter!("flags_evaluations_total", "flag" => c.name, "result" => "false")
                .absolute(c.disabled);
        }
        let (names, _) = self.unknown_checks();
        for (name, n) in names {
            metrics::counter!("flags_unknown_name_checks_total", "flag" => name).absolute(n);
        }
    }
}
