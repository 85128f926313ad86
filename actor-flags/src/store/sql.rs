//! FWF's Ecto table on SQLite or Postgres (sqlx), and the history table beside it.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use sqlx::Row;

use super::{history_entry, store_err, Change, FlagStore, HistoryEntry, NO_TARGET};
use crate::gate::{Flag, Gate, GateKey};
use crate::store::gate_from_sql;
use crate::FlagError;

fn key_row(key: &GateKey) -> (&'static str, Option<String>) {
    match key {
        GateKey::Boolean => ("boolean", Some(NO_TARGET.to_owned())),
        GateKey::Actor(id) => ("actor", Some(id.clone())),
        GateKey::Group(g) => ("group", Some(g.clone())),
        GateKey::Percentage => ("percentage", None),
    }
}

/// Collects rows into flags, skipping (and logging) rows that do not parse.
fn collect(rows: Vec<(String, String, String, bool)>) -> Vec<Flag> {
    let mut flags: BTreeMap<String, Flag> = BTreeMap::new();
    for (name, gate_type, target, enabled) in rows {
        match gate_from_sql(&gate_type, &target, enabled) {
            Ok(g) => flags
                .entry(name.clone())
                .or_insert_with(|| Flag::new(name))
                .gates
                .push(g),
            Err(e) => {
                tracing::warn!(flag = %name, error = %e, "skipping a row that does not parse")
            }
        }
    }
    flags.into_values().collect()
}

/// Runs `$body` with `$p` bound to the pool, whichever database it is. The SQL is written once
/// with `$1, $2, ...` placeholders: Postgres numbers them, and SQLite takes `$N` as named
/// parameters numbered in order of first appearance, which is the same when they first appear
/// in order (a later repeat names the same parameter in both).
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            SqlPool::Sqlite($p) => $body,
            SqlPool::Postgres($p) => $body,
        }
    };
}

/// Which SQL database.
#[derive(Debug, Clone)]
enum SqlPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// FWF's Ecto table on SQLite (a file; the embedded default) or Postgres, with our history
/// table beside it.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: SqlPool,
}

impl SqlStore {
    /// Opens (creating if needed) a SQLite file, FWF's table and the history table in it.
    pub async fn sqlite(path: &std::path::Path) -> Result<Self, FlagError> {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        // The table is created through a pool of its own that is closed before the store's pool
        // opens: a SQLite connection that loaded the schema before the unique index existed
        // refuses the upsert ("ON CONFLICT clause does not match") until its schema reloads.
        let setup = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .map_err(store_err)?;
        Self {
            pool: SqlPool::Sqlite(setup.clone()),
        }
        .migrate()
        .await?;
        setup.close().await;
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(store_err)?;
        Ok(Self {
            pool: SqlPool::Sqlite(pool),
        })
    }

    /// Connects to Postgres (`postgres://...`) and creates FWF's table and the history table if
    /// they are missing.
    pub async fn postgres(url: &str) -> Result<Self, FlagError> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(store_err)?;
        let s = Self {
            pool: SqlPool::Postgres(pool),
        };
        s.migrate().await?;
        Ok(s)
    }

    async fn migrate(&self) -> Result<(), FlagError> {
        let (id, text) = match &self.pool {
            SqlPool::Sqlite(_) => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT"),
            SqlPool::Postgres(_) => ("BIGSERIAL PRIMARY KEY", "VARCHAR(255)"),
        };
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS fun_with_flags_toggles (
                    id {id},
                    flag_name {text} NOT NULL,
                    gate_type {text} NOT NULL,
                    target {text} NOT NULL,
                    enabled BOOLEAN NOT NULL)"
            ),
            "CREATE UNIQUE INDEX IF NOT EXISTS fwf_flag_name_gate_target_idx
             ON fun_with_flags_toggles (flag_name, gate_type, target)"
                .to_owned(),
            format!(
                "CREATE TABLE IF NOT EXISTS actor_flags_history (
                    id {id},
                    flag_name {text} NOT NULL,
                    at_ms BIGINT NOT NULL,
                    author TEXT NOT NULL,
                    gate_type {text} NOT NULL,
                    target {text} NOT NULL,
                    old_value TEXT,
                    new_value TEXT)"
            ),
            "CREATE INDEX IF NOT EXISTS actor_flags_history_flag_idx
             ON actor_flags_history (flag_name, id)"
                .to_owned(),
        ];
        match &self.pool {
            SqlPool::Postgres(p) => {
                // Nodes that start together against a fresh database would race on the
                // catalog (`CREATE TABLE IF NOT EXISTS` is not safe concurrently in Postgres):
                // one migration at a time.
                let mut tx = p.begin().await.map_err(store_err)?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('actor_flags_migrate'))")
                    .execute(&mut *tx)
                    .await
                    .map_err(store_err)?;
                for sql in &statements {
                    sqlx::query(sql)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_err)?;
                }
                tx.commit().await.map_err(store_err)?;
            }
            SqlPool::Sqlite(p) => {
                for sql in &statements {
                    sqlx::query(sql).execute(p).await.map_err(store_err)?;
                }
            }
        }
        Ok(())
    }
}

