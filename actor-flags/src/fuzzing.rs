//! Entry point for the fuzz targets (`fuzz/`) and the corpus replay tests.

use actor_core::fuzzing::{remote_cast, split};

/// The flag caches' wire message.
pub fn wire(data: &[u8]) {
    let (_, variant, args) = split(data);
    remote_cast::<crate::cluster::FlagWire>(variant, args);
}

/// Valid inputs for [`wire`].
pub fn wire_seeds() -> Vec<Vec<u8>> {
    use crate::gate::{Flag, Gate};
    let flag = Flag {
        name: "checkout".into(),
        gates: vec![
            Gate::Boolean(true),
            Gate::Actor {
                id: "user:1".into(),
                enabled: false,
            },
            Gate::PercentageOfActors(0.25),
        ],
    };
    let delta = actor_cluster_proto::replication::SyncMsg::Delta {
        from: "n1".into(),
        delta: (flag, 7),
    };
    actor_core::fuzzing::input_for(0, crate::cluster::FlagWire::Sync(delta))
        .into_iter()
        .collect()
}

/// A stored history entry: the bytes as a Redis history list's JSON entry, and split at 0x1F
/// into the (gate field, old value, new value) of a SQL history row.
pub fn history(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = crate::store::decode_redis_history(&s);
    let mut parts = s.split('\u{1f}');
    let field = parts.next().unwrap_or_default();
    let (old, new) = (parts.next(), parts.next());
    let _ = crate::store::history_entry(0, String::new(), field, old, new);
}

/// Valid inputs for [`history`].
pub fn history_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"at_ms":"1764000000000","by":"alice","field":"actor/user:1","old":"true","new":"false"}"#
            .to_vec(),
        br#"{"at_ms":"1","by":"bob","field":"percentage","old":null,"new":"time/0.25"}"#.to_vec(),
        b"group/beta\x1ftrue\x1ffalse".to_vec(),
        b"percentage\x1factors/0.5\x1f".to_vec(),
    ]
}
