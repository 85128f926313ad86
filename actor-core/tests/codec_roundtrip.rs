//! Codec round trips (proptest over nested enums), derived messages, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use actor_core::codec::{self, Codec, CodecError, HEADER_LEN, TAG_VALUE, WIRE_VERSION};
use actor_core::ractor::message::SerializedMessage;
use actor_core::ractor::{Message, RpcReplyPort};
use actor_core::RemoteMessage;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Leaf {
    Unit,
    Int(i64),
    Text(String),
    Pair { a: u8, b: Option<bool> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Tree {
    Leaf(Leaf),
    Node(Vec<Tree>),
    Map(BTreeMap<String, Tree>),
    Bytes(Vec<u8>),
}

fn leaf() -> impl Strategy<Value = Leaf> {
    prop_oneof![
        Just(Leaf::Unit),
        any::<i64>().prop_map(Leaf::Int),
        ".{0,40}".prop_map(Leaf::Text),
        (any::<u8>(), any::<Option<bool>>()).prop_map(|(a, b)| Leaf::Pair { a, b }),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    leaf()
        .prop_map(Tree::Leaf)
        .prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Tree::Node),
                prop::collection::btree_map("[a-z]{0,6}", inner, 0..6).prop_map(Tree::Map),
                prop::collection::vec(any::<u8>(), 0..64).prop_map(Tree::Bytes),
            ]
        })
}