const SELECT_ONE: &str =
    "SELECT flag_name, gate_type, target, enabled FROM fun_with_flags_toggles WHERE flag_name = $1 ORDER BY id";
const SELECT_ALL: &str =
    "SELECT flag_name, gate_type, target, enabled FROM fun_with_flags_toggles ORDER BY flag_name, id";
const DELETE_PERCENTAGE: &str =
    "DELETE FROM fun_with_flags_toggles WHERE flag_name = $1 AND gate_type = 'percentage'";
const UPSERT: &str = "INSERT INTO fun_with_flags_toggles (flag_name, gate_type, target, enabled) VALUES ($1, $2, $3, $4)
     ON CONFLICT (flag_name, gate_type, target) DO UPDATE SET enabled = excluded.enabled";
/// Deletes toggle rows: $1 flag, $2 any gate type, $3 gate type, $4 any target, $5 target.
const DELETE_ROWS: &str = "DELETE FROM fun_with_flags_toggles
     WHERE flag_name = $1 AND ($2 OR gate_type = $3) AND ($4 OR target = $5)";

/// A toggle row's value in the history's encoding (FWF's Redis values).
const ROW_VALUE: &str =
    "CASE WHEN gate_type = 'percentage' THEN target WHEN enabled THEN 'true' ELSE 'false' END";
/// The history's target of a toggle row: the percentage gate's target is its value.
const ROW_TARGET: &str = "CASE WHEN gate_type = 'percentage' THEN '' ELSE target END";

/// The history row of a put: the old value read from the toggle row in the same statement.
/// $1 flag, $2 at, $3 by, $4 gate type, $5 target (history's), $6 toggle target, $7 new value.
fn insert_put_history() -> String {
    format!(
        "INSERT INTO actor_flags_history (flag_name, at_ms, author, gate_type, target, old_value, new_value)
         VALUES ($1, $2, $3, $4, $5,
           (SELECT {ROW_VALUE} FROM fun_with_flags_toggles
            WHERE flag_name = $1 AND gate_type = $4 AND (gate_type = 'percentage' OR target = $6)
            LIMIT 1),
           $7)"
    )
}

/// The history rows of a delete: one per toggle row about to go (same filter as the delete).
/// $1 flag, $2 at, $3 by, $4 any gate type, $5 gate type, $6 any target, $7 target.
fn insert_delete_history() -> String {
    format!(
        "INSERT INTO actor_flags_history (flag_name, at_ms, author, gate_type, target, old_value, new_value)
         SELECT $1, $2, $3, gate_type, {ROW_TARGET}, {ROW_VALUE}, NULL
         FROM fun_with_flags_toggles
         WHERE flag_name = $1 AND ($4 OR gate_type = $5) AND ($6 OR target = $7)
         ORDER BY id"
    )
}

const SELECT_HISTORY: &str = "SELECT at_ms, author, gate_type, target, old_value, new_value
     FROM actor_flags_history WHERE flag_name = $1 ORDER BY id DESC LIMIT $2";

/// The history's target of a gate key (the percentage gate's is empty: its value says which).
fn history_target(key: &GateKey) -> String {
    match key {
        GateKey::Boolean => NO_TARGET.to_owned(),
        GateKey::Actor(id) => id.clone(),
        GateKey::Group(g) => g.clone(),
        GateKey::Percentage => String::new(),
    }
}

/// The Redis-style field of a history row's gate.
fn history_field(gate_type: &str, target: &str) -> String {
    match gate_type {
        "actor" => format!("actor/{target}"),
        "group" => format!("group/{target}"),
        other => other.to_owned(),
    }
}

impl SqlStore {
    /// Serializes writers of one flag on Postgres (SQLite serializes every writer already: each
    /// write transaction starts with a write).
    async fn lock_flag(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        name: &str,
    ) -> Result<(), FlagError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(store_err)?;
        Ok(())
    }
}

/// Begins a transaction on `$p`, taking the per-flag lock on Postgres.
macro_rules! begin {
    ($pool:expr, $name:expr) => {
        match $pool {
            SqlPool::Sqlite(p) => Tx::Sqlite(p.begin().await.map_err(store_err)?),
            SqlPool::Postgres(p) => {
                let mut tx = p.begin().await.map_err(store_err)?;
                SqlStore::lock_flag(&mut tx, $name).await?;
                Tx::Postgres(tx)
            }
        }
    };
}

