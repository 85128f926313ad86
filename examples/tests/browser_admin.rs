//! The admin page in a real browser (Debian's headless Chromium through ChromeDriver): with a
//! 3-node cluster running, switch a flag on through node n0's page and see it on node n2's page,
//! then open the flag's history on n2's page and see n0's write in it.
//! A screenshot of n2's page is kept in `target/browser-artifacts/`.
//!
//! Needs `chromium` and `chromedriver` (Debian packages `chromium`, `chromium-driver`), which
//! `.ci/run` installs; run it with `cargo test -p examples --test browser_admin -- --ignored`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use actor_cluster_launch::{wait_until, NodeProcess};
use examples::app::child::AppCmd;
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

const DEMO: &str = env!("CARGO_BIN_EXE_demo");
const TOKEN: &str = "browser-test-token";
const FLAG: &str = "browser_test_flag";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver; .ci/run runs it"]
async fn a_flag_switched_on_one_nodes_page_shows_on_another_nodes_page() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("browser.db").display().to_string();
    // Schema first, from one process.
    drop(actor_poker::PokerStore::open(&db).await.unwrap());
    examples::app::flag_store(&db).await.unwrap();
    let mut nodes: Vec<NodeProcess> = Vec::new();
    for i in 0..3 {
        let mut args: Vec<String> = [
            "--role",
            "node",
            "--store",
            &db,
            "--admin",
            "127.0.0.1:0",
            "--admin-token",
            TOKEN,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(first) = nodes.first() {
            args.extend(["--seed".to_string(), first.addr()]);
        }
        nodes.push(
            NodeProcess::start(DEMO, &format!("n{i}"), &args)
                .await
                .unwrap(),
        );
    }
    for n in &nodes {
        wait_until("full mesh", Duration::from_secs(20), || async {
            Ok(n.up_members().await?.len() == 2)
        })
        .await
        .unwrap();
    }
    let mut admin = Vec::new();
    for n in &nodes {
        let a = n.command(&AppCmd::Admin).await.unwrap();
        admin.push(a.as_str().unwrap().to_owned());
    }

    let port = free_port();
    let mut driver = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver must be installed (Debian package chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"]}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start a Chromium session: {e}"),
        }
    };

    // n0's page: create the flag, switched on, through the page's form.
    client
        .goto(&format!("http://{}/#token={TOKEN}", admin[0]))
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("tr[data-member='n0'] td.self"))
        .await
        .unwrap();
    client
        .find(Locator::Id("new-flag"))
        .await
        .unwrap()
        .send_keys(FLAG)
        .await
        .unwrap();
    client
        .find(Locator::Id("create-flag"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // n2's page shows it on, with the cluster's three members.
    client
        .goto(&format!("http://{}/#token={TOKEN}", admin[2]))
        .await
        .unwrap();
    let cell = format!("tr[data-flag='{FLAG}'] td.state");
    let began = Instant::now();
    let mut seen = String::new();
    while began.elapsed() < Duration::from_secs(10) {
        if let Ok(e) = client.find(Locator::Css(&cell)).await {
            seen = e.text().await.unwrap_or_default();
            if seen == "on" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen, "on",
        "n2's page shows the flag switched on through n0's page"
    );
    for (name, state) in [("n0", "up"), ("n1", "up"), ("n2", "self")] {
        let t = client
            .find(Locator::Css(&format!(
                "tr[data-member='{name}'] td.{state}"
            )))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(t, state);
    }
    // The flag's history on n2's page: n0's write, by the admin token's label.
    let history_button = format!("button[data-flag='{FLAG}'][data-action='history']");
    let began_history = Instant::now();
    let mut history_row = String::new();
    while began_history.elapsed() < Duration::from_secs(10) {
        // The table is redrawn every second: a button found may be gone when clicked.
        if let Ok(b) = client.find(Locator::Css(&history_button)).await {
            let _ = b.click().await;
        }
        if let Ok(r) = client.find(Locator::Css("#history tbody tr")).await {
            history_row = r.text().await.unwrap_or_default();
            if !history_row.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        history_row.contains("admin")
            && history_row.contains("boolean")
            && history_row.contains("boolean on"),
        "the history on n2's page shows n0's write: {history_row:?}"
    );
    let flag_of_history = client
        .find(Locator::Id("history-flag"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(flag_of_history, FLAG);
    let png = client.screenshot().await.unwrap();
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("browser-artifacts");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("admin-flags.png"), png).unwrap();
    println!(
        "flag visible on n2's page {:?} after the click; screenshot in {}",
        began.elapsed(),
        out.join("admin-flags.png").display()
    );
    client.close().await.unwrap();
    let _ = driver.kill().await;
}
