//! Churn in the simulator: three nodes start and terminate 20,000 short-lived children in
//! waves of 1,000; the replicated state stays flat (tombstones are collected) and is empty
//! once the last wave has gone. `cargo run --release -p actor-cluster-proto --example sim --
//! --churn 1000000` prints the figures for a million.

#![allow(clippy::panic, clippy::expect_used, clippy::print_stdout)]

use actor_cluster_proto::sim::{run_churn, ChurnScenario};

#[test]
fn twenty_thousand_short_lived_children_leave_the_replicated_state_flat() {
    let children = 20_000;
    let wave = 1_000;
    let r = run_churn(&ChurnScenario {
        children,
        wave,
        sample_every: 4,
        seed: 7,
    })
    .unwrap_or_else(|v| panic!("{v}"));
    for s in &r.samples {
        println!("{s:?}");
    }
    let (last, during) = r.samples.split_last().expect("samples");
    // A wave's rows at most: the one whose tombstones are still being acknowledged.
    let most = during.iter().map(|s| s.rows).max().unwrap_or(0);
    assert!(
        most <= wave as usize,
        "the table grew to {most} rows: {:?}",
        r.samples
    );
    let bytes_first = during.first().map_or(0, |s| s.row_bytes);
    let bytes_most = during.iter().map(|s| s.row_bytes).max().unwrap_or(0);
    assert!(
        bytes_most <= bytes_first + bytes_first / 10,
        "the table's bytes grew from {bytes_first} to {bytes_most}"
    );
    assert_eq!(
        (last.rows, last.tombstones, last.names),
        (0, 0, 0),
        "{last:?}"
    );
    assert_eq!(
        last.collected,
        3 * children,
        "every node collects every tombstone"
    );
}