/// A transaction on either database.
enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$t` bound to the open transaction's connection.
macro_rules! on_tx {
    ($tx:expr, $t:ident => $body:expr) => {
        match $tx {
            Tx::Sqlite(tx) => {
                let $t = &mut **tx;
                $body
            }
            Tx::Postgres(tx) => {
                let $t = &mut **tx;
                $body
            }
        }
    };
}

impl Tx {
    async fn commit(self) -> Result<(), FlagError> {
        match self {
            Tx::Sqlite(t) => t.commit().await.map_err(store_err),
            Tx::Postgres(t) => t.commit().await.map_err(store_err),
        }
    }
}

impl SqlStore {
    /// Deletes the toggle rows of `name` of `gate_type` (`None`: every type) and `target`
    /// (empty: every target), recording one history entry per row, in one transaction.
    async fn delete_rows(
        &self,
        name: &str,
        change: &Change<'_>,
        gate_type: Option<&str>,
        target: &str,
    ) -> Result<(), FlagError> {
        let (any_type, gate_type) = (gate_type.is_none(), gate_type.unwrap_or_default());
        let any_target = target.is_empty();
        let history = insert_delete_history();
        let mut tx = begin!(&self.pool, name);
        on_tx!(&mut tx, t => {
            sqlx::query(&history)
                .bind(name)
                .bind(change.at_ms)
                .bind(change.by)
                .bind(any_type)
                .bind(gate_type)
                .bind(any_target)
                .bind(target)
                .execute(&mut *t)
                .await
                .map_err(store_err)?;
            sqlx::query(DELETE_ROWS)
                .bind(name)
                .bind(any_type)
                .bind(gate_type)
                .bind(any_target)
                .bind(target)
                .execute(&mut *t)
                .await
                .map_err(store_err)?;
        });
        tx.commit().await
    }
}

impl FlagStore for SqlStore {
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Flag>, FlagError>> {
        Box::pin(async move {
            let rows: Vec<(String, String, String, bool)> = on_pool!(&self.pool, p => sqlx::query(SELECT_ONE)
                .bind(name)
                .fetch_all(p)
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect());
            Ok(collect(rows).into_iter().next())
        })
    }

    fn put<'a>(
        &'a self,
        name: &'a str,
        gate: &'a Gate,
        change: &'a Change<'a>,
    ) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            let (gate_type, target, enabled) = super::sql_row(gate);
            let history_target = history_target(&gate.key());
            let history = insert_put_history();
            let mut tx = begin!(&self.pool, name);
            on_tx!(&mut tx, t => {
                sqlx::query(&history)
                    .bind(name)
                    .bind(change.at_ms)
                    .bind(change.by)
                    .bind(gate_type)
                    .bind(&history_target)
                    .bind(&target)
                    .bind(super::gate_value(gate))
                    .execute(&mut *t)
                    .await
                    .map_err(store_err)?;
                if gate_type == "percentage" {
                    sqlx::query(DELETE_PERCENTAGE)
                        .bind(name)
                        .execute(&mut *t)
                        .await
                        .map_err(store_err)?;
                }
                sqlx::query(UPSERT)
                    .bind(name)
                    .bind(gate_type)
                    .bind(&target)
                    .bind(enabled)
                    .execute(&mut *t)
                    .await
                    .map_err(store_err)?;
            });
            tx.commit().await
        })
    }

    fn delete_gate<'a>(
        &'a self,
        name: &'a str,
        key: &'a GateKey,
        change: &'a Change<'a>,
    ) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            let (gate_type, target) = key_row(key);
            let target = target.unwrap_or_default();
            self.delete_rows(name, change, Some(gate_type), &target)
                .await
        })
    }

    fn delete_flag<'a>(
        &'a self,
        name: &'a str,
        change: &'a Change<'a>,
    ) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(self.delete_rows(name, change, None, ""))
    }

    fn all_flags(&self) -> BoxFuture<'_, Result<Vec<Flag>, FlagError>> {
        Box::pin(async move {
            let rows: Vec<(String, String, String, bool)> = on_pool!(&self.pool, p => sqlx::query(SELECT_ALL)
                .fetch_all(p)
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect());
            Ok(collect(rows))
        })
    }

    fn history<'a>(
        &'a self,
        name: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>, FlagError>> {
        Box::pin(async move {
            type HistoryRow = (i64, String, String, String, Option<String>, Option<String>);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows: Vec<HistoryRow> = on_pool!(&self.pool, p => sqlx::query(SELECT_HISTORY)
                .bind(name)
                .bind(limit)
                .fetch_all(p)
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
                .collect());
            let mut out = Vec::with_capacity(rows.len());
            for (at_ms, by, gate_type, target, old, new) in rows {
                let field = history_field(&gate_type, &target);
                match history_entry(at_ms, by, &field, old.as_deref(), new.as_deref()) {
                    Ok(e) => out.push(e),
                    Err(e) => {
                        tracing::warn!(flag = %name, error = %e, "skipping a history row that does not parse")
                    }
                }
            }
            Ok(out)
        })
    }
}
