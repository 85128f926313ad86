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

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use sqlx::Row;

use crate::gate::{Flag, Gate, GateKey};
use crate::FlagError;

/// The Ecto table FWF uses.
pub const TABLE: &str = "fun_with_flags_toggles";
/// The boolean gate's target in the Ecto table.
pub const NO_TARGET: &str = "_fwf_none";
/// The Redis set of flag names.
pub const REDIS_SET: &str = "fun_with_flags";
/// The Redis channel of change notices.
pub const REDIS_CHANNEL: &str = "fun_with_flags_changes";

/// A persistent flag store.
pub trait FlagStore: Send + Sync + 'static {
    /// One flag (`None` if it has no gates).
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Flag>, FlagError>>;
    /// Sets a gate (a percentage gate replaces the flag's other percentage gate).
    fn put<'a>(&'a self, name: &'a str, gate: &'a Gate) -> BoxFuture<'a, Result<(), FlagError>>;
    /// Removes a gate.
    fn delete_gate<'a>(
        &'a self,
        name: &'a str,
        key: &'a GateKey,
    ) -> BoxFuture<'a, Result<(), FlagError>>;
    /// Removes a flag with all its gates.
    fn delete_flag<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), FlagError>>;
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
}

fn store_err(e: impl std::fmt::Display) -> FlagError {
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

/// Which SQL database.
#[derive(Debug, Clone)]
enum SqlPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// FWF's Ecto table on SQLite (a file; the embedded default) or Postgres.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: SqlPool,
}

impl SqlStore {
    /// Opens (creating if needed) a SQLite file and FWF's table in it.
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

    /// Connects to Postgres (`postgres://...`) and creates FWF's table if it is missing.
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
        match &self.pool {
            SqlPool::Sqlite(p) => {
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS fun_with_flags_toggles (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        flag_name TEXT NOT NULL,
                        gate_type TEXT NOT NULL,
                        target TEXT NOT NULL,
                        enabled BOOLEAN NOT NULL)",
                )
                .execute(p)
                .await
                .map_err(store_err)?;
                sqlx::query(
                    "CREATE UNIQUE INDEX IF NOT EXISTS fwf_flag_name_gate_target_idx
                     ON fun_with_flags_toggles (flag_name, gate_type, target)",
                )
                .execute(p)
                .await
                .map_err(store_err)?;
            }
            SqlPool::Postgres(p) => {
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS fun_with_flags_toggles (
                        id BIGSERIAL PRIMARY KEY,
                        flag_name VARCHAR(255) NOT NULL,
                        gate_type VARCHAR(255) NOT NULL,
                        target VARCHAR(255) NOT NULL,
                        enabled BOOLEAN NOT NULL)",
                )
                .execute(p)
                .await
                .map_err(store_err)?;
                sqlx::query(
                    "CREATE UNIQUE INDEX IF NOT EXISTS fwf_flag_name_gate_target_idx
                     ON fun_with_flags_toggles (flag_name, gate_type, target)",
                )
                .execute(p)
                .await
                .map_err(store_err)?;
            }
        }
        Ok(())
    }
}

/// Runs `$body` with `$p` bound to the pool, whichever database it is. The SQL is written once
/// with `$1, $2, ...` placeholders: Postgres numbers them, and SQLite takes `$N` as named
/// parameters numbered in order of first appearance, which is the same when each appears once,
/// in order.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            SqlPool::Sqlite($p) => $body,
            SqlPool::Postgres($p) => $body,
        }
    };
}

const SELECT_ONE: &str =
    "SELECT flag_name, gate_type, target, enabled FROM fun_with_flags_toggles WHERE flag_name = $1 ORDER BY id";
const SELECT_ALL: &str =
    "SELECT flag_name, gate_type, target, enabled FROM fun_with_flags_toggles ORDER BY flag_name, id";
const DELETE_PERCENTAGE: &str =
    "DELETE FROM fun_with_flags_toggles WHERE flag_name = $1 AND gate_type = 'percentage'";
const UPSERT: &str = "INSERT INTO fun_with_flags_toggles (flag_name, gate_type, target, enabled) VALUES ($1, $2, $3, $4)
     ON CONFLICT (flag_name, gate_type, target) DO UPDATE SET enabled = excluded.enabled";
const DELETE_GATE: &str =
    "DELETE FROM fun_with_flags_toggles WHERE flag_name = $1 AND gate_type = $2 AND ($3 OR target = $4)";
const DELETE_FLAG: &str = "DELETE FROM fun_with_flags_toggles WHERE flag_name = $1";

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

    fn put<'a>(&'a self, name: &'a str, gate: &'a Gate) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            let (gate_type, target, enabled) = sql_row(gate);
            on_pool!(&self.pool, p => {
                let mut tx = p.begin().await.map_err(store_err)?;
                if gate_type == "percentage" {
                    sqlx::query(DELETE_PERCENTAGE)
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_err)?;
                }
                sqlx::query(UPSERT)
                    .bind(name)
                    .bind(gate_type)
                    .bind(&target)
                    .bind(enabled)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_err)?;
                tx.commit().await.map_err(store_err)?;
            });
            Ok(())
        })
    }

    fn delete_gate<'a>(
        &'a self,
        name: &'a str,
        key: &'a GateKey,
    ) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            let (gate_type, target) = key_row(key);
            let target = target.unwrap_or_default();
            let any_target = target.is_empty();
            on_pool!(&self.pool, p => {
                sqlx::query(DELETE_GATE)
                    .bind(name)
                    .bind(gate_type)
                    .bind(any_target)
                    .bind(&target)
                    .execute(p)
                    .await
                    .map_err(store_err)?;
            });
            Ok(())
        })
    }

    fn delete_flag<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            on_pool!(&self.pool, p => {
                sqlx::query(DELETE_FLAG).bind(name).execute(p).await.map_err(store_err)?;
            });
            Ok(())
        })
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
}

