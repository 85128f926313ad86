//! FWF's Redis change channel between two caches of the same store (two "nodes" without our
//! cluster), and a notice published the way an FWF node does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_flags::redis_channel::RedisChannel;
use actor_flags::store::RedisStore;
use actor_flags::Flags;

const REDIS: &str = "redis://127.0.0.1:6379";

async fn wait(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn notices_bust_the_other_caches() {
    let flag = format!(
        "chan_{}_{}",
        std::process::id(),
        actor_flags::now_version() % 1_000_000_000
    );
    let store_a = RedisStore::connect(REDIS)
        .await
        .expect("Redis on 127.0.0.1:6379");
    let store_b = RedisStore::connect(REDIS).await.unwrap();
    let a = Flags::open(Arc::new(store_a.clone())).await.unwrap();
    let b = Flags::open(Arc::new(store_b.clone())).await.unwrap();
    let _ca = RedisChannel::start(REDIS, store_a.clone(), a.clone(), "node-a")
        .await
        .unwrap();
    let _cb = RedisChannel::start(REDIS, store_b.clone(), b.clone(), "node-b")
        .await
        .unwrap();

    a.enable(&flag).await.unwrap();
    wait("b sees a's write", || b.enabled(&flag)).await;
    b.disable(&flag).await.unwrap();
    wait("a sees b's write", || !a.enabled(&flag)).await;

    // An FWF node writes the store (its own commands: no history) and publishes `<id>:<flag>`.
    let mut raw = redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::pipe()
        .cmd("SADD")
        .arg(actor_flags::store::REDIS_SET)
        .arg(&flag)
        .ignore()
        .cmd("HSET")
        .arg(actor_flags::store::redis_key(&flag))
        .arg("boolean")
        .arg("true")
        .ignore()
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    store_a.notify("elixir-node-1", &flag).await.unwrap();
    wait("both see the FWF node's write", || {
        a.enabled(&flag) && b.enabled(&flag)
    })
    .await;
    a.clear(&flag).await.unwrap();
}
