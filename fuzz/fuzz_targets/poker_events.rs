//! Fuzz target `poker_events`: arbitrary bytes through `actor_poker::fuzzing::events`, which must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actor_poker::fuzzing::events(data);
});
