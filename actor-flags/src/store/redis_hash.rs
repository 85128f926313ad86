//! FWF's Redis layout, and the history lists beside it.

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{
    history_entry, key_field, parse_percentage, store_err, Change, FlagStore, HistoryEntry,
    REDIS_CHANNEL, REDIS_HISTORY_MAX, REDIS_HISTORY_PREFIX, REDIS_SET,
};
use crate::gate::{Flag, Gate, GateKey};
use crate::FlagError;

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

/// The history list of a flag.
pub fn redis_history_key(name: &str) -> String {
    format!("{REDIS_HISTORY_PREFIX}:{name}")
}

// Every write script takes KEYS = (hash, set of names, history list) and ARGV = (name, at_ms,
// by, entries kept, then the field and value it writes, if any): one `RedisStore::write` runs
// them all.

/// Sets one field, pushing a history entry with the field's old value, atomically.
/// ARGV[5]: field, ARGV[6]: value.
const PUT: &str = r"
local old = redis.call('HGET', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[5], ARGV[6])
local e = cjson.encode({at_ms = ARGV[2], by = ARGV[3], field = ARGV[5], old = old or cjson.null, new = ARGV[6]})
redis.call('LPUSH', KEYS[3], e)
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
return 1
";

/// Removes one field (if there), pushing a history entry. ARGV[5]: field.
const DELETE_GATE: &str = r"
local old = redis.call('HGET', KEYS[1], ARGV[5])
if not old then return 0 end
redis.call('HDEL', KEYS[1], ARGV[5])
local e = cjson.encode({at_ms = ARGV[2], by = ARGV[3], field = ARGV[5], old = old, new = cjson.null})
redis.call('LPUSH', KEYS[3], e)
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
return 1
";

/// Removes a flag, pushing one history entry per field.
const DELETE_FLAG: &str = r"
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e = cjson.encode({at_ms = ARGV[2], by = ARGV[3], field = all[i], old = all[i + 1], new = cjson.null})
  redis.call('LPUSH', KEYS[3], e)
end
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return #all / 2
";

/// A history entry as the scripts store it.
#[derive(Debug, Deserialize)]
struct StoredEntry {
    at_ms: String,
    by: String,
    field: String,
    old: Option<String>,
    new: Option<String>,
}

/// A history entry as a Redis history list stores it (JSON written by the store's scripts).
pub fn decode_redis_history(raw: &str) -> Result<HistoryEntry, FlagError> {
    let e = serde_json::from_str::<StoredEntry>(raw)
        .map_err(|e| FlagError::Corrupt(format!("history entry {raw:?}: {e}")))?;
    let at_ms = e
        .at_ms
        .parse::<i64>()
        .map_err(|_| FlagError::Corrupt(format!("history time {:?}", e.at_ms)))?;
    history_entry(at_ms, e.by, &e.field, e.old.as_deref(), e.new.as_deref())
}

impl RedisStore {
    /// Runs one of the write scripts on flag `name`.
    async fn write(
        &self,
        script: &str,
        name: &str,
        change: &Change<'_>,
        extra: &[&str],
    ) -> Result<(), FlagError> {
        let mut c = self.conn.clone();
        let script = redis::Script::new(script);
        let mut inv = script.prepare_invoke();
        inv.key(redis_key(name))
            .key(REDIS_SET)
            .key(redis_history_key(name))
            .arg(name)
            .arg(change.at_ms.to_string())
            .arg(change.by)
            .arg(REDIS_HISTORY_MAX);
        for a in extra {
            inv.arg(*a);
        }
        inv.invoke_async::<i64>(&mut c).await.map_err(store_err)?;
        Ok(())
    }
}

impl FlagStore for RedisStore {
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Flag>, FlagError>> {
        Box::pin(self.read(name))
    }

    fn put<'a>(
        &'a self,
        name: &'a str,
        gate: &'a Gate,
        change: &'a Change<'a>,
    ) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            let (field, value) = redis_field(gate);
            self.write(PUT, name, change, &[&field, &value]).await
        })
    }

    fn delete_gate<'a>(
        &'a self,
        name: &'a str,
        key: &'a GateKey,
        change: &'a Change<'a>,
    ) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(async move {
            self.write(DELETE_GATE, name, change, &[&key_field(key)])
                .await
        })
    }

    fn delete_flag<'a>(
        &'a self,
        name: &'a str,
        change: &'a Change<'a>,
    ) -> BoxFuture<'a, Result<(), FlagError>> {
        Box::pin(self.write(DELETE_FLAG, name, change, &[]))
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

    fn history<'a>(
        &'a self,
        name: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>, FlagError>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let mut c = self.conn.clone();
            let raw: Vec<String> = redis::cmd("LRANGE")
                .arg(redis_history_key(name))
                .arg(0)
                .arg(i64::try_from(limit).unwrap_or(i64::MAX) - 1)
                .query_async(&mut c)
                .await
                .map_err(store_err)?;
            let mut out = Vec::with_capacity(raw.len());
            for r in raw {
                match decode_redis_history(&r) {
                    Ok(e) => out.push(e),
                    Err(e) => {
                        tracing::warn!(flag = %name, error = %e, "skipping a history entry that does not parse")
                    }
                }
            }
            Ok(out)
        })
    }
}