proptest! {
    #[test]
    fn nested_enums_round_trip(t in tree()) {
        let frame = codec::encode(&t).unwrap();
        prop_assert_eq!(frame[0], WIRE_VERSION);
        prop_assert_eq!(frame[1], TAG_VALUE);
        let back: Tree = codec::decode(&frame).unwrap();
        prop_assert_eq!(back, t);
    }

    #[test]
    fn every_truncation_is_a_typed_error(t in tree()) {
        let frame = codec::encode(&t).unwrap();
        for cut in 0..frame.len() {
            // Never a panic; a shorter frame is either an error or (rarely) a different valid
            // value when the cut lands on a boundary of a self-delimiting prefix.
            if let Ok(v) = codec::decode::<Tree>(&frame[..cut]) {
                prop_assert_ne!(&v, &t, "a truncated frame decoded as the original");
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = codec::decode::<Tree>(&bytes);
        let mut framed = vec![WIRE_VERSION, TAG_VALUE];
        framed.extend_from_slice(&bytes);
        let _ = codec::decode::<Tree>(&framed);
    }

    #[test]
    fn flipped_bytes_never_panic(t in tree(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut frame = codec::encode(&t).unwrap();
        let i = pos.index(frame.len());
        frame[i] ^= 1 << bit;
        let _ = codec::decode::<Tree>(&frame);
    }
}

#[test]
fn corrupt_truncated_and_oversized_frames_give_typed_errors() {
    let t = Tree::Node(vec![
        Tree::Leaf(Leaf::Text("hello".into())),
        Tree::Leaf(Leaf::Int(7)),
    ]);
    let frame = codec::encode(&t).unwrap();

    assert_eq!(
        codec::decode::<Tree>(&[]),
        Err(CodecError::Truncated { len: 0 })
    );
    assert!(matches!(
        codec::decode::<Tree>(&frame[..HEADER_LEN]),
        Err(CodecError::Decode { .. })
    ));
    assert!(matches!(
        codec::decode::<Tree>(&frame[..frame.len() - 1]),
        Err(CodecError::Decode { .. })
    ));
    let mut wrong_version = frame.clone();
    wrong_version[0] = 200;
    assert_eq!(
        codec::decode::<Tree>(&wrong_version),
        Err(CodecError::UnsupportedVersion(200))
    );
    // A payload of the wrong type.
    let other = codec::encode(&("not", "a", "tree")).unwrap();
    assert!(matches!(
        codec::decode::<Tree>(&other),
        Err(CodecError::Decode { .. })
    ));
    // A claimed length far beyond the frame (array32 of 4 G elements) fails without allocating.
    let bomb = [WIRE_VERSION, TAG_VALUE, 0xdd, 0xff, 0xff, 0xff, 0xff];
    assert!(codec::decode::<Vec<u64>>(&bomb).is_err());

    let small = Codec::with_max_frame_size(16);
    let big = Tree::Leaf(Leaf::Text("x".repeat(100)));
    assert!(matches!(
        small.encode(&big),
        Err(CodecError::TooLarge { limit: 16, .. })
    ));
    let big_frame = codec::encode(&big).unwrap();
    assert_eq!(
        small.decode::<Tree>(&big_frame),
        Err(CodecError::TooLarge {
            size: big_frame.len(),
            limit: 16
        })
    );
}

/// A derived remote message with every kind of variant.
#[derive(RemoteMessage)]
enum Msg {
    Unit,
    One(u64),
    Many(String, Vec<Tree>, Option<i32>),
    Named {
        who: String,
        n: u32,
    },
    Get(RpcReplyPort<u64>),
    Echo(String, RpcReplyPort<String>),
    Sum {
        values: Vec<i64>,
        reply: RpcReplyPort<i64>,
    },
}

fn args(m: &SerializedMessage) -> (&str, &[u8]) {
    match m {
        SerializedMessage::Cast { variant, args, .. } => (variant, args),
        SerializedMessage::Call { variant, args, .. } => (variant, args),
        SerializedMessage::CallReply(..) => panic!("not produced by serialize"),
    }
}

#[test]
fn derived_casts_round_trip() {
    let tree = Tree::Map(BTreeMap::from([("k".into(), Tree::Leaf(Leaf::Unit))]));
    let cases = vec![
        Msg::Unit,
        Msg::One(42),
        Msg::Many("s".into(), vec![tree.clone()], Some(-3)),
        Msg::Named {
            who: "ann".into(),
            n: 9,
        },
    ];
    for m in cases {
        assert!(<Msg as Message>::serializable());
        let s = m.serialize().unwrap();
        assert!(matches!(s, SerializedMessage::Cast { .. }));
        let back = Msg::deserialize(s).unwrap();
        match back {
            Msg::Unit | Msg::One(42) | Msg::Named { n: 9, .. } => {}
            Msg::Many(s, t, Some(-3)) => {
                assert_eq!(s, "s");
                assert_eq!(t, vec![tree.clone()]);
            }
            _ => panic!("wrong variant back"),
        }
    }
}

/// A derived message with byte vectors, in a cast and in a call.
#[derive(RemoteMessage)]
enum BlobMsg {
    Blob(Vec<u8>),
    Put {
        key: String,
        value: Vec<u8>,
        reply: RpcReplyPort<usize>,
    },
}

#[tokio::test]
async fn byte_vectors_travel_as_bin_and_the_older_array_form_still_decodes() {
    let payload: Vec<u8> = (0..=255).collect();
    let wire = BlobMsg::Blob(payload.clone()).serialize().unwrap();
    // As `bin`, the bytes are in the frame in one piece (as an array of integers, each byte
    // from 128 up would take two).
    let (_, a) = args(&wire);
    assert!(a.len() < payload.len() + 16, "{} bytes", a.len());
    assert!(a.windows(payload.len()).any(|w| w == payload.as_slice()));
    match BlobMsg::deserialize(wire).unwrap() {
        BlobMsg::Blob(b) => assert_eq!(b, payload),
        _ => panic!("wrong variant"),
    }
    // A sender of an older build encoded the field as an array of integers.
    let old = SerializedMessage::Cast {
        variant: "Blob".into(),
        args: codec::encode(&(payload.clone(),)).unwrap(),
        metadata: None,
    };
    match BlobMsg::deserialize(old).unwrap() {
        BlobMsg::Blob(b) => assert_eq!(b, payload),
        _ => panic!("wrong variant"),
    }
    // In a call, beside other fields.
    let (tx, rx) = actor_core::ractor::concurrency::oneshot::<usize>();
    let wire = BlobMsg::Put {
        key: "k".into(),
        value: payload.clone(),
        reply: tx.into(),
    }
    .serialize()
    .unwrap();
    match BlobMsg::deserialize(wire).unwrap() {
        BlobMsg::Put { key, value, reply } => {
            assert_eq!(key, "k");
            reply.send(value.len()).unwrap();
        }
        _ => panic!("wrong variant"),
    }
    assert_eq!(rx.await.unwrap(), 256);
}

#[tokio::test]
async fn derived_calls_bridge_reply_ports_both_ways() {
    // Caller side: a typed port becomes a byte port; the receiver side turns it back into a
    // typed port, and the typed answer travels back encoded.
    let (tx, rx) = actor_core::ractor::concurrency::oneshot::<String>();
    let port: RpcReplyPort<String> = (tx, Duration::from_secs(5)).into();
    let wire = Msg::Echo("hi".into(), port).serialize().unwrap();
    assert_eq!(args(&wire).0, "Echo");
    match Msg::deserialize(wire).unwrap() {
        Msg::Echo(text, reply) => {
            assert_eq!(text, "hi");
            reply.send(format!("{text}!")).unwrap();
        }
        _ => panic!("wrong variant"),
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap()
            .unwrap(),
        "hi!"
    );

    let (tx, rx) = actor_core::ractor::concurrency::oneshot::<i64>();
    let wire = Msg::Sum {
        values: vec![1, 2, 3],
        reply: tx.into(),
    }
    .serialize()
    .unwrap();
    match Msg::deserialize(wire).unwrap() {
        Msg::Sum { values, reply } => reply.send(values.iter().sum()).unwrap(),
        _ => panic!("wrong variant"),
    }
    assert_eq!(rx.await.unwrap(), 6);
}

#[tokio::test]
async fn a_call_the_receiver_cannot_decode_fails_fast() {
    let before = codec::decode_failures();
    // A call whose arguments are garbage: the receiver answers with an error frame, which
    // drops the caller's typed port at once (no waiting for the timeout).
    let (btx, brx) = actor_core::ractor::concurrency::oneshot::<Vec<u8>>();
    let wire = SerializedMessage::Call {
        variant: "Echo".into(),
        args: vec![WIRE_VERSION, TAG_VALUE, 0xc1],
        reply: btx.into(),
        metadata: None,
    };
    assert!(Msg::deserialize(wire).is_err());
    let answer = tokio::time::timeout(Duration::from_secs(5), brx)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        codec::decode::<String>(&answer),
        Err(CodecError::Remote(_))
    ));

    // An unknown variant is refused the same way.
    let (btx, brx) = actor_core::ractor::concurrency::oneshot::<Vec<u8>>();
    let wire = SerializedMessage::Call {
        variant: "NoSuchVariant".into(),
        args: codec::encode(&()).unwrap(),
        reply: btx.into(),
        metadata: None,
    };
    assert!(Msg::deserialize(wire).is_err());
    let answer = tokio::time::timeout(Duration::from_secs(5), brx)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        codec::decode::<String>(&answer),
        Err(CodecError::Remote(_))
    ));

    // A cast with arguments of the wrong shape is refused and counted.
    let wire = SerializedMessage::Cast {
        variant: "One".into(),
        args: codec::encode(&("x", "y")).unwrap(),
        metadata: None,
    };
    assert!(Msg::deserialize(wire).is_err());
    assert!(codec::decode_failures() >= before + 3);

    // On the caller's side, an error answer drops the typed port: the caller sees a closed
    // channel immediately.
    let (tx, rx) = actor_core::ractor::concurrency::oneshot::<u64>();
    let wire = Msg::Get(tx.into()).serialize().unwrap();
    let SerializedMessage::Call { reply, .. } = wire else {
        panic!("a call")
    };
    reply.send(Codec::global().encode_error("nope")).unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .is_err());
}

#[tokio::test]
async fn a_dropped_reply_port_answers_with_an_error() {
    let (btx, brx) = actor_core::ractor::concurrency::oneshot::<Vec<u8>>();
    let wire = SerializedMessage::Call {
        variant: "Get".into(),
        args: codec::encode(&()).unwrap(),
        reply: btx.into(),
        metadata: None,
    };
    match Msg::deserialize(wire).unwrap() {
        Msg::Get(reply) => drop(reply),
        _ => panic!("wrong variant"),
    }
    let answer = tokio::time::timeout(Duration::from_secs(5), brx)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        codec::decode::<u64>(&answer),
        Err(CodecError::Remote(_))
    ));
}
