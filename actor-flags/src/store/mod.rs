//! Flag stores, in fun_with_flags' layouts, so a Rust service and an Elixir service can share
//! one store.
//!
//! * SQL (SQLite, Postgres; sqlx): FWF's Ecto table `fun_with_flags_toggles` (`id`, `flag_name`,
//!   `gate_type`, `target`, `enabled`) with the unique index `fwf_flag_name_gate_target_idx`.
//!   The boolean gate's target is `_fwf_none`; a percentage gate is `gate_type = 'percentage'`
//!   with target `time/<r>` or `actors/<r>`.
//! * Redis: the set `fun_with_flags` of names; a hash `fun_with_flags:<flag>` with fields
//!   `boolean`, `actor/<id>`, `group/<name>` (`"true"`/`"false"`) and `percentage`
//!   (`time/<r>` or `actors/<r>`); change notices on the channel `fun_with_flags_changes` as
//!   `<unique_id>:<flag>`.
//!
//! Every write also records a [`HistoryEntry`] (who, when, which gate, old and new value) beside
//! FWF's data, never in it: the SQL table `actor_flags_history`, written in the same
//! transaction as the toggle; in Redis the list `actor_flags_history:<flag>` (newest first, the
//! last [`REDIS_HISTORY_MAX`] entries), written by the same script as the hash. A
//! fun_with_flags node sharing the store reads and writes FWF's table or keys as before; its own
//! writes are not in the history.

mod redis_hash;
mod sql;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::gate::{Flag, Gate, GateKey};
use crate::FlagError;

pub use self::redis_hash::{
    decode_redis_history, gate_from_redis, redis_field, redis_history_key, redis_key, RedisStore,
};
pub use self::sql::SqlStore;

/// The Ecto table FWF uses.
pub const TABLE: &str = "fun_with_flags_toggles";
/// The SQL table of the audit history (ours; FWF does not know it).
pub const HISTORY_TABLE: &str = "actor_flags_history";
/// The boolean gate's target in the Ecto table.
pub const NO_TARGET: &str = "_fwf_none";
/// The Redis set of flag names.
pub const REDIS_SET: &str = "fun_with_flags";
/// The Redis channel of change notices.
pub const REDIS_CHANNEL: &str = "fun_with_flags_changes";
/// The prefix of the Redis history lists (`actor_flags_history:<flag>`).
pub const REDIS_HISTORY_PREFIX: &str = "actor_flags_history";
/// Entries a Redis history list keeps per flag (Redis holds everything in memory).
pub const REDIS_HISTORY_MAX: usize = 10_000;

/// Who makes a write, and when: recorded in the history with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'a> {
    /// The writer's label: an admin token's label, a basic-auth user, or what the caller set
    /// with [`crate::Flags::by`].
    pub by: &'a str,
    /// Milliseconds since the Unix epoch (the cluster-corrected wall clock).
    pub at_ms: i64,
}

/// One recorded write of one gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who wrote it ([`Change::by`]).
    pub by: String,
    /// The gate written.
    pub gate: GateKey,
    /// Its value before (`None`: it did not exist).
    pub old: Option<Gate>,
    /// Its value after (`None`: it was cleared).
    pub new: Option<Gate>,
}

/// A persistent flag store.
pub trait FlagStore: Send + Sync + 'static {
    /// One flag (`None` if it has no gates).
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Flag>, FlagError>>;
    /// Sets a gate (a percentage gate replaces the flag's other percentage gate) and records it
    /// in the history, atomically.
    fn put<'a>(
        &'a self,
        name: &'a str,
        gate: &'a Gate,
        change: &'a Change<'a>,
    ) -> BoxFuture<'a, Result<(), FlagError>>;
    /// Removes a gate and records it (nothing is recorded if there was no such gate).
    fn delete_gate<'a>(
        &'a self,
        name: &'a str,
        key: &'a GateKey,
        change: &'a Change<'a>,
    ) -> BoxFuture<'a, Result<(), FlagError>>;
    /// Removes a flag with all its gates, recording one entry per gate removed.
    fn delete_flag<'a>(
        &'a self,
        name: &'a str,
        change: &'a Change<'a>,
    ) -> BoxFuture<'a, Result<(), FlagError>>;
    /// Every flag.
    fn all_flags(&self) -> BoxFuture<'_, Result<Vec<Flag>, FlagError>>;
    /// Every flag name.
    fn all_flag_names(&self) -> BoxFuture<'_, Result<Vec<String>, FlagError>> {
        Box::pin(async move {
            Ok(self
                .all_flags()
                .await?
                .into_iter()
                .map(|f| f.name)
                .collect())
        })
    }
    /// The newest `limit` history entries of a flag, newest first.
    fn history<'a>(
        &'a self,
        name: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>, FlagError>>;
}

