//! The replicated child table: child specs as data, their status, and last-writer-wins rows
//! ordered by hybrid-logical-clock stamps.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actor_core_base::hlc::Stamp;
use actor_core_base::supervision::{Intensity, Restart};
use serde::{Deserialize, Serialize};

pub use super::gc::Dot;

/// A child's specification, as data: any node that knows its kind can start it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistChildSpec {
    /// Unique per supervisor; the child is registered under it.
    pub id: String,
    /// The kind: a name registered on each node with a factory.
    pub kind: String,
    /// Serialized arguments for the factory.
    pub args: Vec<u8>,
    /// Restart type (applies to local restarts and to exits).
    pub restart: RestartType,
    /// Local restart intensity of this child.
    pub max_restarts: u32,
    /// Window of the intensity, ms.
    pub period_ms: u64,
    /// The node chosen at start (random placement); others place by hashing. A `Temporary`
    /// child records the node it was placed on at start under any placement (only random
    /// placement keeps it there): when that node is gone, the child is dropped, not restarted.
    pub pinned: Option<String>,
}

/// Serializable restart type (mirrors `actor_core::supervisor::Restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RestartType {
    /// Always restarted.
    #[default]
    Permanent,
    /// Restarted after an abnormal exit; a normal exit removes it.
    Transient,
    /// Never restarted: any exit, or its node going down, removes it.
    Temporary,
}

impl From<RestartType> for Restart {
    fn from(r: RestartType) -> Self {
        match r {
            RestartType::Permanent => Restart::Permanent,
            RestartType::Transient => Restart::Transient,
            RestartType::Temporary => Restart::Temporary,
        }
    }
}

impl DistChildSpec {
    /// A permanent child with OTP's default intensity (3 restarts in 5 s).
    pub fn new(id: impl Into<String>, kind: impl Into<String>, args: Vec<u8>) -> Self {
        let i = Intensity::default();
        Self {
            id: id.into(),
            kind: kind.into(),
            args,
            restart: RestartType::Permanent,
            max_restarts: i.max_restarts,
            period_ms: i.period.as_millis() as u64,
            pinned: None,
        }
    }

    /// Sets the restart type.
    pub fn restart(mut self, r: RestartType) -> Self {
        self.restart = r;
        self
    }

    /// Sets the local restart intensity.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period_ms = period.as_millis() as u64;
        self
    }

    /// The intensity as actor-core's type.
    pub fn intensity_value(&self) -> Intensity {
        Intensity {
            max_restarts: self.max_restarts,
            period: Duration::from_millis(self.period_ms),
        }
    }
}

/// A child's status in the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildStatus {
    /// To be running somewhere.
    Live,
    /// Exceeded its intensity on `node`; not restarted until started again.
    Failed {
        /// Where it failed.
        node: String,
        /// Its last error.
        reason: String,
    },
    /// Terminated or finished: kept as a tombstone so late deltas cannot revive it.
    Removed,
}

/// One row of the child table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The spec.
    pub spec: DistChildSpec,
    /// Its status.
    pub status: ChildStatus,
    /// Its stamp.
    pub stamp: Stamp,
    /// Which write of its writer (`stamp.node`) this row is: tombstones are collected by it
    /// (see [`super::gc`]). Rows of older versions have none (`seq` 0) and are never collected.
    #[serde(default)]
    pub dot: Dot,
}

impl Row {
    /// The row's share of the table's summary (equal rows, equal shares).
    fn share(&self) -> u64 {
        crate::hash::StableHash::default()
            .str(&self.spec.id)
            .u64(self.stamp.wall_ns)
            .u64(u64::from(self.stamp.logical))
            .str(&self.stamp.node)
            .finish()
    }
}

/// The replicated child table (a last-writer-wins map of rows).
///
/// Besides the rows it keeps, updated on every change, the ids of its tombstones and a summary
/// of its other rows (their count and a wrapping sum of their hashes): two tables whose rows
/// other than tombstones are equal have equal summaries, whatever tombstones each has kept or
/// collected.
#[derive(Debug, Clone, Default)]
pub struct ChildTable {
    rows: BTreeMap<String, Row>,
    tombstones: BTreeSet<String>,
    kept: u64,
    sum: u64,
}

impl ChildTable {
    /// Merges a row; returns whether it changed the table.
    pub fn merge(&mut self, row: Row) -> bool {
        match self.rows.get(&row.spec.id) {
            Some(old) if old.stamp >= row.stamp => false,
            _ => {
                let id = row.spec.id.clone();
                self.account(&row, true);
                if let Some(old) = self.rows.insert(id, row) {
                    self.account(&old, false);
                }
                true
            }
        }
    }

    fn account(&mut self, row: &Row, added: bool) {
        if row.status == ChildStatus::Removed {
            if added {
                self.tombstones.insert(row.spec.id.clone());
            } else if self
                .rows
                .get(&row.spec.id)
                .is_none_or(|r| r.status != ChildStatus::Removed)
            {
                self.tombstones.remove(&row.spec.id);
            }
        } else if added {
            self.kept += 1;
            self.sum = self.sum.wrapping_add(row.share());
        } else {
            self.kept -= 1;
            self.sum = self.sum.wrapping_sub(row.share());
        }
    }

    /// Drops a tombstone (the collector decided every replica has it); other rows stay.
    pub(super) fn collect(&mut self, id: &str) -> bool {
        if self
            .rows
            .get(id)
            .is_some_and(|r| r.status == ChildStatus::Removed)
        {
            self.rows.remove(id);
            self.tombstones.remove(id);
            true
        } else {
            false
        }
    }

    /// The ids of the tombstones kept now.
    pub fn tombstones(&self) -> impl Iterator<Item = &String> {
        self.tombstones.iter()
    }

    /// Rows kept, tombstones included.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Tombstones kept.
    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    /// Rows other than tombstones, and the wrapping sum of their hashes.
    pub fn summary(&self) -> (u64, u64) {
        (self.kept, self.sum)
    }

    /// The row of a child.
    pub fn get(&self, id: &str) -> Option<&Row> {
        self.rows.get(id)
    }

    /// Rows of live children.
    pub fn live(&self) -> impl Iterator<Item = &Row> {
        self.rows.values().filter(|r| r.status == ChildStatus::Live)
    }

    /// Every row, tombstones included.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }
}
