//! The cluster simulator over 1,000 seeds of 5-node scenarios (joins, faults, quorum): every
//! invariant of `actor_cluster_proto::sim` must hold for each. A failure prints the seed and
//! the step; `cargo run --release -p actor-cluster-proto --example sim -- --seed N` replays it.

use actor_cluster_proto::sim::{run_seed, Class};

#[test]
fn a_thousand_seeds_keep_every_invariant() {
    let mut failures = Vec::new();
    let mut joins = 0;
    for seed in 0..1000 {
        match run_seed(seed) {
            Ok(r) => {
                if r.class == Class::Join {
                    joins += 1;
                    assert_eq!(r.duplicate_starts, 0, "seed {seed}");
                }
            }
            Err(v) => failures.push(v.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(joins, 250);
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [1, 2, 3, 4] {
        assert_eq!(run_seed(seed), run_seed(seed));
    }
}
