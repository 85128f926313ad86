//! Entry points for the fuzz targets (`fuzz/`) and for the corpus replay tests: each takes
//! arbitrary bytes, runs them through a decoder exactly as the network path does, and must
//! return without panicking whatever the bytes are.

use ractor::message::SerializedMessage;
use ractor::Message;

/// Splits fuzz input into (selector, variant name, arguments): the first byte selects, the
/// second is the variant name's length.
pub fn split(data: &[u8]) -> (u8, String, Vec<u8>) {
    let sel = data.first().copied().unwrap_or(0);
    let n = data.get(1).copied().unwrap_or(0) as usize;
    let rest = data.get(2..).unwrap_or(&[]);
    let n = n.min(rest.len());
    let variant = String::from_utf8_lossy(&rest[..n]).into_owned();
    (sel, variant, rest[n..].to_vec())
}

/// Decodes `args` as a cast of `variant` to a `M`, as a node does with a remote message.
pub fn remote_cast<M: Message>(variant: String, args: Vec<u8>) -> bool {
    M::deserialize(SerializedMessage::Cast {
        variant,
        args,
        metadata: None,
    })
    .is_ok()
}

/// The codec envelope: decodes the bytes as several types.
pub fn codec(data: &[u8]) {
    let _ = crate::codec::decode::<u64>(data);
    let _ = crate::codec::decode::<String>(data);
    let _ = crate::codec::decode::<Vec<u8>>(data);
    let _ = crate::codec::decode::<(u64, String, Vec<u32>)>(data);
    let _ = crate::codec::decode::<std::collections::BTreeMap<String, Option<f64>>>(data);
    let _ = crate::codec::Codec::with_max_frame_size(64).decode::<Vec<String>>(data);
}

/// A fuzz input that [`split`] turns back into `msg`'s variant and fields (`sel`: the selector).
pub fn input_for<M: Message>(sel: u8, msg: M) -> Option<Vec<u8>> {
    match msg.serialize().ok()? {
        SerializedMessage::Cast { variant, args, .. }
        | SerializedMessage::Call { variant, args, .. } => {
            let mut v = vec![sel, u8::try_from(variant.len()).ok()?];
            v.extend_from_slice(variant.as_bytes());
            v.extend_from_slice(&args);
            Some(v)
        }
        SerializedMessage::CallReply(..) => None,
    }
}

/// Valid inputs for [`codec`], the corpus's seeds.
pub fn codec_seeds() -> Vec<Vec<u8>> {
    [
        crate::codec::encode(&42u64),
        crate::codec::encode(&"hello".to_string()),
        crate::codec::encode(&(7u64, "x".to_string(), vec![1u32, 2, 3])),
        crate::codec::encode(&vec![0u8; 40]),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect()
}
