//! `actor-poker`: the reference workload, poker-tournament ranking with failover.
//!
//! This crate is being built. It will hold the tournament model and storage (sqlx on SQLite and
//! Postgres), a seeded table simulator, the `TournamentRanking` actor (one per tournament, run by
//! the distributed supervisor, O(log n) updates per finished hand, rebuilt from the database after
//! a failover) and the naive recompute-everything design as the benchmark baseline.
