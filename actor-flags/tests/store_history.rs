//! The audit history in every store, over real SQLite (a file), Postgres (127.0.0.1:5432,
//! database `test`) and Redis (127.0.0.1:6379): every write through the cache is recorded with
//! who, when, which gate, old and new value, newest first; it lives beside FWF's data (its own
//! table or keys), and FWF's own writes (raw rows, raw hash fields) are not in it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use actor_flags::store::{HistoryEntry, RedisStore, SqlStore};
use actor_flags::{FlagStore, Flags, Gate, GateKey};

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS: &str = "redis://127.0.0.1:6379";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        actor_flags::now_version() % 1_000_000_000
    )
}

type Row = (&'static str, GateKey, Option<Gate>, Option<Gate>);

/// Writes a sequence by several authors; returns what the history must say, newest first.
async fn write_sequence(flags: &Flags, name: &str) -> Vec<Row> {
    flags.by("alice").enable(name).await.unwrap();
    flags
        .by("bob")
        .set_for_actor(name, "user:1", true)
        .await
        .unwrap();
    flags
        .by("bob")
        .set_for_actor(name, "user:1", false)
        .await
        .unwrap();
    flags
        .by("carol")
        .enable_percentage_of_time(name, 0.3)
        .await
        .unwrap();
    // Replaces the %-of-time gate: the old value is the other kind of percentage.
    flags
        .by("carol")
        .enable_percentage_of_actors(name, 0.5)
        .await
        .unwrap();
    // A gate that is not there: nothing to record.
    flags
        .by("dave")
        .clear_gate(name, &GateKey::Group("nobody".into()))
        .await
        .unwrap();
    flags
        .by("dave")
        .clear_gate(name, &GateKey::Actor("user:1".into()))
        .await
        .unwrap();
    flags.by("erin").clear(name).await.unwrap();
    let actor = |on| Gate::Actor {
        id: "user:1".into(),
        enabled: on,
    };
    let mut want = vec![
        ("alice", GateKey::Boolean, None, Some(Gate::Boolean(true))),
        (
            "bob",
            GateKey::Actor("user:1".into()),
            None,
            Some(actor(true)),
        ),
        (
            "bob",
            GateKey::Actor("user:1".into()),
            Some(actor(true)),
            Some(actor(false)),
        ),
        (
            "carol",
            GateKey::Percentage,
            None,
            Some(Gate::PercentageOfTime(0.3)),
        ),
        (
            "carol",
            GateKey::Percentage,
            Some(Gate::PercentageOfTime(0.3)),
            Some(Gate::PercentageOfActors(0.5)),
        ),
        (
            "dave",
            GateKey::Actor("user:1".into()),
            Some(actor(false)),
            None,
        ),
    ];
    // The clear of the flag removes what is left, one entry per gate (in either order).
    want.push(("erin", GateKey::Boolean, Some(Gate::Boolean(true)), None));
    want.push((
        "erin",
        GateKey::Percentage,
        Some(Gate::PercentageOfActors(0.5)),
        None,
    ));
    want.reverse();
    want
}

fn rows(h: &[HistoryEntry]) -> Vec<Row> {
    h.iter()
        .map(|e| {
            let by: &'static str = match e.by.as_str() {
                "alice" => "alice",
                "bob" => "bob",
                "carol" => "carol",
                "dave" => "dave",
                "erin" => "erin",
                other => panic!("unexpected author {other:?}"),
            };
            (by, e.gate.clone(), e.old.clone(), e.new.clone())
        })
        .collect()
}

/// The history equals `want`, up to the order of the entries of the last clear.
fn assert_history(h: &[HistoryEntry], mut want: Vec<Row>, began_ms: i64, store: &str) {
    let mut got = rows(h);
    let key = |r: &Row| format!("{r:?}");
    got[..2].sort_by_key(key);
    want[..2].sort_by_key(key);
    assert_eq!(got, want, "{store}: history, newest first");
    let now = (actor_flags::now_version() / 1_000_000) as i64;
    for e in h {
        assert!(
            (began_ms..=now).contains(&e.at_ms),
            "{store}: time {} outside [{began_ms}, {now}]",
            e.at_ms
        );
    }
}

async fn check_store(store: Arc<dyn FlagStore>, label: &str) -> String {
    let flags = Flags::open(store.clone()).await.unwrap();
    let name = unique(&format!("hist_{label}"));
    let began = (actor_flags::now_version() / 1_000_000) as i64;
    let want = write_sequence(&flags, &name).await;
    let h = flags.history(&name, 100).await.unwrap();
    assert_history(&h, want.clone(), began, label);
    // A limit takes the newest.
    let newest = flags.history(&name, 3).await.unwrap();
    assert_eq!(newest, h[..3].to_vec(), "{label}: limit 3");
    assert!(flags.history(&name, 0).await.unwrap().is_empty());
    // Another flag's history is its own.
    assert!(flags
        .history(&unique("never_written"), 10)
        .await
        .unwrap()
        .is_empty());
    name
}

