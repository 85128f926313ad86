//! A partition made by fault injection in our transport, and its heal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::time::Duration;

use actor_cluster::DownReason;
use actor_testkit::{unix_ns, TestNode};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_ab_cde_then_heal() {
    let mut nodes = chain(5, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let left = ["n0", "n1"];
    let right = ["n2", "n3", "n4"];

    let t_cut = unix_ns();
    for n in &nodes {
        let other: &[&str] = if left.contains(&n.name()) {
            &right
        } else {
            &left
        };
        n.block(other).await.unwrap();
    }
    // Each side reports the other down (by heartbeat timeout: nothing is refused, packets are
    // simply lost), and keeps its own side up.
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_events(
        &all,
        "each side sees the other down",
        Duration::from_secs(4),
        |n| {
            let other: &[&str] = if left.contains(&n.name()) {
                &right
            } else {
                &left
            };
            other.iter().all(|o| down_at(n, o, t_cut).is_some())
        },
    )
    .await;
    for n in &nodes {
        let (mine, other): (&[&str], &[&str]) = if left.contains(&n.name()) {
            (&left, &right)
        } else {
            (&right, &left)
        };
        for o in other {
            let (at, reason) = down_at(n, o, t_cut).unwrap();
            assert_eq!(
                reason,
                DownReason::HeartbeatTimeout,
                "{} about {o}",
                n.name()
            );
            println!(
                "{} saw {o} down {:.0} ms after the cut",
                n.name(),
                (at - t_cut) as f64 / 1e6
            );
        }
        let up = n.up_members().await.unwrap();
        let expect: std::collections::BTreeSet<String> = mine
            .iter()
            .filter(|m| **m != n.name())
            .map(|s| s.to_string())
            .collect();
        assert_eq!(up, expect, "{} during the partition", n.name());
    }

    // Heal: full mesh again within 3 s.
    for n in &nodes {
        n.unblock_all().await.unwrap();
    }
    let took = wait_mesh(&mut nodes, &[], Duration::from_secs(3)).await;
    println!("full mesh again {took:?} after the heal");
}
