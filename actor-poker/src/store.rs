//! The tournament database (sqlx): SQLite, the embedded default, or Postgres, with one schema
//! and embedded migrations (`actor-poker/migrations`).
//!
//! * `poker_tournaments`: one row per tournament with its status and the sequence number of its
//!   last write.
//! * `poker_tables`: one row per table, its state a JSON document ([`TableDoc`]).
//! * `poker_final_standings`: written by the ranking actor when the tournament ends.
//!
//! A hand is one transaction: the tournament's sequence number moves from `seq - 1` to `seq`
//! (a conditional update, so a hand is written at most once) and the changed table documents
//! are stored with it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;

use crate::model::{StandingRow, TableDoc, TournamentInfo, TournamentSnapshot, TournamentStatus};
use crate::sim::HandWrite;
use crate::PokerError;

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The tournament database.
#[derive(Debug, Clone)]
pub struct PokerStore {
    pool: Pool,
    url: String,
}

fn db(e: impl std::fmt::Display) -> PokerError {
    PokerError::Db(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> PokerError {
    PokerError::Corrupt(e.to_string())
}

/// Runs `$body` with `$p` bound to the pool, whichever database it is. The SQL is written once
/// with `$1, $2, ...` placeholders, which both take.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// A `poker_tournaments` row as sqlx decodes it.
type TournamentRow = (i64, String, i32, i64, String, i64);

const TOURNAMENT_COLS: &str = "id, name, players, starting_stack, status, seq";

fn to_i64(v: u64) -> Result<i64, PokerError> {
    i64::try_from(v).map_err(|_| PokerError::Db(format!("{v} does not fit the database")))
}

fn info_from(
    (id, name, players, stack, status, seq): TournamentRow,
) -> Result<TournamentInfo, PokerError> {
    Ok(TournamentInfo {
        id: u64::try_from(id).map_err(corrupt)?,
        name,
        players: u32::try_from(players).map_err(corrupt)?,
        starting_stack: u64::try_from(stack).map_err(corrupt)?,
        status: TournamentStatus::parse(&status)
            .ok_or_else(|| PokerError::Corrupt(format!("status {status:?}")))?,
        seq: u64::try_from(seq).map_err(corrupt)?,
    })
}

impl PokerStore {
    /// Opens a database and brings its schema up to date: `postgres://...`, or a SQLite file
    /// (`sqlite://path`, `sqlite:path` or a plain path; created if missing).
    pub async fn open(url: &str) -> Result<Self, PokerError> {
        Self::open_with(url, 8).await
    }

    /// Like [`PokerStore::open`], with at most `connections` pooled connections.
    pub async fn open_with(url: &str, connections: u32) -> Result<Self, PokerError> {
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = sqlx::postgres::PgConnectOptions::from_str(url).map_err(db)?;
            Pool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .map_err(db)?,
            )
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(20));
            Pool::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(connections.clamp(1, 4))
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await
                    .map_err(db)?,
            )
        };
        on_pool!(&pool, p => MIGRATOR.run(p).await.map_err(db)?);
        Ok(Self {
            pool,
            url: url.to_owned(),
        })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which database: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Creates a tournament with its tables, in one transaction. False if it already exists
    /// (nothing is changed then).
    pub async fn create_tournament(
        &self,
        info: &TournamentInfo,
        tables: &[TableDoc],
    ) -> Result<bool, PokerError> {
        let id = to_i64(info.id)?;
        let mut docs = Vec::with_capacity(tables.len());
        for t in tables {
            docs.push((
                t.table as i32,
                to_i64(t.hand_no)?,
                to_i64(t.seq)?,
                serde_json::to_string(t).map_err(db)?,
            ));
        }
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(db)?;
            let created = sqlx::query(
                "INSERT INTO poker_tournaments (id, name, players, starting_stack, status, seq)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(&info.name)
            .bind(info.players as i32)
            .bind(to_i64(info.starting_stack)?)
            .bind(info.status.as_str())
            .bind(to_i64(info.seq)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
                == 1;
            if !created {
                return Ok(false);
            }
            for (table, hand_no, seq, state) in &docs {
                sqlx::query(
                    "INSERT INTO poker_tables (tournament_id, table_no, hand_no, seq, state)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(*table)
                .bind(*hand_no)
                .bind(*seq)
                .bind(state)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
        });
        Ok(true)
    }

    /// Writes a hand: the tournament moves to the hand's sequence number (from the one before;
    /// otherwise [`PokerError::SeqConflict`] and nothing is written) and its table documents are
    /// stored, in one transaction.
    pub async fn write_hand(&self, write: &HandWrite) -> Result<(), PokerError> {
        let ev = &write.event;
        let id = to_i64(ev.tournament)?;
        let seq = to_i64(ev.seq)?;
        let status = if ev.finished {
            TournamentStatus::Finished
        } else {
            TournamentStatus::Running
        };
        let mut docs = Vec::with_capacity(write.docs.len());
        for t in &write.docs {
            docs.push((
                t.table as i32,
                to_i64(t.hand_no)?,
                serde_json::to_string(t).map_err(db)?,
            ));
        }
        let conflict = on_pool!(&self.pool, p => {
            let mut tx = match &self.pool {
                // A write transaction takes SQLite's write lock up front, so it waits for
                // another writer instead of failing to upgrade a read.
                Pool::Sqlite(_) => p.begin_with("BEGIN IMMEDIATE").await.map_err(db)?,
                Pool::Postgres(_) => p.begin().await.map_err(db)?,
            };
            let moved = sqlx::query(
                "UPDATE poker_tournaments SET seq = $1, status = $2 WHERE id = $3 AND seq = $4",
            )
            .bind(seq)
            .bind(status.as_str())
            .bind(id)
            .bind(seq - 1)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if moved != 1 {
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT seq FROM poker_tournaments WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?;
                Some(found)
            } else {
                for (table, hand_no, state) in &docs {
                    sqlx::query(
                        "UPDATE poker_tables SET hand_no = $1, seq = $2, state = $3
                         WHERE tournament_id = $4 AND table_no = $5",
                    )
                    .bind(*hand_no)
                    .bind(seq)
                    .bind(state)
                    .bind(id)
                    .bind(*table)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
                tx.commit().await.map_err(db)?;
                None
            }
        });
        match conflict {
            None => Ok(()),
            Some(None) => Err(PokerError::NoTournament(ev.tournament)),
            Some(Some(found)) => Err(PokerError::SeqConflict {
                tournament: ev.tournament,
                expected: ev.seq,
                found: found.max(0) as u64,
            }),
        }
    }

    /// A tournament's row.
    pub async fn tournament(&self, id: u64) -> Result<TournamentInfo, PokerError> {
        let sql = format!("SELECT {TOURNAMENT_COLS} FROM poker_tournaments WHERE id = $1");
        let row: Option<TournamentRow> = on_pool!(&self.pool, p => {
            sqlx::query_as(&sql).bind(to_i64(id)?).fetch_optional(p).await.map_err(db)?
        });
        info_from(row.ok_or(PokerError::NoTournament(id))?)
    }

    /// Every tournament, by id.
    pub async fn tournaments(&self) -> Result<Vec<TournamentInfo>, PokerError> {
        let sql = format!("SELECT {TOURNAMENT_COLS} FROM poker_tournaments ORDER BY id");
        let rows: Vec<TournamentRow> = on_pool!(&self.pool, p => {
            sqlx::query_as(&sql).fetch_all(p).await.map_err(db)?
        });
        rows.into_iter().map(info_from).collect()
    }

    /// The tournament's row and every table document, read in one transaction (a consistent
    /// snapshot).
    pub async fn snapshot(&self, id: u64) -> Result<TournamentSnapshot, PokerError> {
        let key = to_i64(id)?;
        let sql = format!("SELECT {TOURNAMENT_COLS} FROM poker_tournaments WHERE id = $1");
        let (row, states): (Option<TournamentRow>, Vec<String>) = on_pool!(&self.pool, p => {
            let mut tx = match &self.pool {
                Pool::Sqlite(_) => p.begin().await.map_err(db)?,
                Pool::Postgres(_) => p
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
                    .map_err(db)?,
            };
            let row = sqlx::query_as(&sql)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let states = sqlx::query(
                "SELECT state FROM poker_tables WHERE tournament_id = $1 ORDER BY table_no",
            )
            .bind(key)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .into_iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<String>, _>>()
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            (row, states)
        });
        let info = info_from(row.ok_or(PokerError::NoTournament(id))?)?;
        let tables = states
            .iter()
            .map(|s| serde_json::from_str::<TableDoc>(s).map_err(corrupt))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TournamentSnapshot { info, tables })
    }

    /// Stores a tournament's final standings (replacing any stored before), in one transaction.
    pub async fn save_final_standings(
        &self,
        id: u64,
        rows: &[StandingRow],
    ) -> Result<(), PokerError> {
        let key = to_i64(id)?;
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(db)?;
            sqlx::query("DELETE FROM poker_final_standings WHERE tournament_id = $1")
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            for chunk in rows.chunks(500) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO poker_final_standings (tournament_id, position, player_id, stack, table_no) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(key)
                        .push_bind(r.position as i32)
                        .push_bind(r.player as i32)
                        .push_bind(r.stack.min(i64::MAX as u64) as i64)
                        .push_bind(r.table as i32);
                });
                qb.build().execute(&mut *tx).await.map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
        });
        Ok(())
    }

    /// A tournament's stored final standings (empty until its ranking actor wrote them).
    pub async fn final_standings(&self, id: u64) -> Result<Vec<StandingRow>, PokerError> {
        let sql = "SELECT f.position, f.player_id, f.stack, f.table_no FROM poker_final_standings f
                   WHERE f.tournament_id = $1 ORDER BY f.position";
        let rows: Vec<(i32, i32, i64, i32)> = on_pool!(&self.pool, p => {
            sqlx::query_as(sql).bind(to_i64(id)?).fetch_all(p).await.map_err(db)?
        });
        rows.into_iter()
            .map(|(position, player, stack, table)| {
                Ok(StandingRow {
                    position: u32::try_from(position).map_err(corrupt)?,
                    player: u32::try_from(player).map_err(corrupt)?,
                    stack: u64::try_from(stack).map_err(corrupt)?,
                    table: u32::try_from(table).map_err(corrupt)?,
                    busted: stack == 0,
                })
            })
            .collect()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        on_pool!(&self.pool, p => p.close().await);
    }
}
