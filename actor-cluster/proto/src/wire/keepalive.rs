//! ractor_cluster's keepalive pings, found in its outgoing byte stream so that the writer can
//! leave them out.
//!
//! Every ractor_cluster session pings its peer every 1-5 s (a constant in its
//! `node_session.rs`; it cannot be configured) and only logs the pong: nothing acts on a
//! missing one. Our membership probes already watch every member, so those pings are pure
//! cost, and a cost that grows with the cluster: at 100 nodes every node sends and answers
//! about 66 of them a second, each through the session actors, the writer and the reader on
//! both sides. [`KeepaliveFilter`] walks ractor's frames (a big-endian `u64` length, then a
//! protobuf `NetworkMessage`) and points out each whole frame that is a ping, so the caller can
//! skip it. Everything else passes unchanged and in order.

/// Largest frame taken for a ping: a ping is a tag, a length and a protobuf timestamp (at most
/// 24 bytes); anything longer is forwarded unexamined.
const MAX_PING: u64 = 48;
/// The protobuf key of field 3 with wire type 2 (length-delimited): `NetworkMessage.control`,
/// and within it `ControlMessage.ping`.
const FIELD_3_LEN: u8 = 0x1A;

/// What to do with the bytes at the front of the stream, as [`KeepaliveFilter::next`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    /// Send this many bytes on (never a ping among them).
    Forward(usize),
    /// Leave out this many bytes: exactly one whole ping frame.
    Skip(usize),
}

/// Walks ractor_cluster's outgoing frames across the slices they are written in.
#[derive(Debug, Default, Clone)]
pub struct KeepaliveFilter {
    /// Header bytes of the frame in progress seen so far (0 at a frame boundary).
    head: [u8; 8],
    head_len: usize,
    /// Payload bytes of the frame in progress still to come.
    left: u64,
}

impl KeepaliveFilter {
    /// What to do with the front of `b`, the next bytes of the stream: forward at most `max` of
    /// them, or skip one whole ping frame. Returns `Forward(0)` only for an empty `b` or a zero
    /// `max`. The caller reports nothing back: the filter assumes it acts on the answer.
    pub fn next(&mut self, b: &[u8], max: usize) -> Keepalive {
        let limit = b.len().min(max);
        let mut pos = 0;
        while pos < limit {
            if self.left > 0 {
                let take = (self.left.min((limit - pos) as u64)) as usize;
                self.left -= take as u64;
                pos += take;
                continue;
            }
            if self.head_len == 0 {
                if let Some(n) = ping_at(&b[pos..]) {
                    if pos == 0 {
                        return Keepalive::Skip(n);
                    }
                    break;
                }
            }
            let take = (8 - self.head_len).min(limit - pos);
            self.head[self.head_len..self.head_len + take].copy_from_slice(&b[pos..pos + take]);
            self.head_len += take;
            pos += take;
            if self.head_len == 8 {
                self.left = u64::from_be_bytes(self.head);
                self.head_len = 0;
            }
        }
        Keepalive::Forward(pos)
    }
}

/// The length of the whole ping frame at the front of `b`, if one is there in full.
fn ping_at(b: &[u8]) -> Option<usize> {
    let head: [u8; 8] = b.get(..8)?.try_into().ok()?;
    let len = u64::from_be_bytes(head);
    if len > MAX_PING {
        return None;
    }
    let payload = b.get(8..8 + len as usize)?;
    let control = field_3(payload)?;
    field_3(control)?;
    Some(8 + len as usize)
}

