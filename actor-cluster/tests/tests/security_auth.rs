//! Security: a node with the wrong cookie never becomes a member; a TLS node refuses a
//! plaintext peer, and TLS nodes form a cluster. Certificates are generated at run time. A seed
//! nobody listens on is warned about, with the reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::time::Duration;

use actor_cluster_tests::cluster_node::ClusterCmd;
use actor_testkit::{wait_until, TestNode};
use common::*;

/// Reads a node's log (its stderr), with ANSI colours removed.
fn log_of(node: &TestNode) -> String {
    let raw = std::fs::read_to_string(node.log_path()).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_nobody_listens_on_is_warned_about_with_the_reason() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let seed = format!("127.0.0.1:{port}");
    let lonely = TestNode::start(BIN, "lonely", &args(&["--seed", &seed]))
        .await
        .unwrap();
    // Five failed dials with backoff from 100 ms: about 1.5 s.
    wait_until(
        "the unreachable warning",
        Duration::from_secs(10),
        || async {
            let log = log_of(&lonely);
            Ok(log.contains("cannot reach this address") && log.contains(&seed))
        },
    )
    .await
    .unwrap();
    let log = log_of(&lonely);
    assert!(log.contains("failures=5"), "{log}");
    assert!(log.to_lowercase().contains("refused"), "the reason: {log}");
    // A wait for a member fails with that problem, not a bare timeout.
    let err = lonely
        .command(&ClusterCmd::WaitMembers {
            n: 1,
            timeout_ms: 300,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("0 of 1 other members up"), "{err}");
    assert!(
        err.contains(&seed) && err.to_lowercase().contains("refused"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cookie_is_refused_and_never_a_member() {
    let mut good = chain(2, &["--cookie", "right"]).await;
    wait_mesh(&mut good, &[], Duration::from_secs(5)).await;
    let intruder = TestNode::start(
        BIN,
        "intruder",
        &args(&[
            "--cookie",
            "wrong",
            "--seed",
            &good[0].addr(),
            "--seed",
            &good[1].addr(),
        ]),
    )
    .await
    .unwrap();
    // Several dial attempts (with backoff) happen within this window; none may succeed.
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < deadline {
        for n in &good {
            assert!(!n.up_members().await.unwrap().contains("intruder"));
        }
        assert!(intruder.up_members().await.unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in &good {
        assert!(!n
            .events()
            .iter()
            .any(|(_, e)| format!("{e:?}").contains("intruder")));
    }
    let log = log_of(&intruder);
    assert!(
        log.contains("authentication failed (cookie mismatch?)"),
        "the intruder's log says why: {log}"
    );
    // Waiting for the cluster: the good nodes see each other; the intruder is told why not.
    let up = good[0]
        .command(&ClusterCmd::WaitMembers {
            n: 1,
            timeout_ms: 5000,
        })
        .await
        .unwrap();
    assert_eq!(up, serde_json::json!([good[1].name()]));
    let err = intruder
        .command(&ClusterCmd::WaitMembers {
            n: 1,
            timeout_ms: 300,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cookie mismatch"), "{err}");
}

struct Pki {
    dir: std::path::PathBuf,
}

impl Pki {
    /// A CA and one certificate per node name (all for the DNS name "cluster.test").
    fn new(nodes: &[&str]) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = std::env::temp_dir().join(format!(
            "actor-tls-{}-{}",
            std::process::id(),
            actor_testkit::unix_ns()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        for n in nodes {
            let key = KeyPair::generate().unwrap();
            let params = CertificateParams::new(vec!["cluster.test".to_string()]).unwrap();
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            std::fs::write(dir.join(format!("{n}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{n}.key")), key.serialize_pem()).unwrap();
        }
        Self { dir }
    }

    fn args(&self, node: &str) -> Vec<String> {
        let p = |f: String| self.dir.join(f).display().to_string();
        vec![
            "--tls-cert".into(),
            p(format!("{node}.pem")),
            "--tls-key".into(),
            p(format!("{node}.key")),
            "--tls-ca".into(),
            p("ca.pem".into()),
        ]
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_nodes_cluster_and_refuse_plaintext_peers() {
    let pki = Pki::new(&["t0", "t1"]);
    let t0 = TestNode::start(BIN, "t0", &pki.args("t0")).await.unwrap();
    let mut a1 = pki.args("t1");
    a1.extend(args(&["--seed", &t0.addr()]));
    let t1 = TestNode::start(BIN, "t1", &a1).await.unwrap();
    let mut tls = vec![t0, t1];
    let took = wait_mesh(&mut tls, &[], Duration::from_secs(5)).await;
    println!("TLS pair formed in {took:?}");

    // A plaintext node dials the TLS node: refused, never a member on either side.
    let plain = TestNode::start(BIN, "plain", &args(&["--seed", &tls[0].addr()]))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < deadline {
        assert!(!tls[0].up_members().await.unwrap().contains("plain"));
        assert!(plain.up_members().await.unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = log_of(&tls[0]);
    assert!(
        log.contains("refused an incoming cluster connection")
            && log.contains("TLS handshake failed"),
        "the TLS node's log says why: {log}"
    );
}
