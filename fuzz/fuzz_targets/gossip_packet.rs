//! Fuzz target `gossip_packet`: arbitrary bytes through `actor_cluster::fuzzing::gossip_packet`, which must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actor_cluster::fuzzing::gossip_packet(data);
});
