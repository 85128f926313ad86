//! A SQLite flag store opened on a database file that another component created first (the
//! embedded default shares one file with the application's tables) accepts writes at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use actor_flags::{Change, FlagStore, Gate, SqlStore};

const BY: Change<'static> = Change {
    by: "test",
    at_ms: 1,
};

#[tokio::test]
async fn the_first_write_to_a_fresh_store_in_a_shared_file_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Another component creates the file and its own table, in WAL mode, and keeps it open.
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let other = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query("CREATE TABLE app_things (id INTEGER PRIMARY KEY)")
        .execute(&other)
        .await
        .unwrap();
    let store = SqlStore::sqlite(&path).await.unwrap();
    store.put("first", &Gate::Boolean(true), &BY).await.unwrap();
    let second = SqlStore::sqlite(&path).await.unwrap();
    second
        .put("second", &Gate::Boolean(false), &BY)
        .await
        .unwrap();
    store.put("third", &Gate::Boolean(true), &BY).await.unwrap();
    assert_eq!(store.all_flags().await.unwrap().len(), 3);
}
