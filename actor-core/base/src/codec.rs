//! The wire codec: how a message crosses nodes.
//!
//! Messages that cross nodes are plain serde types, encoded with
//! [rmp-serde](https://docs.rs/rmp-serde) (MessagePack, compact: structs as arrays) inside a small
//! versioned envelope:
//!
//! ```text
//! +---------+-----+----------------------+
//! | version | tag | MessagePack payload  |
//! |  1 byte |  1  |  rest of the frame   |
//! +---------+-----+----------------------+
//! ```
//!
//! `version` is [`WIRE_VERSION`]; `tag` is [`TAG_VALUE`] for a value and [`TAG_ERROR`] for an
//! error answer to a call (its payload is the error text). A frame longer than the size limit
//! ([`max_frame_size`], 8 MiB by default) is refused before it is decoded, on both the encoding
//! and the decoding side. Decoding never panics: it returns a [`CodecError`], and trailing bytes
//! after the payload are an error too.
//!
//! `#[derive(RemoteMessage)]` (see the crate root) makes a serde enum a ractor `Message` that
//! ractor_cluster carries: casts are encoded as a tuple of the variant's fields, calls likewise,
//! with the reply carried back in the same envelope. When a call arrives that this node cannot
//! decode, the caller is answered with an error frame at once, so its `call` fails fast with
//! `CallResult::SenderError` instead of waiting for its timeout. Every failed decode is logged
//! (`tracing` warn) and counted ([`decode_failures`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The envelope version this build writes and reads.
pub const WIRE_VERSION: u8 = 1;
/// Envelope tag of a frame that carries a value.
pub const TAG_VALUE: u8 = 0;
/// Envelope tag of a frame that carries an error (the answer to a call that failed remotely).
pub const TAG_ERROR: u8 = 1;
/// The default frame size limit: 8 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 8 * 1024 * 1024;
/// Length of the envelope header.
pub const HEADER_LEN: usize = 2;

static MAX_FRAME: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_FRAME_SIZE);
static DECODE_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Errors of the wire codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The frame is empty or shorter than the envelope header.
    #[error("frame truncated: {len} bytes, the envelope header alone is {HEADER_LEN}")]
    Truncated {
        /// Length of the frame received.
        len: usize,
    },
    /// The frame was written by an envelope version this build does not read.
    #[error("unsupported wire version {0} (this build reads version {WIRE_VERSION})")]
    UnsupportedVersion(u8),
    /// The envelope tag is neither a value nor an error.
    #[error("unknown envelope tag {0}")]
    UnknownTag(u8),
    /// The frame is larger than the configured limit; it was not decoded.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the frame.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The payload is not a valid encoding of the expected type.
    #[error("cannot decode {type_name}: {reason}")]
    Decode {
        /// The Rust type that was expected.
        type_name: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// The payload decoded, but bytes were left over after it.
    #[error("{count} trailing bytes after the payload of {type_name}")]
    TrailingBytes {
        /// The Rust type that was decoded.
        type_name: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// The value could not be encoded.
    #[error("cannot encode {type_name}: {reason}")]
    Encode {
        /// The Rust type being encoded.
        type_name: &'static str,
        /// What the encoder reported.
        reason: String,
    },
    /// The frame is an error answer from the remote side.
    #[error("remote error: {0}")]
    Remote(String),
    /// A message named a variant that this build's message type does not have.
    #[error("{type_name} has no variant {variant:?}")]
    UnknownVariant {
        /// The message type.
        type_name: &'static str,
        /// The variant name received.
        variant: String,
    },
}

/// The frame size limit in force for the process-wide codec (used by derived messages).
pub fn max_frame_size() -> usize {
    MAX_FRAME.load(Ordering::Relaxed)
}

/// Sets the frame size limit for the process-wide codec (used by derived messages).
///
/// Frames above the limit are refused when encoded and when decoded. Values below the header
/// length are raised to it.
pub fn set_max_frame_size(limit: usize) {
    MAX_FRAME.store(limit.max(HEADER_LEN), Ordering::Relaxed);
}

/// How many frames failed to decode in this process since it started.
pub fn decode_failures() -> u64 {
    DECODE_FAILURES.load(Ordering::Relaxed)
}

/// Counts and logs a frame that failed to decode (for the derive's support code).
#[doc(hidden)]
pub fn count_failure(err: &CodecError) {
    DECODE_FAILURES.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(error = %err, "dropping a frame that failed to decode");
}

/// A codec with its own size limit. [`Codec::global`] follows [`set_max_frame_size`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    max_frame: Option<usize>,
}

impl Default for Codec {
    fn default() -> Self {
        Self::global()
    }
}

impl Codec {
    /// A codec that uses the process-wide limit ([`max_frame_size`]).
    pub const fn global() -> Self {
        Self { max_frame: None }
    }

    /// A codec with its own frame size limit.
    pub const fn with_max_frame_size(limit: usize) -> Self {
        Self {
            max_frame: Some(limit),
        }
    }

    /// The limit this codec applies.
    pub fn limit(&self) -> usize {
        self.max_frame.unwrap_or_else(max_frame_size)
    }

