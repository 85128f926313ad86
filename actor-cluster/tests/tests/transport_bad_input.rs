//! Bad input on a node's cluster port: random bytes, wrong or oversized frames, a valid identity
//! frame that impersonates a member followed by garbage, and half-open connections that send
//! part of a frame or nothing at all. The node must stay healthy: no member is declared down
//! while it goes on, and a new node still joins through the attacked port.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::time::{Duration, Instant};

use actor_cluster::{identity_frame, MemberEvent, NodeIdentity};
use actor_testkit::{wait_until, TestNode};
use common::{args, chain, BIN};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn downs(n: &TestNode) -> usize {
    n.events()
        .iter()
        .filter(|(_, e)| matches!(e, MemberEvent::MemberDown { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_half_open_connections_do_not_hurt_the_node() {
    let nodes = chain(3, &[]).await;
    for n in &nodes {
        wait_until("mesh", Duration::from_secs(10), || async {
            Ok(n.up_members().await?.len() == 2)
        })
        .await
        .unwrap();
    }
    let before: Vec<usize> = nodes.iter().map(downs).collect();
    let target = nodes[0].addr();
    let victim_name = nodes[1].name().to_owned();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut held = Vec::new();
    let mut sent = 0usize;
    for round in 0..8 {
        let mut s = TcpStream::connect(&target).await.unwrap();
        let mut payload = Vec::new();
        match round % 8 {
            // Random bytes.
            0 => {
                let mut b = vec![0u8; rng.random_range(1..8192)];
                rng.fill_bytes(&mut b);
                payload = b;
            }
            // The magic, then a length far over the limit.
            1 => payload.extend_from_slice(b"ACT4\xff\xff\xff\xff"),
            // The magic, a plausible length, and a body that does not decode.
            2 => {
                payload.extend_from_slice(b"ACT4\x00\x00\x01\x00");
                let mut b = vec![0u8; 256];
                rng.fill_bytes(&mut b);
                payload.extend_from_slice(&b);
            }
            // A valid identity frame that claims to be a member, then garbage where the
            // cluster handshake should be.
            3 | 4 => {
                payload = identity_frame(&NodeIdentity {
                    name: victim_name.clone(),
                    incarnation: 1,
                    addr: "127.0.0.1:9".parse().unwrap(),
                })
                .unwrap();
                if round % 8 == 3 {
                    let mut b = vec![0u8; rng.random_range(1..4096)];
                    rng.fill_bytes(&mut b);
                    payload.extend_from_slice(&b);
                }
                // round 4: stops after the identity frame (half-open).
            }
            // Half a frame head, then silence.
            5 => payload.extend_from_slice(b"AC"),
            // Nothing at all.
            6 => {}
            // A stranger's identity, then a huge ractor frame length.
            _ => {
                payload = identity_frame(&NodeIdentity {
                    name: format!("stranger-{round}"),
                    incarnation: 7,
                    addr: "127.0.0.1:9".parse().unwrap(),
                })
                .unwrap();
                payload.extend_from_slice(&u64::MAX.to_be_bytes());
            }
        }
        sent += payload.len();
        let _ = s.write_all(&payload).await;
        held.push(s);
    }
    // A hundred more connections of random bytes, kept open.
    for _ in 0..100 {
        let mut s = TcpStream::connect(&target).await.unwrap();
        let mut b = vec![0u8; rng.random_range(1..512)];
        rng.fill_bytes(&mut b);
        sent += b.len();
        let _ = s.write_all(&b).await;
        held.push(s);
    }
    // Hold them for three times the failure-detection window, watching the members.
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(3) {
        for n in &nodes {
            assert_eq!(
                n.up_members().await.unwrap().len(),
                2,
                "{} lost a member under bad input",
                n.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after: Vec<usize> = nodes.iter().map(downs).collect();
    assert_eq!(before, after, "no member was declared down");
    // The port still works: a new node joins through it.
    let newcomer = TestNode::start(BIN, "n3", &args(&["--seed", &target]))
        .await
        .unwrap();
    wait_until(
        "the newcomer joins through the attacked port",
        Duration::from_secs(10),
        || async { Ok(newcomer.up_members().await?.len() == 3) },
    )
    .await
    .unwrap();
    drop(held);
    println!(
        "{} bad connections ({sent} bytes) on {target}: members stayed up, a new node joined",
        108
    );
}
