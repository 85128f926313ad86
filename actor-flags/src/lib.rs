//! `actor-flags`: cluster-cached feature flags with fun_with_flags semantics.
//!
//! This crate is being built. It will hold boolean, actor, group, percentage-of-time and
//! percentage-of-actors gates with fun_with_flags' precedence and scoring; stores for SQLite
//! (embedded default), Postgres (FWF's Ecto table) and Redis (FWF's layout and change channel);
//! and a per-node immutable snapshot swapped atomically, so a flag check is a lock-free local
//! read, kept current by versioned changes broadcast through the cluster.
