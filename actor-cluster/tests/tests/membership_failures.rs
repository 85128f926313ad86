//! Membership over real node processes: mesh formation from single seeds, crash (kill -9),
//! freeze (SIGSTOP/SIGCONT), restart, and graceful leave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::time::Duration;

use actor_cluster::{DownReason, MemberEvent};
use actor_testkit::unix_ns;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_form_a_mesh_and_detect_crash_and_freeze() {
    // Each node is given one seed only: its predecessor.
    let mut nodes = chain(5, &[]).await;
    let took = wait_mesh(&mut nodes, &[], Duration::from_secs(2)).await;
    println!("full mesh of 5 formed {took:?} after the last node started");

    // kill -9 of n4: every survivor reports it down within 100 ms.
    let t_kill = unix_ns();
    nodes[4].kill().await.unwrap();
    let survivors: Vec<&actor_testkit::TestNode> = nodes[..4].iter().collect();
    wait_events(
        &survivors,
        "n4 reported down",
        Duration::from_secs(2),
        |n| down_at(n, "n4", t_kill).is_some(),
    )
    .await;
    for n in &survivors {
        let (at, reason) = down_at(n, "n4", t_kill).unwrap();
        let ms = (at - t_kill) as f64 / 1e6;
        println!(
            "{} saw n4 down after kill -9 in {ms:.1} ms ({reason:?})",
            n.name()
        );
        assert_eq!(reason, DownReason::ConnectionClosed);
        assert!(ms <= 100.0, "{} took {ms} ms", n.name());
    }

    // SIGSTOP of n3: down within 1.5 s with default settings.
    let t_stop = unix_ns();
    nodes[3].freeze().unwrap();
    let others: Vec<&actor_testkit::TestNode> = nodes[..3].iter().collect();
    wait_events(&others, "n3 reported down", Duration::from_secs(3), |n| {
        down_at(n, "n3", t_stop).is_some()
    })
    .await;
    for n in &others {
        let (at, reason) = down_at(n, "n3", t_stop).unwrap();
        let ms = (at - t_stop) as f64 / 1e6;
        println!("{} saw frozen n3 down in {ms:.0} ms ({reason:?})", n.name());
        assert_eq!(reason, DownReason::HeartbeatTimeout);
        assert!(ms <= 1500.0, "{} took {ms} ms", n.name());
    }

    // SIGCONT: n3 is back, seen by all, within 3 s.
    let t_cont = unix_ns();
    nodes[3].thaw().unwrap();
    let all4: Vec<&actor_testkit::TestNode> = nodes[..3].iter().collect();
    wait_events(&all4, "n3 back up", Duration::from_secs(3), |n| {
        up_at(n, "n3", t_cont).is_some()
    })
    .await;
    let took = wait_mesh(&mut nodes[..4], &[], Duration::from_secs(3)).await;
    for n in &nodes[..3] {
        let ms = (up_at(n, "n3", t_cont).unwrap() - t_cont) as f64 / 1e6;
        println!("{} saw thawed n3 up in {ms:.0} ms", n.name());
    }
    println!("mesh of 4 whole again {took:?} after the check began");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_is_a_new_incarnation_and_a_leaver_is_left() {
    let mut nodes = chain(3, &[]).await;
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    let old = nodes[2].identity().cloned().unwrap();

    let t = unix_ns();
    nodes[2].restart().await.unwrap();
    let new = nodes[2].identity().cloned().unwrap();
    assert!(new.incarnation > old.incarnation);
    assert_eq!(new.addr, old.addr, "restarted on the same address");
    wait_mesh(&mut nodes, &[], Duration::from_secs(5)).await;
    for n in &nodes[..2] {
        let events: Vec<MemberEvent> = n
            .events()
            .into_iter()
            .filter(|(at, _)| *at >= t)
            .map(|(_, e)| e)
            .collect();
        assert!(
            events.iter().any(|e| matches!(e, MemberEvent::MemberDown { node, .. } if node.incarnation == old.incarnation)),
            "{events:?}"
        );
        assert!(
            events.iter().any(
                |e| matches!(e, MemberEvent::MemberUp(node) if node.incarnation == new.incarnation)
            ),
            "{events:?}"
        );
    }

    // Graceful leave: MemberLeft, and no MemberDown.
    let t = unix_ns();
    nodes[2].leave().await.unwrap();
    let rest: Vec<&actor_testkit::TestNode> = nodes[..2].iter().collect();
    wait_events(&rest, "n2 left", Duration::from_secs(3), |n| {
        n.events()
            .iter()
            .any(|(at, e)| *at >= t && matches!(e, MemberEvent::MemberLeft(x) if x.name == "n2"))
    })
    .await;
    let mut survivors = nodes;
    survivors.truncate(2);
    wait_mesh(&mut survivors, &[], Duration::from_secs(3)).await;
    for n in &survivors {
        assert!(
            !n.events().iter().any(|(at, e)| *at >= t
                && matches!(e, MemberEvent::MemberDown { node, .. } if node.name == "n2")),
            "{} reported a leaver down",
            n.name()
        );
    }
}
