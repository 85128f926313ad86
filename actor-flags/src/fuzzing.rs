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
