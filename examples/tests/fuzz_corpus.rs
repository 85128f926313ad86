//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and the seeds through the same
//! entry points the fuzz targets call: every input that ever reached new code in a fuzzing run
//! stays a regression test. `write_seeds` (ignored) writes the valid seed inputs into the corpora.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::path::PathBuf;

type Target = (&'static str, fn(&[u8]), fn() -> Vec<Vec<u8>>);

const TARGETS: [Target; 7] = [
    (
        "codec_envelope",
        actor_core::fuzzing::codec,
        actor_core::fuzzing::codec_seeds,
    ),
    (
        "cluster_wire",
        actor_cluster::fuzzing::wire,
        actor_cluster::fuzzing::wire_seeds,
    ),
    (
        "gossip_packet",
        actor_cluster::fuzzing::gossip_packet,
        actor_cluster::fuzzing::gossip_seeds,
    ),
    (
        "identity_frame",
        actor_cluster::fuzzing::identity_frame,
        actor_cluster::fuzzing::identity_seeds,
    ),
    (
        "flags_wire",
        actor_flags::fuzzing::wire,
        actor_flags::fuzzing::wire_seeds,
    ),
    (
        "flags_history",
        actor_flags::fuzzing::history,
        actor_flags::fuzzing::history_seeds,
    ),
    (
        "poker_events",
        actor_poker::fuzzing::events,
        actor_poker::fuzzing::events_seeds,
    ),
];

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fuzz")
        .join("corpus")
        .join(target)
}

#[test]
fn every_corpus_input_decodes_without_panicking() {
    let mut total = 0;
    for (name, run, seeds) in TARGETS {
        let seeds = seeds();
        assert!(!seeds.is_empty(), "{name} has seeds");
        for s in &seeds {
            run(s);
        }
        let dir = corpus(name);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!files.is_empty(), "{name}'s corpus is committed");
        for f in &files {
            run(&std::fs::read(f).unwrap());
        }
        total += files.len();
        println!(
            "{name}: {} corpus inputs, {} seeds",
            files.len(),
            seeds.len()
        );
    }
    println!("{total} corpus inputs replayed");
}

#[test]
fn seeds_decode_as_the_messages_they_encode() {
    use actor_core::fuzzing::{remote_cast, split};
    for s in &actor_flags::fuzzing::history_seeds()[..2] {
        let s = std::str::from_utf8(s).unwrap();
        assert!(
            actor_flags::store::decode_redis_history(s).is_ok(),
            "a seed is a valid history entry: {s}"
        );
    }
    for s in actor_poker::fuzzing::events_seeds() {
        let (sel, variant, args) = split(&s);
        let ok = if sel % 2 == 1 {
            remote_cast::<actor_poker::StandingsUpdate>(variant, args)
        } else {
            remote_cast::<actor_poker::RankingMsg>(variant, args)
        };
        assert!(ok, "a seed is a valid message");
    }
    // An identity frame, then a data chunk followed by probe frames on the control lane and a
    // credit chunk.
    use actor_cluster::mux::{
        decode_chunk_header, decode_control, decode_credit, KIND_CONTROL, KIND_CREDIT, KIND_DATA,
    };
    let seeds = actor_cluster::fuzzing::identity_seeds();
    assert_eq!(seeds.len(), 2);
    assert!(actor_cluster::decode_identity_frame(&seeds[0]).is_ok());
    let chunk = |b: &[u8]| {
        let (kind, len) = decode_chunk_header(b[..5].try_into().unwrap()).unwrap();
        (kind, b[5..5 + len].to_vec(), b[5 + len..].to_vec())
    };
    let (kind, _, rest) = chunk(&seeds[1]);
    assert_eq!(kind, KIND_DATA);
    let mut rest = rest;
    let (mut frames, mut credits) = (0, 0);
    while !rest.is_empty() {
        let (kind, body, more) = chunk(&rest);
        if kind == KIND_CREDIT {
            assert_eq!(decode_credit(&body), Ok(1 << 20));
            credits += 1;
        } else {
            assert_eq!(kind, KIND_CONTROL);
            assert!(decode_control(&body).is_ok());
            frames += 1;
        }
        rest = more;
    }
    assert_eq!(frames, 2, "a ping with summaries and a member list");
    assert_eq!(credits, 1, "a credit chunk");
}

#[test]
#[ignore = "writes the seeds into fuzz/corpus; run by hand"]
fn write_seeds() {
    for (name, _, seeds) in TARGETS {
        let dir = corpus(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
    }
}
