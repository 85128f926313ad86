//! Stores against real SQLite (a file), Postgres (127.0.0.1:5432, database `test`) and Redis
//! (127.0.0.1:6379): rows and keys written raw in FWF's layout read back as the right flags, and
//! our writes produce exactly FWF's layout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actor_testkit::redis::OwnRedis;

use std::collections::BTreeSet;
use std::sync::Arc;

use actor_flags::store::{FlagStore, RedisStore, SqlStore};
use actor_flags::{Flag, FlagError, Flags, Gate, GateKey};

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS: &str = "redis://127.0.0.1:6379";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        actor_flags::now_version() % 1_000_000_000
    )
}

fn gates(f: &Flag) -> Vec<String> {
    let mut v: Vec<String> = f.gates.iter().map(|g| format!("{g:?}")).collect();
    v.sort();
    v
}

type RawRow = (String, String, bool);

async fn sql_rows_pg(pool: &sqlx::PgPool, name: &str) -> BTreeSet<RawRow> {
    sqlx::query_as::<_, RawRow>(
        "SELECT gate_type, target, enabled FROM fun_with_flags_toggles WHERE flag_name = $1",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

async fn sql_rows_sqlite(pool: &sqlx::SqlitePool, name: &str) -> BTreeSet<RawRow> {
    sqlx::query_as::<_, RawRow>(
        "SELECT gate_type, target, enabled FROM fun_with_flags_toggles WHERE flag_name = ?",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

fn expected_rows() -> BTreeSet<RawRow> {
    [
        ("boolean", "_fwf_none", true),
        ("actor", "user:1", false),
        ("group", "beta", true),
        ("percentage", "actors/0.25", true),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
    .collect()
}

/// Our writes through the cache API, for `name`.
async fn write_ours(flags: &Flags, name: &str) {
    flags.enable(name).await.unwrap();
    flags.set_for_actor(name, "user:1", false).await.unwrap();
    flags.set_for_group(name, "beta", true).await.unwrap();
    flags.enable_percentage_of_time(name, 0.5).await.unwrap();
    // Replaces the %-of-time gate; disabling for 75 % stores 0.25.
    flags
        .disable_percentage_of_actors(name, 0.75)
        .await
        .unwrap();
}

fn expected_flag(name: &str) -> Flag {
    Flag {
        name: name.into(),
        gates: vec![
            Gate::Boolean(true),
            Gate::Actor {
                id: "user:1".into(),
                enabled: false,
            },
            Gate::Group {
                name: "beta".into(),
                enabled: true,
            },
            Gate::PercentageOfActors(0.25),
        ],
    }
}

#[tokio::test]
async fn sqlite_file_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.db");
    let store = SqlStore::sqlite(&path).await.unwrap();
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();

    // Rows written raw, as FWF's Ecto adapter writes them.
    let fwf = unique("fwf_written");
    for (t, target, en) in [
        ("boolean", "_fwf_none", false),
        ("actor", "user:9", true),
        ("group", "staff", true),
        ("percentage", "time/0.1", true),
    ] {
        sqlx::query("INSERT INTO fun_with_flags_toggles (flag_name, gate_type, target, enabled) VALUES (?, ?, ?, ?)")
            .bind(&fwf).bind(t).bind(target).bind(en)
            .execute(&raw).await.unwrap();
    }
    let f = store.get(&fwf).await.unwrap().unwrap();
    assert_eq!(
        gates(&f),
        gates(&Flag {
            name: fwf.clone(),
            gates: vec![
                Gate::Boolean(false),
                Gate::Actor {
                    id: "user:9".into(),
                    enabled: true
                },
                Gate::Group {
                    name: "staff".into(),
                    enabled: true
                },
                Gate::PercentageOfTime(0.1),
            ],
        })
    );

    // Our writes, in FWF's layout exactly.
    let flags = Flags::open(Arc::new(store.clone())).await.unwrap();
    assert!(flags.get_flag(&fwf).is_some(), "loaded before serving");
    let ours = unique("ours");
    write_ours(&flags, &ours).await;
    assert_eq!(sql_rows_sqlite(&raw, &ours).await, expected_rows());
    assert_eq!(
        gates(&store.get(&ours).await.unwrap().unwrap()),
        gates(&expected_flag(&ours))
    );
    // Clearing gates and flags removes exactly those rows.
    flags
        .clear_gate(&ours, &GateKey::Actor("user:1".into()))
        .await
        .unwrap();
    flags.clear_gate(&ours, &GateKey::Percentage).await.unwrap();
    let mut left = expected_rows();
    left.retain(|(t, _, _)| t == "boolean" || t == "group");
    assert_eq!(sql_rows_sqlite(&raw, &ours).await, left);
    flags.clear(&ours).await.unwrap();
    assert!(sql_rows_sqlite(&raw, &ours).await.is_empty());
    assert!(!flags.enabled(&ours));
}

#[tokio::test]
async fn postgres_layout() {
    let store = SqlStore::postgres(PG)
        .await
        .expect("Postgres on 127.0.0.1:5432 (database test)");
    let raw = sqlx::PgPool::connect(PG).await.unwrap();
    // FWF's unique index exists under its name.
    let idx: Vec<(String,)> = sqlx::query_as(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'fun_with_flags_toggles'",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    assert!(
        idx.iter().any(|(n,)| n == "fwf_flag_name_gate_target_idx"),
        "{idx:?}"
    );

    let fwf = unique("fwf_pg");
    for (t, target, en) in [
        ("boolean", "_fwf_none", true),
        ("actor", "user:3", false),
        ("percentage", "actors/0.5", true),
    ] {
        sqlx::query("INSERT INTO fun_with_flags_toggles (flag_name, gate_type, target, enabled) VALUES ($1, $2, $3, $4)")
            .bind(&fwf).bind(t).bind(target).bind(en)
            .execute(&raw).await.unwrap();
    }
    let f = store.get(&fwf).await.unwrap().unwrap();
    assert_eq!(
        gates(&f),
        gates(&Flag {
            name: fwf.clone(),
            gates: vec![
                Gate::Boolean(true),
                Gate::Actor {
                    id: "user:3".into(),
                    enabled: false
                },
                Gate::PercentageOfActors(0.5),
            ],
        })
    );
    let flags = Flags::open(Arc::new(store.clone())).await.unwrap();
    assert!(flags.enabled(&fwf));
    assert!(!flags.enabled_for(&fwf, "user:3"));
    let ours = unique("ours_pg");
    write_ours(&flags, &ours).await;
    assert_eq!(sql_rows_pg(&raw, &ours).await, expected_rows());
    flags.clear(&ours).await.unwrap();
    flags.clear(&fwf).await.unwrap();
    assert!(sql_rows_pg(&raw, &ours).await.is_empty());
}

#[tokio::test]
async fn redis_layout() {
    let store = RedisStore::connect(REDIS)
        .await
        .expect("Redis on 127.0.0.1:6379");
    let client = redis::Client::open(REDIS).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();

    let fwf = unique("fwf_redis");
    let key = format!("fun_with_flags:{fwf}");
    redis::cmd("SADD")
        .arg("fun_with_flags")
        .arg(&fwf)
        .query_async::<i64>(&mut c)
        .await
        .unwrap();
    redis::cmd("HSET")
        .arg(&key)
        .arg("boolean")
        .arg("false")
        .arg("actor/user:5")
        .arg("true")
        .arg("group/admins")
        .arg("false")
        .arg("percentage")
        .arg("time/0.3")
        .query_async::<i64>(&mut c)
        .await
        .unwrap();
    let f = store.get(&fwf).await.unwrap().unwrap();
    assert_eq!(
        gates(&f),
        gates(&Flag {
            name: fwf.clone(),
            gates: vec![
                Gate::Boolean(false),
                Gate::Actor {
                    id: "user:5".into(),
                    enabled: true
                },
                Gate::Group {
                    name: "admins".into(),
                    enabled: false
                },
                Gate::PercentageOfTime(0.3),
            ],
        })
    );
    let flags = Flags::open(Arc::new(store.clone())).await.unwrap();
    assert!(flags.enabled_for(&fwf, "user:5"));

    let ours = unique("ours_redis");
    write_ours(&flags, &ours).await;
    let fields: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(format!("fun_with_flags:{ours}"))
        .query_async(&mut c)
        .await
        .unwrap();
    let fields: BTreeSet<(String, String)> = fields.into_iter().collect();
    let expected: BTreeSet<(String, String)> = [
        ("boolean", "true"),
        ("actor/user:1", "false"),
        ("group/beta", "true"),
        ("percentage", "actors/0.25"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(fields, expected);
    let member: bool = redis::cmd("SISMEMBER")
        .arg("fun_with_flags")
        .arg(&ours)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(member);
    flags.clear(&ours).await.unwrap();
    flags.clear(&fwf).await.unwrap();
    let member: bool = redis::cmd("SISMEMBER")
        .arg("fun_with_flags")
        .arg(&ours)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!member);
}

#[tokio::test]
async fn invalid_input_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::sqlite(&dir.path().join("f.db")).await.unwrap();
    let flags = Flags::open(Arc::new(store)).await.unwrap();
    assert_eq!(
        flags.enable("bad-name").await,
        Err(FlagError::InvalidName("bad-name".into()))
    );
    assert_eq!(
        flags.enable_percentage_of_time("ok", 1.0).await,
        Err(FlagError::InvalidRatio(1.0))
    );
    assert!(matches!(
        flags.set_for_actor("ok", "", true).await,
        Err(FlagError::InvalidTarget(_))
    ));
    assert!(flags.handle("a b").is_err());
}

#[tokio::test]
async fn with_the_store_down_reads_go_on_and_writes_fail() {
    let mut own = OwnRedis::start().expect("redis-server on the PATH");
    let url = format!("redis://127.0.0.1:{}", own.port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let store = loop {
        match RedisStore::connect(&url).await {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("own redis did not start: {e}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let flags = Flags::open(Arc::new(store)).await.unwrap();
    flags.enable("kept_on").await.unwrap();
    let handle = flags.handle("kept_on").unwrap();
    assert!(handle.enabled());

    own.child.kill().unwrap();
    own.child.wait().unwrap();
    // Reads serve the last snapshot.
    for _ in 0..1000 {
        assert!(flags.enabled("kept_on"));
        assert!(handle.enabled());
    }
    // Writes fail with an error and change nothing.
    let err = flags.disable("kept_on").await.unwrap_err();
    assert!(matches!(err, FlagError::Store(_)), "{err:?}");
    assert!(flags.enabled("kept_on"));
    assert!(flags.reload().await.is_err());
    assert!(handle.enabled());
}