/// A gate's value as text, as FWF's Redis layout writes it: `true`/`false` for the boolean,
/// actor and group gates, `time/<r>` or `actors/<r>` for the percentage gate.
pub fn gate_value(gate: &Gate) -> String {
    redis_field(gate).1
}

/// The Redis hash field of a gate key (also the history's name of a gate).
pub fn key_field(key: &GateKey) -> String {
    match key {
        GateKey::Boolean => "boolean".to_owned(),
        GateKey::Actor(id) => format!("actor/{id}"),
        GateKey::Group(g) => format!("group/{g}"),
        GateKey::Percentage => "percentage".to_owned(),
    }
}

/// The gate key of a Redis hash field.
pub fn key_from_field(field: &str) -> Result<GateKey, FlagError> {
    match field {
        "boolean" => Ok(GateKey::Boolean),
        "percentage" => Ok(GateKey::Percentage),
        _ => {
            if let Some(id) = field.strip_prefix("actor/") {
                Ok(GateKey::Actor(id.to_owned()))
            } else if let Some(g) = field.strip_prefix("group/") {
                Ok(GateKey::Group(g.to_owned()))
            } else {
                Err(FlagError::Corrupt(format!("gate field {field:?}")))
            }
        }
    }
}

/// A history entry from its stored parts (field and values in the Redis encoding).
pub(crate) fn history_entry(
    at_ms: i64,
    by: String,
    field: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> Result<HistoryEntry, FlagError> {
    let gate = key_from_field(field)?;
    let value = |v: Option<&str>| v.map(|v| gate_from_redis(field, v)).transpose();
    Ok(HistoryEntry {
        at_ms,
        by,
        gate,
        old: value(old)?,
        new: value(new)?,
    })
}

pub(crate) fn store_err(e: impl std::fmt::Display) -> FlagError {
    FlagError::Store(e.to_string())
}

/// (gate_type, target, enabled) of a gate in the Ecto table.
pub fn sql_row(gate: &Gate) -> (&'static str, String, bool) {
    match gate {
        Gate::Boolean(b) => ("boolean", NO_TARGET.to_owned(), *b),
        Gate::Actor { id, enabled } => ("actor", id.clone(), *enabled),
        Gate::Group { name, enabled } => ("group", name.clone(), *enabled),
        Gate::PercentageOfTime(r) => ("percentage", format!("time/{r}"), true),
        Gate::PercentageOfActors(r) => ("percentage", format!("actors/{r}"), true),
    }
}

/// Parses a `time/<r>` or `actors/<r>` percentage value.
pub fn parse_percentage(value: &str) -> Result<Gate, FlagError> {
    let bad = || FlagError::Corrupt(format!("percentage value {value:?}"));
    let (kind, ratio) = value.split_once('/').ok_or_else(bad)?;
    let r: f64 = ratio.parse().map_err(|_| bad())?;
    let gate = match kind {
        "time" => Gate::PercentageOfTime(r),
        "actors" => Gate::PercentageOfActors(r),
        _ => return Err(bad()),
    };
    gate.validate().map_err(|_| bad())?;
    Ok(gate)
}

/// A gate from an Ecto table row.
pub fn gate_from_sql(gate_type: &str, target: &str, enabled: bool) -> Result<Gate, FlagError> {
    match gate_type {
        "boolean" => Ok(Gate::Boolean(enabled)),
        "actor" => Ok(Gate::Actor {
            id: target.to_owned(),
            enabled,
        }),
        "group" => Ok(Gate::Group {
            name: target.to_owned(),
            enabled,
        }),
        "percentage" => parse_percentage(target),
        other => Err(FlagError::Corrupt(format!("gate type {other:?}"))),
    }
}
