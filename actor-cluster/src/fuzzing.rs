//! Entry points for the fuzz targets (`fuzz/`) and the corpus replay tests: arbitrary bytes
//! through every decoder that reads network input, as the network path runs it. None may panic.

use actor_core::fuzzing::{remote_cast, split};

/// Every wire message of the cluster layer (membership, registry, distributed supervisor,
/// endpoints): the first byte picks the type, then a variant name, then the fields.
pub fn wire(data: &[u8]) {
    let (sel, variant, args) = split(data);
    match sel % 3 {
        0 => remote_cast::<crate::membership::PeerMsg>(variant, args),
        1 => remote_cast::<crate::registry::RegWire>(variant, args),
        _ => remote_cast::<crate::supervisor::DsupWire>(variant, args),
    };
}

/// A gossip discovery packet verified with a fixed secret, and the same bytes signed as a
/// payload (so the decoder behind the MAC check is fuzzed too).
pub fn gossip_packet(data: &[u8]) {
    use crate::discovery::gossip::{decode_packet, seal};
    let _ = decode_packet(b"fuzz-secret", "fuzz", data);
    // The same bytes as a correctly signed payload: what an attacker who knows the secret, or a
    // buggy node, could send.
    let _ = decode_packet(b"fuzz-secret", "fuzz", &seal(b"fuzz-secret", data));
}

/// What a node reads on a connection: the identity frame first, then chunks of the data and
/// control lanes (the same bytes are tried as both).
pub fn identity_frame(data: &[u8]) {
    let _ = crate::transport::decode_identity_frame(data);
    chunks(data);
}

/// Chunk headers and control frames, as a connection's reader walks them.
fn chunks(mut data: &[u8]) {
    use crate::mux::{
        decode_chunk_header, decode_control, decode_credit, KIND_CONTROL, KIND_CREDIT,
    };
    while let Some(head) = data.get(..5) {
        let Ok(head) = <[u8; 5]>::try_from(head) else {
            return;
        };
        let Ok((kind, len)) = decode_chunk_header(head) else {
            return;
        };
        let Some(body) = data.get(5..5 + len) else {
            return;
        };
        if kind == KIND_CONTROL {
            let _ = decode_control(body);
        }
        if kind == KIND_CREDIT {
            let _ = decode_credit(body);
        }
        data = &data[5 + len..];
    }
}

fn me(name: &str) -> crate::NodeIdentity {
    crate::NodeIdentity {
        name: name.into(),
        incarnation: 1_795_000_000_000_000_000,
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 4370)),
    }
}

/// Valid inputs for [`wire`].
pub fn wire_seeds() -> Vec<Vec<u8>> {
    use actor_cluster_proto::registry::RegPeerMsg;
    use actor_cluster_proto::replication::SyncMsg;
    use actor_cluster_proto::supervisor::{SeenEntry, SupPeerMsg, TableDigest};
    use actor_core::fuzzing::input_for;
    let owner = crate::registry::Owner {
        node: "n1".into(),
        incarnation: 3,
    };
    let digest = SupPeerMsg::Table(SyncMsg::Digest {
        from: "n1".into(),
        digest: TableDigest { rows: 10, sum: 99 },
    });
    let seen = SupPeerMsg::Seen {
        from: "n1".into(),
        seen: vec![SeenEntry {
            node: "n2".into(),
            inc: 1_800_000_000_000_000_000,
            seq: 12,
        }],
        ask: false,
    };
    [
        input_for(
            1,
            crate::registry::RegWire::Peer(RegPeerMsg::Digest {
                from: "n1".into(),
                digest: (owner, 12),
            }),
        ),
        input_for(
            2,
            crate::supervisor::DsupWire::Peer(SupPeerMsg::Leaving("n1".into())),
        ),
        input_for(2, crate::supervisor::DsupWire::Peer(digest)),
        input_for(2, crate::supervisor::DsupWire::Peer(seen)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Valid inputs for [`gossip_packet`].
pub fn gossip_seeds() -> Vec<Vec<u8>> {
    crate::discovery::announcement_packet(b"fuzz-secret", "fuzz", &me("n1"))
        .into_iter()
        .collect()
}

/// Valid inputs for [`identity_frame`]: an identity frame, and a data chunk followed by a
/// probe (a ping with summaries, then a member list) on the control lane and a credit chunk.
pub fn identity_seeds() -> Vec<Vec<u8>> {
    use crate::mux::{chunk_header, encode_control, Control, KIND_CONTROL, KIND_CREDIT, KIND_DATA};
    let mut seeds: Vec<Vec<u8>> = crate::transport::identity_frame(&me("n1"))
        .into_iter()
        .collect();
    use crate::membership::Probe;
    let frames = [
        Control::Probe {
            probe: Probe::Ping { seq: 3, members: 9 },
            services: vec![(1, 2), (3, 4)],
            wall_ns: 1_764_000_000_000_000_000,
        },
        Control::Probe {
            probe: Probe::Members(vec![me("n2"), me("n3")]),
            services: Vec::new(),
            wall_ns: 0,
        },
    ];
    let data = [0u8, 0, 0, 0, 0, 0, 0, 2, 8, 1];
    let mut s = chunk_header(KIND_DATA, data.len()).to_vec();
    s.extend_from_slice(&data);
    for f in &frames {
        if let Ok(hb) = encode_control(f) {
            s.extend_from_slice(&chunk_header(KIND_CONTROL, hb.len()));
            s.extend_from_slice(&hb);
        }
    }
    // And a credit chunk: 1 MiB taken in.
    s.extend_from_slice(&chunk_header(KIND_CREDIT, 8));
    s.extend_from_slice(&(1u64 << 20).to_be_bytes());
    seeds.push(s);
    seeds
}
