//! Fuzz target `cluster_wire`: arbitrary bytes through `actor_cluster::fuzzing::wire`, which must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actor_cluster::fuzzing::wire(data);
});
