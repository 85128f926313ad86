//! `actor-poker`: the reference workload, poker-tournament ranking with failover.
//!
//! An online poker tournament service shows standings that change with every finished hand. The
//! design that ships in many such services reads every table's document from the database on
//! each hand, parses and sorts. This crate builds the better one on the toolkit:
//!
//! * [`model`]: tournaments, tables stored as one JSON document each, the [`HandFinished`] event,
//!   and the full recomputation used as ground truth.
//! * [`store`]: the database (sqlx; SQLite by default, or Postgres), one schema with embedded
//!   migrations; each hand is one transaction.
//! * [`sim`]: a seeded table simulator with rising blinds, all-ins, busts and table balancing.
//! * [`ranking`]: the sans-IO incremental ranking, O(k log n) per hand over an order-statistic
//!   set ([`order`]), order-independent and duplicate-proof.
//! * [`actor`]: `TournamentRanking`, a child kind of the distributed supervisor (id
//!   `tournament:<id>`) that loads its tournament from the database when it starts (after a
//!   failover too), applies events, publishes standings to subscribers on any node, and persists
//!   the final standings; and `NaiveRanking`, the read-everything design, as the baseline.
//! * [`driver`]: plays a tournament against the database and the cluster, delivering each
//!   hand's event until it is received, and ends the tournament through the supervisor.

pub mod actor;
pub mod driver;
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod order;
pub mod ranking;
pub mod service;
pub mod sim;
pub mod store;

pub use actor::{
    ranking_child, ranking_kind, subscribe, NaiveRanking, RankingContext, RankingEntity,
    RankingMove, RankingMsg, RankingOptions, StandingsUpdate, TournamentRanking, NAIVE_KIND,
    RANKING_KIND,
};
pub use model::{HandFinished, StandingRow, TableDoc, TournamentSnapshot};
pub use ranking::Ranking;
pub use service::{start_supervisor, SUPERVISOR};
pub use sim::{SimConfig, TournamentSim};
pub use store::PokerStore;

/// Errors of the poker workload.
#[derive(Debug, thiserror::Error)]
pub enum PokerError {
    /// The database failed or refused.
    #[error("database: {0}")]
    Db(String),
    /// A stored document did not parse.
    #[error("corrupt data in the database: {0}")]
    Corrupt(String),
    /// No such tournament.
    #[error("no tournament {0}")]
    NoTournament(u64),
    /// The write's sequence number is not the next one: someone else wrote this hand.
    #[error("tournament {tournament}: expected sequence {expected}, the database is at {found}")]
    SeqConflict {
        /// The tournament.
        tournament: u64,
        /// The sequence number written.
        expected: u64,
        /// The database's.
        found: u64,
    },
    /// The cluster did not deliver or answer in time.
    #[error("cluster: {0}")]
    Cluster(String),
}

/// The supervisor child id of a tournament's ranking actor.
pub fn child_id(tournament: u64) -> String {
    format!("tournament:{tournament}")
}