    /// Encodes a value into an envelope.
    pub fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut buf = Vec::with_capacity(128);
        buf.push(WIRE_VERSION);
        buf.push(TAG_VALUE);
        let mut ser = rmp_serde::Serializer::new(&mut buf);
        value.serialize(&mut ser).map_err(|e| CodecError::Encode {
            type_name: std::any::type_name::<T>(),
            reason: e.to_string(),
        })?;
        self.check_size(buf.len())?;
        Ok(buf)
    }

    /// Encodes an error answer.
    pub fn encode_error(&self, message: &str) -> Vec<u8> {
        let mut buf = Vec::with_capacity(message.len() + 8);
        buf.push(WIRE_VERSION);
        buf.push(TAG_ERROR);
        // Encoding a &str into a Vec cannot fail.
        let _ = rmp_serde::encode::write(&mut buf, message);
        buf
    }

    fn check_size(&self, size: usize) -> Result<(), CodecError> {
        let limit = self.limit();
        if size > limit {
            return Err(CodecError::TooLarge { size, limit });
        }
        Ok(())
    }

    /// Decodes an envelope into a value. An error frame yields [`CodecError::Remote`].
    pub fn decode<T: DeserializeOwned>(&self, frame: &[u8]) -> Result<T, CodecError> {
        self.check_size(frame.len())?;
        if frame.len() < HEADER_LEN {
            return Err(CodecError::Truncated { len: frame.len() });
        }
        if frame[0] != WIRE_VERSION {
            return Err(CodecError::UnsupportedVersion(frame[0]));
        }
        match frame[1] {
            TAG_VALUE => decode_payload::<T>(&frame[HEADER_LEN..]),
            TAG_ERROR => {
                let text: String = decode_payload(&frame[HEADER_LEN..])?;
                Err(CodecError::Remote(text))
            }
            other => Err(CodecError::UnknownTag(other)),
        }
    }
}

/// The deepest nesting a decoded value may have. rmp-serde's default (1,024) lets a hostile
/// peer's deeply nested value recurse far enough to overflow a thread's stack in a debug build
/// (the fuzz corpus replay found one); our messages nest a few levels.
pub const MAX_DEPTH: usize = 64;

fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, CodecError> {
    let mut de = rmp_serde::Deserializer::new(payload);
    de.set_max_depth(MAX_DEPTH);
    let value = T::deserialize(&mut de).map_err(|e| CodecError::Decode {
        type_name: std::any::type_name::<T>(),
        reason: e.to_string(),
    })?;
    let rest = de.into_inner();
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes {
            type_name: std::any::type_name::<T>(),
            count: rest.len(),
        });
    }
    Ok(value)
}

/// Encodes a value with the process-wide codec.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Codec::global().encode(value)
}

/// Decodes a value with the process-wide codec.
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, CodecError> {
    Codec::global().decode(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        // 100,000 nested one-element arrays: a hostile peer's message.
        let mut frame = vec![WIRE_VERSION, TAG_VALUE];
        frame.extend(std::iter::repeat_n(0x91u8, 100_000));
        frame.push(0xc0);
        // A small stack, as a worker thread has: the decoder must stop at MAX_DEPTH.
        let r = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || decode::<serde::de::IgnoredAny>(&frame).is_err())
            .map(|h| h.join());
        assert!(matches!(r, Ok(Ok(true))));
        // A value nested within the limit decodes.
        let mut ok = vec![WIRE_VERSION, TAG_VALUE];
        ok.extend(std::iter::repeat_n(0x91u8, MAX_DEPTH - 2));
        ok.push(0xc0);
        assert!(decode::<serde::de::IgnoredAny>(&ok).is_ok());
    }

    #[test]
    fn header_errors_are_typed() {
        let c = Codec::with_max_frame_size(64);
        assert_eq!(c.decode::<u8>(&[]), Err(CodecError::Truncated { len: 0 }));
        assert_eq!(
            c.decode::<u8>(&[WIRE_VERSION]),
            Err(CodecError::Truncated { len: 1 })
        );
        assert_eq!(
            c.decode::<u8>(&[9, TAG_VALUE, 1]),
            Err(CodecError::UnsupportedVersion(9))
        );
        assert_eq!(
            c.decode::<u8>(&[WIRE_VERSION, 7, 1]),
            Err(CodecError::UnknownTag(7))
        );
        assert_eq!(
            c.decode::<u8>(&[0u8; 65]),
            Err(CodecError::TooLarge {
                size: 65,
                limit: 64
            })
        );
    }

    #[test]
    fn error_frames_decode_as_remote_errors() {
        let c = Codec::global();
        let frame = c.encode_error("boom");
        assert_eq!(
            c.decode::<u32>(&frame),
            Err(CodecError::Remote("boom".into()))
        );
    }

    #[test]
    fn encode_refuses_oversized_values() {
        let c = Codec::with_max_frame_size(16);
        let err = c.encode(&vec![0u8; 100]);
        assert!(
            matches!(err, Err(CodecError::TooLarge { limit: 16, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let c = Codec::global();
        let mut frame = c.encode(&5u32).unwrap_or_default();
        frame.push(0);
        assert!(matches!(
            c.decode::<u32>(&frame),
            Err(CodecError::TrailingBytes { count: 1, .. })
        ));
    }
}
