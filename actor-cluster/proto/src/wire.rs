//! The cluster's wire formats, pure (encode and decode only; the shell does the I/O), fuzzed
//! through `actor_cluster::fuzzing`:
//!
//! * the identity frame a node sends first on every connection ([`identity_frame`]);
//! * the chunks that follow it: a kind byte, a big-endian `u32` length, the bytes
//!   ([`chunk_header`]); data chunks carry ractor_cluster's stream, control chunks one
//!   [`Control`] frame (heartbeats, ahead of queued data), credit chunks the data lane's flow
//!   control ([`DATA_WINDOW`]);
//! * [`FrameCounter`], which counts ractor's length-prefixed frames in the data stream, and
//!   [`KeepaliveFilter`], which finds ractor_cluster's keepalive pings in it;
//! * the names of the process groups the replicated services' endpoints join.

use actor_core_base::codec::{self, Codec, CodecError};
use serde::{Deserialize, Serialize};

use crate::membership::Probe;
use crate::{NodeIdentity, Owner};

mod keepalive;
pub use keepalive::{Keepalive, KeepaliveFilter};

const MAGIC: &[u8; 4] = b"ACT6";
/// Largest identity frame body accepted.
const MAX_HELLO: usize = 16 * 1024;

/// Why bytes from a peer were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not our identity frame (wrong magic, too long, truncated, undecodable).
    #[error("bad identity frame: {0}")]
    BadIdentity(String),
}

/// The identity frame exchanged before ractor_cluster's handshake.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hello {
    identity: NodeIdentity,
}

/// The identity frame a node sends first on every connection: `ACT6` (protocol version 6:
/// data, control and credit chunks follow; control chunks carry membership probes with service
/// summaries; registry, child-table and flag-cache messages are the replication skeleton's), a
/// big-endian `u32` length, and the codec-encoded identity. Public for tests and fuzzing.
pub fn identity_frame(identity: &NodeIdentity) -> Result<Vec<u8>, WireError> {
    let hello = codec::encode(&Hello {
        identity: identity.clone(),
    })
    .map_err(|e| WireError::BadIdentity(e.to_string()))?;
    let mut frame = Vec::with_capacity(hello.len() + 8);
    frame.extend_from_slice(MAGIC);
    frame.extend_from_slice(&(hello.len() as u32).to_be_bytes());
    frame.extend_from_slice(&hello);
    Ok(frame)
}

/// Checks an identity frame's 8-byte head and returns the body's length.
pub fn identity_frame_len(head: &[u8; 8]) -> Result<usize, WireError> {
    if &head[..4] != MAGIC {
        return Err(WireError::BadIdentity("wrong magic bytes".into()));
    }
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if len > MAX_HELLO {
        return Err(WireError::BadIdentity(format!("frame of {len} bytes")));
    }
    Ok(len)
}

/// Decodes an identity frame's body.
pub fn decode_identity_body(body: &[u8]) -> Result<NodeIdentity, WireError> {
    let peer: Hello = Codec::with_max_frame_size(MAX_HELLO)
        .decode(body)
        .map_err(|e| WireError::BadIdentity(e.to_string()))?;
    Ok(peer.identity)
}

/// Decodes a whole identity frame (head and body), as a node reads it from a new connection.
pub fn decode_identity_frame(frame: &[u8]) -> Result<NodeIdentity, WireError> {
    let head: &[u8; 8] = frame
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| WireError::BadIdentity("truncated frame".into()))?;
    let len = identity_frame_len(head)?;
    let body = frame
        .get(8..8 + len)
        .ok_or_else(|| WireError::BadIdentity("truncated frame".into()))?;
    decode_identity_body(body)
}

/// Kind byte of a data chunk.
pub const KIND_DATA: u8 = 0;
/// Kind byte of a control chunk.
pub const KIND_CONTROL: u8 = 1;
/// Kind byte of a credit chunk: the data-lane bytes the sender has taken in so far (a
/// big-endian `u64`), which lets the peer send that much more (see [`DATA_WINDOW`]).
pub const KIND_CREDIT: u8 = 2;
/// Data-lane bytes a node may have on the way to a peer beyond what the peer reported taken
/// in: the peer's receive buffer per connection. Because a sender never exceeds it, a
/// receiver can always read its socket, and control frames never wait behind data.
pub const DATA_WINDOW: u64 = 1 << 20;
/// Largest data chunk we write.
pub const DATA_CHUNK: usize = 64 * 1024;
/// Largest chunk accepted from a peer.
pub const MAX_CHUNK: usize = 1024 * 1024;
/// A control frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Control {
    /// A membership frame, with the summaries of the sender's replicated services on pings
    /// and acks (service id, summary): see [`crate::replication`].
    Probe {
        /// The frame.
        probe: Probe,
        /// `(service id, summary)` pairs; empty on other frames.
        services: Vec<(u64, u64)>,
        /// The sender's wall clock when it wrote the frame, ns since the Unix epoch (0:
        /// not stamped): see [`crate::clock`].
        #[serde(default)]
        wall_ns: u64,
    },
}

