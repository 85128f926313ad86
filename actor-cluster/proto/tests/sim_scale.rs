//! Scale runs of the simulator: a cluster forms through one seed per node, takes a join, a
//! crash and a freeze, and every phase converges with no false down; a node's idle traffic
//! does not grow with the cluster (one ping and one ack per tick, whatever the size).
//! `cargo run --release -p actor-cluster-proto --example sim -- --scale 100,300,1000` prints
//! the figures.

#![allow(clippy::panic, clippy::expect_used)]

use std::time::Duration;

use actor_cluster_proto::sim::{run_scale, ScaleReport, ScaleScenario};

fn run(nodes: usize, seed: u64) -> ScaleReport {
    let r = run_scale(&ScaleScenario::new(nodes, seed)).unwrap_or_else(|v| panic!("{v}"));
    assert!(
        r.formed_after.is_some(),
        "{nodes} nodes never formed: {r:?}"
    );
    assert!(
        r.join_converged.is_some(),
        "the join never converged: {r:?}"
    );
    assert!(
        r.crash_converged.is_some(),
        "the crash was never seen: {r:?}"
    );
    assert_eq!(r.false_downs, 0, "{r:?}");
    r
}

#[test]
fn sixty_nodes_form_take_a_join_a_crash_and_a_freeze_without_a_false_down() {
    let r = run(60, 7);
    // A closed connection is a down member at once; a frozen one answers no ping, and is
    // down about `down_after` after the first ping it failed, on every node.
    let crash = r.crash_converged.unwrap_or_default();
    assert!(crash < Duration::from_millis(100), "{r:?}");
    let freeze = r.freeze_converged.expect("the freeze was never seen");
    assert!(
        freeze >= Duration::from_millis(900),
        "down before down_after: {r:?}"
    );
    assert!(freeze <= Duration::from_secs(2), "{r:?}");
}

#[test]
fn a_nodes_idle_traffic_does_not_grow_with_the_cluster() {
    let small = run(8, 3);
    let large = run(48, 3);
    let ratio = large.idle.msgs / small.idle.msgs;
    assert!((0.9..1.1).contains(&ratio), "{small:?}\n{large:?}");
    // One ping and one ack a tick (10 a second): 20 frames a node a second.
    assert!((18.0..22.0).contains(&large.idle.msgs), "{large:?}");
    // Idle, almost nothing but probes is sent (no digests to every peer).
    assert!(
        large.idle.probe_bytes > 0.98 * large.idle.bytes,
        "{large:?}"
    );
}