/// The body of `b` when `b` is exactly one length-delimited field 3 (a one-byte length).
fn field_3(b: &[u8]) -> Option<&[u8]> {
    match b {
        [FIELD_3_LEN, len, body @ ..] if *len < 0x80 && usize::from(*len) == body.len() => {
            Some(body)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u64).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    /// A ping as ractor_cluster 0.16 encodes it: NetworkMessage.control(3) {
    /// ControlMessage.ping(3) { Ping.timestamp(1) { seconds(1), nanos(2) } } }.
    fn ping() -> Vec<u8> {
        let ts = [0x08, 0x96, 0x01, 0x10, 0xE8, 0x07];
        let mut p = vec![0x0A, ts.len() as u8];
        p.extend_from_slice(&ts);
        let mut c = vec![FIELD_3_LEN, p.len() as u8];
        c.extend_from_slice(&p);
        let mut n = vec![FIELD_3_LEN, c.len() as u8];
        n.extend_from_slice(&c);
        frame(&n)
    }

    /// A pong (ControlMessage field 4) and a node message (NetworkMessage field 2).
    fn others() -> Vec<Vec<u8>> {
        vec![
            frame(&[FIELD_3_LEN, 4, 0x22, 2, 0x0A, 0]),
            frame(&[0x12, 3, 1, 2, 3]),
            frame(&[]),
            frame(&[7u8; 300]),
        ]
    }

    /// Feeds `stream` in slices of `step` bytes, acting on every answer as a writer would.
    fn filtered(stream: &[u8], step: usize, max: usize) -> Vec<u8> {
        let mut f = KeepaliveFilter::default();
        let (mut out, mut at) = (Vec::new(), 0);
        while at < stream.len() {
            let end = (at + step).min(stream.len());
            // A writer retries the rest of its slice until all of it is taken.
            let mut slice = &stream[at..end];
            while !slice.is_empty() {
                let n = match f.next(slice, max) {
                    Keepalive::Forward(n) => {
                        out.extend_from_slice(&slice[..n]);
                        n
                    }
                    Keepalive::Skip(n) => n,
                };
                assert!(n > 0, "progress on a non-empty slice");
                slice = &slice[n..];
            }
            at = end;
        }
        out
    }

    #[test]
    fn pings_are_left_out_and_everything_else_passes_in_order() {
        let o = others();
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, other) in o.iter().enumerate() {
            stream.extend_from_slice(&ping());
            if i % 2 == 0 {
                stream.extend_from_slice(&ping());
            }
            stream.extend_from_slice(other);
            expected.extend_from_slice(other);
        }
        stream.extend_from_slice(&ping());
        // As ractor writes: a batch of whole frames at once, the writer taking up to `max`.
        for max in [usize::MAX, 5, 100] {
            assert_eq!(filtered(&stream, stream.len(), max), expected, "max {max}");
        }
        // Cut anywhere, a ping split across writes may pass, but only pings are left out and
        // every other frame arrives whole and in order.
        for step in [1, 3, 8, 13, 64] {
            let out = filtered(&stream, step, 100);
            let kept: Vec<Vec<u8>> = frames_of(&out)
                .into_iter()
                .filter(|f| *f != ping())
                .collect();
            assert_eq!(kept, o, "step {step}");
        }
    }

    /// Splits a stream of whole frames.
    fn frames_of(mut b: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let len = u64::from_be_bytes(b[..8].try_into().unwrap()) as usize;
            out.push(b[..8 + len].to_vec());
            b = &b[8 + len..];
        }
        out
    }

    #[test]
    fn a_ping_shaped_payload_inside_another_frame_is_not_touched() {
        // A node message whose bytes happen to hold a whole ping frame.
        let mut payload = vec![0x12, 0];
        payload.extend_from_slice(&ping());
        let f = frame(&payload);
        assert_eq!(filtered(&f, f.len(), usize::MAX), f);
        assert_eq!(filtered(&f, 1, usize::MAX), f);
        // A ping split across writes passes whole: it is only skipped when seen in full.
        let p = ping();
        assert_eq!(filtered(&p, p.len() - 1, usize::MAX), p);
    }

    #[test]
    fn forwarding_stops_at_a_ping_and_then_skips_it() {
        let mut stream = others()[1].clone();
        let first = stream.len();
        stream.extend_from_slice(&ping());
        let mut f = KeepaliveFilter::default();
        assert_eq!(f.next(&stream, usize::MAX), Keepalive::Forward(first));
        assert_eq!(
            f.next(&stream[first..], usize::MAX),
            Keepalive::Skip(ping().len())
        );
        assert_eq!(f.next(&[], usize::MAX), Keepalive::Forward(0));
    }
}
