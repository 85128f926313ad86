//! Fuzz target `flags_wire`: arbitrary bytes through `actor_flags::fuzzing::wire`, which must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actor_flags::fuzzing::wire(data);
});
