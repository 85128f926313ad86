//! Fuzz target `codec_envelope`: arbitrary bytes through `actor_core::fuzzing::codec`, which must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actor_core::fuzzing::codec(data);
});
