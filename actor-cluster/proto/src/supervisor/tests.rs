//! The supervisor core's own rules, driven without a network.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::Now;

fn at(base: Instant, ms: u64) -> Now {
    Now {
        mono: base + Duration::from_millis(ms),
        wall_ns: 1_000_000 + ms * 1_000_000,
    }
}

fn hello(node: &str) -> SupPeerMsg {
    SupPeerMsg::Hello {
        node: node.into(),
        kinds: vec!["w".into()],
        ask: false,
        members: vec![node.into()],
    }
}

#[test]
fn a_node_that_regains_a_majority_waits_the_restart_delay_before_starting() {
    let quorum = Quorum {
        members: ["a", "b", "c"].into_iter().map(String::from).collect(),
        restart_delay: Duration::from_secs(3),
    };
    let mut core = SupervisorCore::new("a", ["w".to_owned()], Arc::new(quorum), false);
    let reg: BTreeMap<String, String> = BTreeMap::new();
    let base = Instant::now();
    let _ = core.on_member_up(at(base, 0), "b");
    let _ = core.on_peer(at(base, 1), hello("b"));
    let _ = core.reconcile(at(base, 2), &reg);
    assert!(
        !core.is_holding(at(base, 2), &reg),
        "a majority from the start"
    );
    // b goes: no majority (a alone of three).
    core.on_member_down(at(base, 100), "b");
    let _ = core.reconcile(at(base, 100), &reg);
    // Long after the hold of b's going, c comes: a majority again, as a node that came up on
    // both sides of a split may make it for a moment. a waits before starting anything.
    let _ = core.on_member_up(at(base, 10_000), "c");
    let _ = core.on_peer(at(base, 10_001), hello("c"));
    let _ = core.reconcile(at(base, 10_002), &reg);
    assert!(core.is_holding(at(base, 10_002), &reg));
    assert!(core.is_holding(at(base, 12_900), &reg));
    assert!(!core.is_holding(at(base, 13_100), &reg));
}