#[tokio::test]
async fn sqlite_history_is_a_table_beside_fwfs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = SqlStore::sqlite(&path).await.unwrap();
    let name = check_store(Arc::new(store.clone()), "sqlite").await;
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // FWF's table has FWF's columns only, and the flag's rows are gone.
    let cols: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('fun_with_flags_toggles')")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(cols, ["id", "flag_name", "gate_type", "target", "enabled"]);
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM fun_with_flags_toggles WHERE flag_name = ?")
            .bind(&name)
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(left, 0);
    // An FWF node's own write (a raw row) is not in the history.
    sqlx::query(
        "INSERT INTO fun_with_flags_toggles (flag_name, gate_type, target, enabled)
         VALUES (?, 'boolean', '_fwf_none', 1)",
    )
    .bind(&name)
    .execute(&raw)
    .await
    .unwrap();
    let flags = Flags::open(Arc::new(store)).await.unwrap();
    assert!(flags.enabled(&name));
    assert_eq!(flags.history(&name, 100).await.unwrap().len(), 8);
    // A corrupt history row is skipped, not an error.
    sqlx::query(
        "INSERT INTO actor_flags_history (flag_name, at_ms, author, gate_type, target, old_value, new_value)
         VALUES (?, 1, 'x', 'boolean', '_fwf_none', 'maybe', NULL)",
    )
    .bind(&name)
    .execute(&raw)
    .await
    .unwrap();
    assert_eq!(flags.history(&name, 100).await.unwrap().len(), 8);
}

#[tokio::test]
async fn postgres_history_is_a_table_beside_fwfs() {
    let store = SqlStore::postgres(PG)
        .await
        .expect("Postgres on 127.0.0.1:5432");
    let name = check_store(Arc::new(store), "postgres").await;
    let raw = sqlx::PgPool::connect(PG).await.unwrap();
    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_name = 'fun_with_flags_toggles' ORDER BY ordinal_position",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    assert_eq!(cols, ["id", "flag_name", "gate_type", "target", "enabled"]);
    let recorded: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM actor_flags_history WHERE flag_name = $1")
            .bind(&name)
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(recorded, 8);
}

#[tokio::test]
async fn postgres_concurrent_writers_of_one_gate_each_see_the_value_before_them() {
    let store = Arc::new(SqlStore::postgres(PG).await.unwrap());
    let name = unique("hist_pg_race");
    let flags = Flags::open(store).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let f = flags.by(&format!("w{i}"));
        let n = name.clone();
        tasks.push(tokio::spawn(async move {
            f.set_for_actor(&n, "user:1", i % 2 == 0).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Serialized per flag: each entry's old value is the previous entry's new value.
    let h = flags.history(&name, 100).await.unwrap();
    assert_eq!(h.len(), 8);
    assert_eq!(h.last().unwrap().old, None);
    for w in h.windows(2) {
        assert_eq!(w[0].old, w[1].new, "{h:?}");
    }
    flags.clear(&name).await.unwrap();
}

#[tokio::test]
async fn redis_history_is_a_list_beside_fwfs_keys() {
    let store = RedisStore::connect(REDIS)
        .await
        .expect("Redis on 127.0.0.1:6379");
    let name = check_store(Arc::new(store.clone()), "redis").await;
    let mut c = redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let len: i64 = redis::cmd("LLEN")
        .arg(actor_flags::store::redis_history_key(&name))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(len, 8);
    assert!(actor_flags::store::redis_history_key(&name).starts_with("actor_flags_history:"));
    // An FWF node's own write (a raw field) reads back and is not in the history.
    redis::pipe()
        .cmd("SADD")
        .arg("fun_with_flags")
        .arg(&name)
        .ignore()
        .cmd("HSET")
        .arg(format!("fun_with_flags:{name}"))
        .arg("boolean")
        .arg("true")
        .ignore()
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    let flags = Flags::open(Arc::new(store)).await.unwrap();
    assert!(flags.enabled(&name));
    assert_eq!(flags.history(&name, 100).await.unwrap().len(), 8);
    // Our write keeps FWF's hash exactly as FWF writes it.
    flags.by("zed").enable(&name).await.unwrap();
    let fields: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(format!("fun_with_flags:{name}"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(fields, [("boolean".to_owned(), "true".to_owned())]);
    let h = flags.history(&name, 1).await.unwrap();
    assert_eq!(h[0].by, "zed");
    assert_eq!(h[0].old, Some(Gate::Boolean(true)));
    // A corrupt entry is skipped.
    redis::cmd("LPUSH")
        .arg(actor_flags::store::redis_history_key(&name))
        .arg("{not json")
        .query_async::<i64>(&mut c)
        .await
        .unwrap();
    assert_eq!(flags.history(&name, 100).await.unwrap().len(), 9);
    flags.clear(&name).await.unwrap();
    redis::cmd("DEL")
        .arg(actor_flags::store::redis_history_key(&name))
        .query_async::<i64>(&mut c)
        .await
        .unwrap();
}
