//! Fuzz target `flags_history`: arbitrary bytes through `actor_flags::fuzzing::history` (a stored
//! history entry, as Redis JSON and as a SQL row's fields), which must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    actor_flags::fuzzing::history(data);
});
