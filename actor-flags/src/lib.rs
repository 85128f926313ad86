//! `actor-flags`: cluster-cached feature flags with fun_with_flags (FWF) semantics.
//!
//! * [`gate`]: boolean, actor, group, %-of-time and %-of-actors gates with FWF's precedence and
//!   FWF's %-of-actors score, so cohorts match a service that already uses FWF.
//! * [`store`]: SQLite (embedded default) and Postgres in FWF's Ecto table, Redis in FWF's
//!   layout: Rust and Elixir services can share one store.
//! * [`Flags`]: the local cache. Every flag lives in a slot whose answer without an actor is
//!   precomputed, and the name index is an immutable map swapped atomically: a check by
//!   [`FlagHandle`] is one atomic load, a check by name one lock-free map lookup more. A node
//!   loads every flag before it serves; writes go to the store first, then to the cache with a
//!   version, and an older version never overwrites a newer one. With the store down, checks go
//!   on from the cache and writes fail.
//!
//! * [`ClusterFlags`]: changes reach every node's cache through the cluster, with their version.
//!
//! * [`admin`]: the HTTP admin API (JSON), behind a token or basic auth.
//!
//! * [`redis_channel`]: FWF's Redis change channel, for deployments without our cluster or
//!   shared with fun_with_flags nodes.
//!
//! * [`Flags::evaluate`]: the answer with its [`Reason`], the deciding [`GateKind`] and the
//!   cached version, without allocating; [`Flags::history`]: who changed a flag, when, from
//!   what (every write is recorded in the store, beside FWF's data); opt-in evaluation counters
//!   ([`Flags::count_evaluations`]) and counts of checks of names that do not exist
//!   ([`Flags::unknown_checks`]); [`Flags::watch`]: every change installed, as [`FlagChange`].
//!
//! * `openfeature` (cargo feature `openfeature`): an OpenFeature provider over the cache.

pub mod admin;
mod cache;
pub mod cluster;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod install_log;
mod observe;
#[cfg(feature = "openfeature")]
pub mod openfeature;
pub mod redis_channel;
mod stats;
pub mod store;
mod writes;

pub use cache::{FlagHandle, Flags};
pub use cluster::ClusterFlags;
pub use gate::{
    actor_score, validate_name, Decision, Flag, FlagActor, Gate, GateKey, GateKind, Reason,
};
pub use install_log::InstallLog;
pub use observe::{ChangeOrigin, Evaluation, EvaluationCount, FlagChange};
pub use stats::MAX_UNKNOWN;
pub use store::{Change, FlagStore, HistoryEntry, RedisStore, SqlStore};

/// Errors of feature flags.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlagError {
    /// The flag name does not match `^\w+$`.
    #[error("invalid flag name {0:?}: use letters, digits and underscores")]
    InvalidName(String),
    /// A percentage outside `0 < r < 1`.
    #[error("invalid ratio {0}: it must lie strictly between 0 and 1")]
    InvalidRatio(f64),
    /// An empty actor id or group name.
    #[error("invalid gate target: {0}")]
    InvalidTarget(String),
    /// The store failed (down, unreachable, refused).
    #[error("flag store: {0}")]
    Store(String),
    /// The store holds something that is not a valid gate.
    #[error("corrupt flag data: {0}")]
    Corrupt(String),
}

/// A number from the wall clock alone (ns since the Unix epoch, as corrected by the cluster:
/// [`actor_core::wallclock`]). The cache's own versions are hybrid-logical-clock stamps
/// ([`actor_core::hlc::Stamp::version`]).
pub fn now_version() -> u64 {
    actor_core::wallclock::wall_ns()
}

/// Who writes are recorded as when nobody said ([`Flags::by`]).
pub const DEFAULT_AUTHOR: &str = "local";

/// History entries [`Flags::history`] returns at most.
pub const MAX_HISTORY: usize = 1000;