/// Why a chunk header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The kind byte is neither data nor control.
    #[error("unknown chunk kind {0}")]
    Kind(u8),
    /// The length is above [`MAX_CHUNK`].
    #[error("chunk of {0} bytes is over the limit")]
    TooLong(usize),
    /// A credit chunk whose body is not 8 bytes long.
    #[error("credit chunk of {0} bytes (8 expected)")]
    Credit(usize),
}

/// Parses a chunk header: its kind and payload length.
pub fn decode_chunk_header(head: [u8; 5]) -> Result<(u8, usize), ChunkError> {
    let kind = head[0];
    if kind != KIND_DATA && kind != KIND_CONTROL && kind != KIND_CREDIT {
        return Err(ChunkError::Kind(kind));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_CHUNK {
        return Err(ChunkError::TooLong(len));
    }
    Ok((kind, len))
}

/// Decodes a credit chunk's body.
pub fn decode_credit(body: &[u8]) -> Result<u64, ChunkError> {
    let b: [u8; 8] = body
        .try_into()
        .map_err(|_| ChunkError::Credit(body.len()))?;
    Ok(u64::from_be_bytes(b))
}

/// Encodes a chunk header.
pub fn chunk_header(kind: u8, len: usize) -> [u8; 5] {
    let l = (len as u32).to_be_bytes();
    [kind, l[0], l[1], l[2], l[3]]
}

/// Encodes a control frame.
pub fn encode_control(c: &Control) -> Result<Vec<u8>, CodecError> {
    codec::encode(c)
}

/// Decodes a control frame.
pub fn decode_control(b: &[u8]) -> Result<Control, CodecError> {
    Codec::with_max_frame_size(MAX_CHUNK).decode(b)
}

/// Counts whole ractor frames (big-endian `u64` length, then payload) in a byte stream fed in
/// pieces.
#[derive(Debug, Default, Clone)]
pub struct FrameCounter {
    len_bytes: u8,
    len: u64,
    remaining: u64,
    in_payload: bool,
}

impl FrameCounter {
    /// Feeds bytes; returns how many frames ended in them.
    pub fn feed(&mut self, mut b: &[u8]) -> u64 {
        let mut frames = 0;
        while !b.is_empty() {
            if self.in_payload {
                let take = (self.remaining.min(b.len() as u64)) as usize;
                self.remaining -= take as u64;
                b = &b[take..];
                if self.remaining == 0 {
                    self.in_payload = false;
                    frames += 1;
                }
            } else {
                self.len = (self.len << 8) | u64::from(b[0]);
                self.len_bytes += 1;
                b = &b[1..];
                if self.len_bytes == 8 {
                    self.remaining = self.len;
                    self.len = 0;
                    self.len_bytes = 0;
                    if self.remaining == 0 {
                        frames += 1;
                    } else {
                        self.in_payload = true;
                    }
                }
            }
        }
        frames
    }
}

/// The process group of a registry's replica endpoints.
pub fn registry_group(registry: &str) -> String {
    format!("registry:{registry}")
}

/// The process group (and the registry name) of a distributed supervisor's endpoints.
pub fn supervisor_group(supervisor: &str) -> String {
    format!("dsup:{supervisor}")
}

/// The process group a registered actor joins, unique to (registry, owner, name): where other
/// nodes find its proxy.
pub fn registered_group(registry: &str, owner: &Owner, name: &str) -> String {
    format!("{registry}|{}|{}|{name}", owner.node, owner.incarnation)
}

/// The parts of a [`registered_group`] name: registry, node, incarnation, name.
pub fn parse_registered_group(group: &str) -> Option<(&str, &str, u64, &str)> {
    let mut parts = group.splitn(4, '|');
    let reg = parts.next()?;
    let node = parts.next()?;
    let inc = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    Some((reg, node, inc, name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn identity_frames_round_trip_and_refuse_other_bytes() {
        let me = NodeIdentity {
            name: "n1".into(),
            incarnation: 7,
            addr: "127.0.0.1:4370".parse().unwrap(),
        };
        let frame = identity_frame(&me).unwrap();
        assert_eq!(decode_identity_frame(&frame), Ok(me));
        let mut old = frame.clone();
        old[3] = b'5';
        assert!(
            decode_identity_frame(&old).is_err(),
            "an ACT5 peer (no credit) is refused"
        );
        assert!(decode_identity_frame(&frame[..frame.len() - 1]).is_err());
    }

    #[test]
    fn group_names_parse_back() {
        let o = Owner {
            node: "a".into(),
            incarnation: 3,
        };
        let g = registered_group("dsup:x", &o, "child|1");
        assert_eq!(
            parse_registered_group(&g),
            Some(("dsup:x", "a", 3, "child|1"))
        );
        assert_eq!(parse_registered_group("nope"), None);
    }
}
