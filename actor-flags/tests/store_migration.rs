//! Nodes that start at once against a fresh Postgres database each create FWF's tables and the
//! history table if missing: they must all open, not race on the catalog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actor_flags::store::SqlStore;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_opened_at_once_on_a_fresh_database_all_open() {
    let admin = sqlx::PgPool::connect(PG)
        .await
        .expect("Postgres on 127.0.0.1:5432 (database test)");
    for round in 0..5 {
        let schema = format!(
            "flags_migrate_{}_{}_{round}",
            std::process::id(),
            actor_testkit::unix_ns() % 1_000_000_000
        );
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        let url = format!("{PG}?options=-c%20search_path%3D{schema}");
        let opened = futures::future::join_all((0..8).map(|_| SqlStore::postgres(&url))).await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
        for r in opened {
            if let Err(e) = r {
                panic!("round {round}: a store did not open: {e}");
            }
        }
    }
}
