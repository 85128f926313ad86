//! A node process's admin HTTP surface for flags: a write through `/api/flags` (with the token)
//! is in the flag's history as `admin`, and with `--count-flag-checks` the checks the node makes
//! are exported by `/metrics` as `flags_evaluations_total`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use actor_cluster_launch::{wait_until, NodeProcess};
use examples::app::child::AppCmd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEMO: &str = env!("CARGO_BIN_EXE_demo");
const TOKEN: &str = "http-test-token";
const FLAG: &str = "http_counted_flag";

/// One HTTP/1.1 request on a fresh connection: (status, body).
async fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {out:?}"));
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// The value of one Prometheus sample line that starts with `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_in_the_history_and_counted_checks_are_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("http.db").display().to_string();
    drop(actor_poker::PokerStore::open(&db).await.unwrap());
    let args: Vec<String> = [
        "--role",
        "node",
        "--store",
        &db,
        "--admin",
        "127.0.0.1:0",
        "--admin-token",
        TOKEN,
        "--count-flag-checks",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut node = NodeProcess::start(DEMO, "h0", &args).await.unwrap();
    let admin = node.command(&AppCmd::Admin).await.unwrap();
    let admin = admin.as_str().unwrap().to_owned();

    let (status, body) = http(
        &admin,
        "PUT",
        &format!("/api/flags/{FLAG}/boolean"),
        Some(r#"{"enabled":true}"#),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = http(&admin, "GET", &format!("/api/flags/{FLAG}/history"), None).await;
    assert_eq!(status, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h[0]["by"], "admin", "{body}");
    assert_eq!(h[0]["gate"]["type"], "boolean", "{body}");
    assert_eq!(h[0]["new"]["enabled"], true, "{body}");
    assert!(h[0]["old"].is_null(), "{body}");

    // The page's state checks every flag (one counted check each time).
    for _ in 0..3 {
        let (status, _) = http(&admin, "GET", "/api/state", None).await;
        assert_eq!(status, 200);
    }
    let series = format!("flags_evaluations_total{{flag=\"{FLAG}\",result=\"true\"}}");
    let waited = wait_until(
        "counted checks in /metrics",
        Duration::from_secs(10),
        || {
            let (admin, series) = (admin.clone(), series.clone());
            async move {
                let (_, m) = http(&admin, "GET", "/metrics", None).await;
                Ok(sample(&m, &series).is_some_and(|n| n >= 3.0))
            }
        },
    )
    .await;
    if let Err(e) = waited {
        let (_, m) = http(&admin, "GET", "/metrics", None).await;
        panic!("{e}; /metrics said:\n{m}");
    }
    node.kill().await.unwrap();
}
