//! Slow, lossy links (fault injection in our transport: delay, jitter, lost probe frames) on
//! every link of a 3-node cluster: nobody is taken down, registrations still reach every node
//! and calls still answer; a kill -9 is still seen, and a frozen node still detected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use actor_cluster_tests::cluster_node::ClusterCmd;
use std::time::{Duration, Instant};

use actor_cluster::MemberEvent;
use actor_testkit::{unix_ns, wait_until, TestNode};
use common::*;
use serde_json::json;

fn downs(n: &TestNode, after_ns: u64) -> Vec<String> {
    n.events()
        .into_iter()
        .filter(|(at, _)| *at >= after_ns)
        .filter_map(|(_, e)| match e {
            MemberEvent::MemberDown { node, .. } => Some(node.name),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_jitter_and_lost_probes_take_nobody_down_and_failures_are_still_seen() {
    let mut nodes = chain(4, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let t_slow = unix_ns();
    // 60 ms + up to 40 ms on every link, in both directions, and a fifth of the probes lost.
    for n in &nodes {
        let others: Vec<String> = nodes
            .iter()
            .filter(|o| o.name() != n.name())
            .map(|o| o.name().to_owned())
            .collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        n.slow_link(&others, 60, 40, 0.2).await.unwrap();
    }
    // Registrations reach every node, through the delay.
    let count = 200u64;
    let t = Instant::now();
    nodes[0]
        .command(&ClusterCmd::RegRegisterMany {
            prefix: "slow-".into(),
            count,
        })
        .await
        .unwrap();
    let names: Vec<String> = (0..count).map(|i| format!("slow-{i}")).collect();
    for n in &nodes[1..] {
        let seen_all = ClusterCmd::RegSeen {
            names: names.clone(),
        };
        wait_until(
            &format!("{} sees every name", n.name()),
            Duration::from_secs(10),
            || async {
                let seen: Vec<Option<u64>> = n.command_as(&seen_all).await?;
                Ok(seen.iter().all(Option::is_some))
            },
        )
        .await
        .unwrap();
    }
    println!(
        "{count} registrations on every node {:?} after the first",
        t.elapsed()
    );
    // Calls answer across the slow links, and pay the delay both ways (the fault applies).
    for n in &nodes {
        for _ in 0..5 {
            let t = Instant::now();
            assert_eq!(
                n.command(&ClusterCmd::RegCall {
                    name: "slow-7".into(),
                    text: "x".into(),
                })
                .await
                .unwrap(),
                json!("n0:x")
            );
            if n.name() != "n0" {
                assert!(
                    t.elapsed() >= Duration::from_millis(120),
                    "{:?}",
                    t.elapsed()
                );
            }
        }
    }
    for n in &nodes {
        assert!(
            downs(n, t_slow).is_empty(),
            "{} took members down on slow links: {:?}",
            n.name(),
            downs(n, t_slow)
        );
    }

    // Failures are still seen through them.
    let t_kill = unix_ns();
    nodes[3].kill().await.unwrap();
    let others: Vec<&TestNode> = nodes[..3].iter().collect();
    wait_events(&others, "the kill is seen", Duration::from_secs(5), |n| {
        down_at(n, "n3", t_kill).is_some()
    })
    .await;
    let t_freeze = unix_ns();
    nodes[2].freeze().unwrap();
    let others: Vec<&TestNode> = nodes[..2].iter().collect();
    wait_events(&others, "the freeze is seen", Duration::from_secs(8), |n| {
        down_at(n, "n2", t_freeze).is_some()
    })
    .await;
    let seen = |n: &TestNode, v: &str, t0: u64| {
        down_at(n, v, t0)
            .map(|(at, _)| (at - t0) as f64 / 1e6)
            .unwrap_or(f64::NAN)
    };
    println!(
        "slow links: kill -9 seen after {:.0}/{:.0}/{:.0} ms, SIGSTOP after {:.0}/{:.0} ms",
        seen(&nodes[0], "n3", t_kill),
        seen(&nodes[1], "n3", t_kill),
        seen(&nodes[2], "n3", t_kill),
        seen(&nodes[0], "n2", t_freeze),
        seen(&nodes[1], "n2", t_freeze)
    );
    // n0 and n1 kept each other.
    for (a, b) in [(&nodes[0], "n1"), (&nodes[1], "n0")] {
        assert!(
            !downs(a, t_slow).contains(&b.to_owned()),
            "{} took {b} down",
            a.name()
        );
    }
    nodes[2].thaw().unwrap();
}