/// FWF's Redis layout.
#[derive(Clone)]
pub struct RedisStore {
    conn: redis::aio::MultiplexedConnection,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

/// The hash key of a flag.
pub fn redis_key(name: &str) -> String {
    format!("{REDIS_SET}:{name}")
}

/// (field, value) of a gate in a flag's Redis hash.
pub fn redis_field(gate: &Gate) -> (String, String) {
    let b = |v: bool| if v { "true" } else { "false" }.to_owned();
    match gate {
        Gate::Boolean(v) => ("boolean".into(), b(*v)),
        Gate::Actor { id, enabled } => (format!("actor/{id}"), b(*enabled)),
        Gate::Group { name, enabled } => (format!("group/{name}"), b(*enabled)),
        Gate::PercentageOfTime(r) => ("percentage".into(), format!("time/{r}")),
        Gate::PercentageOfActors(r) => ("percentage".into(), format!("actors/{r}")),
    }
}

/// A gate from a Redis hash field and value.
pub fn gate_from_redis(field: &str, value: &str) -> Result<Gate, FlagError> {
    let flag = |v: &str| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(FlagError::Corrupt(format!(
            "value {other:?} of field {field:?}"
        ))),
    };
    if field == "boolean" {
        return Ok(Gate::Boolean(flag(value)?));
    }
    if field == "percentage" {
        return parse_percentage(value);
    }
    if let Some(id) = field.strip_prefix("actor/") {
        return Ok(Gate::Actor {
            id: id.to_owned(),
            enabled: flag(value)?,
        });
    }
    if let Some(name) = field.strip_prefix("group/") {
        return Ok(Gate::Group {
            name: name.to_owned(),
            enabled: flag(value)?,
        });
    }
    Err(FlagError::Corrupt(format!("field {field:?}")))
}

impl RedisStore {
    /// Connects to Redis (`redis://127.0.0.1:6379`).
    pub async fn connect(url: &str) -> Result<Self, FlagError> {
        let client = redis::Client::open(url).map_err(store_err)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(store_err)?;
        Ok(Self { conn })
    }

    /// Publishes FWF's change notice `<unique_id>:<flag>`.
    pub async fn notify(&self, unique_id: &str, flag: &str) -> Result<(), FlagError> {
        let mut c = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(REDIS_CHANNEL)
            .arg(format!("{unique_id}:{flag}"))
            .query_async::<i64>(&mut c)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn read(&self, name: &str) -> Result<Option<Flag>, FlagError> {
        let mut c = self.conn.clone();
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(redis_key(name))
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let mut flag = Flag::new(name);
        for (f, v) in fields {
            match gate_from_redis(&f, &v) {
                Ok(g) => flag.gates.push(g),
                Err(e) => {
                    tracing::warn!(flag = %name, error = %e, "skipping a field that does not parse")
                }
            }
        }
        Ok(Some(flag))
    }
}

impl FlagStore for RedisStore {
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Flag>, FlagError>> {
        Box::pin(self.read(name))
    }

    fn put<'a>(&'a self, name: &'a str, gate: &'a Gate) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            let (field, value) = redis_field(gate);
            let mut c = self.conn.clone();
            redis::pipe()
                .atomic()
                .cmd("SADD")
                .arg(REDIS_SET)
                .arg(name)
                .ignore()
                .cmd("HSET")
                .arg(redis_key(name))
                .arg(field)
                .arg(value)
                .ignore()
                .query_async::<()>(&mut c)
                .await
                .map_err(store_err)
        })
    }

    fn delete_gate<'a>(
        &'a self,
        name: &'a str,
        key: &'a GateKey,
    ) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            let field = match key {
                GateKey::Boolean => "boolean".to_owned(),
                GateKey::Actor(id) => format!("actor/{id}"),
                GateKey::Group(g) => format!("group/{g}"),
                GateKey::Percentage => "percentage".to_owned(),
            };
            let mut c = self.conn.clone();
            redis::cmd("HDEL")
                .arg(redis_key(name))
                .arg(field)
                .query_async::<i64>(&mut c)
                .await
                .map_err(store_err)?;
            Ok(())
        })
    }

    fn delete_flag<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            redis::pipe()
                .atomic()
                .cmd("SREM")
                .arg(REDIS_SET)
                .arg(name)
                .ignore()
                .cmd("DEL")
                .arg(redis_key(name))
                .ignore()
                .query_async::<()>(&mut c)
                .await
                .map_err(store_err)
        })
    }

    fn all_flags(&self) -> BoxFuture<'_, Result<Vec<Flag>, FlagError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for name in self.all_flag_names().await? {
                if let Some(f) = self.read(&name).await? {
                    out.push(f);
                }
            }
            Ok(out)
        })
    }

    fn all_flag_names(&self) -> BoxFuture<'_, Result<Vec<String>, FlagError>> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let mut names: Vec<String> = redis::cmd("SMEMBERS")
                .arg(REDIS_SET)
                .query_async(&mut c)
                .await
                .map_err(store_err)?;
            names.sort();
            Ok(names)
        })
    }
}
