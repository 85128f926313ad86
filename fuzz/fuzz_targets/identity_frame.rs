//! Fuzz target `identity_frame`: arbitrary bytes through `actor_cluster::fuzzing::identity_frame`, which must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actor_cluster::fuzzing::identity_frame(data);
});
