//! Two lanes over one connection: ractor_cluster's byte stream (the data lane) and our control
//! frames (membership probes), which overtake data.
//!
//! ractor_cluster queues everything without bound: a remote cast passes the remote actor's
//! mailbox, the node session's mailbox (which also handles every *incoming* frame) and the
//! session's writer queue. A heartbeat sent through ractor therefore waits behind a flood in
//! either direction, and a node that is only busy gets declared down. Here heartbeats never
//! enter those queues: they are written by our writer task ahead of queued data and handed to
//! membership by our reader task as soon as they arrive.
//!
//! On the wire, after the identity exchange, both directions carry chunks:
//! `kind: u8` (0 data, 1 control), `len: u32` big-endian, then `len` bytes. A data chunk holds
//! up to [`DATA_CHUNK`] bytes of ractor's stream; a control chunk holds one codec-encoded
//! [`Control`]. A chunk of another kind or above [`MAX_CHUNK`] ends the connection.
//!
//! The writer also counts ractor frames (a big-endian `u64` length, then the payload) as they
//! reach the socket: the bounded sends ([`crate::outbound`]) compare that count with what was sent through it to
//! bound each peer's outbound queue.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use crate::outbound::Outbound;

pub use actor_cluster_proto::wire::{
    chunk_header, decode_chunk_header, decode_control, encode_control, ChunkError, Control,
    FrameCounter, DATA_CHUNK, KIND_CONTROL, KIND_DATA, MAX_CHUNK,
};

/// Data chunks queued between ractor's writer and the socket (per connection).
const DATA_QUEUE: usize = 16;
/// Control frames queued per connection; a heartbeat finding it full is dropped (the next
/// one follows within an interval).
const CONTROL_QUEUE: usize = 64;

/// The shared side of one connection: its control queue, its outbound accounting, and
/// whether ractor's handshake authenticated it (control frames are ignored until then).
#[derive(Debug)]
pub(crate) struct Lane {
    control: mpsc::Sender<Bytes>,
    ready: AtomicBool,
    /// Heartbeats dropped because the control queue was full.
    control_dropped: AtomicU64,
    outbound: Outbound,
}

impl Lane {
    /// The peer's node name (from the identity exchange).
    pub(crate) fn peer(&self) -> &str {
        self.outbound.peer()
    }

    /// What this connection owes the socket.
    pub(crate) fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// Marks the connection authenticated: control frames from it are accepted from now on.
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Queues a control frame ahead of data; false when the queue is full or closed.
    pub(crate) fn send_control(&self, frame: Bytes) -> bool {
        match self.control.try_send(frame) {
            Ok(()) => true,
            Err(_) => {
                self.control_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// Where the reader hands decoded control frames: `(lane, frame)`.
pub(crate) type ControlHandler = Arc<dyn Fn(&Lane, Control) + Send + Sync>;

/// Starts the lanes over a connection's halves. Returns the shared lane and the reader and
/// writer to hand to ractor_cluster. `on_error` cuts the connection; it runs when the reader
/// fails and whenever the writer ends, so neither task outlives the session.
pub(crate) fn start<R, W>(
    peer: String,
    read: R,
    write: W,
    handler: ControlHandler,
    on_error: Arc<dyn Fn() + Send + Sync>,
) -> (Arc<Lane>, MuxRead, MuxWrite)
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let (ctl_tx, ctl_rx) = mpsc::channel(CONTROL_QUEUE);
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(DATA_QUEUE);
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(DATA_QUEUE);
    let lane = Arc::new(Lane {
        control: ctl_tx,
        ready: AtomicBool::new(false),
        control_dropped: AtomicU64::new(0),
        outbound: Outbound::new(peer),
    });
    let l = lane.clone();
    let e = on_error.clone();
    tokio::spawn(async move {
        if let Err(err) = write_loop(write, ctl_rx, out_rx, &l).await {
            tracing::debug!(peer = %l.peer(), error = %err, "connection writer ended");
        }
        // Either the connection failed or ractor dropped its writer (the session is over):
        // cut the connection, so the reader task ends too even if the peer never closes.
        e();
        // Wake senders waiting for room: the connection is gone, their next check fails.
        l.outbound.close();
    });
    let l = Arc::downgrade(&lane);
    tokio::spawn(async move {
        if let Err(err) = read_loop(read, in_tx, &l, &handler).await {
            tracing::debug!(error = %err, "connection reader ended");
            on_error();
        }
    });
    (
        lane,
        MuxRead {
            rx: in_rx,
            cur: Bytes::new(),
        },
        MuxWrite {
            tx: PollSender::new(out_tx),
        },
    )
}

async fn write_loop<W: AsyncWrite + Unpin>(
    write: W,
    mut ctl_rx: mpsc::Receiver<Bytes>,
    mut out_rx: mpsc::Receiver<Bytes>,
    lane: &Lane,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(DATA_CHUNK + 5, write);
    let mut frames = FrameCounter::default();
    let mut control_open = true;
    loop {
        let (kind, chunk) = tokio::select! {
            biased;
            c = ctl_rx.recv(), if control_open => match c {
                Some(c) => (KIND_CONTROL, c),
                None => { control_open = false; continue; }
            },
            d = out_rx.recv() => match d {
                Some(d) => (KIND_DATA, d),
                // ractor dropped its writer: the session is over.
                None => break,
            },
        };
        w.write_all(&chunk_header(kind, chunk.len())).await?;
        w.write_all(&chunk).await?;
        if kind == KIND_DATA {
            lane.outbound.wrote(frames.feed(&chunk));
        }
        if ctl_rx.is_empty() && out_rx.is_empty() {
            w.flush().await?;
        }
    }
    w.flush().await?;
    w.shutdown().await
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut read: R,
    in_tx: mpsc::Sender<Bytes>,
    lane: &std::sync::Weak<Lane>,
    handler: &ControlHandler,
) -> io::Result<()> {
    loop {
        let mut head = [0u8; 5];
        match read.read_exact(&mut head).await {
            Ok(_) => {}
            // The peer closed the connection between chunks.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let (kind, len) =
            decode_chunk_header(head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut body = vec![0u8; len];
        read.read_exact(&mut body).await?;
        if kind == KIND_DATA {
            if in_tx.send(Bytes::from(body)).await.is_err() {
                // ractor's reader is gone.
                return Ok(());
            }
            continue;
        }
        let Some(lane) = lane.upgrade() else {
            return Ok(());
        };
        if !lane.is_ready() {
            tracing::debug!(peer = %lane.peer(), "control frame before authentication ignored");
            continue;
        }
        match decode_control(&body) {
            Ok(c) => handler(&lane, c),
            Err(e) => {
                tracing::warn!(peer = %lane.peer(), error = %e, "undecodable control frame ignored");
                metrics::counter!("cluster_control_decode_errors_total").increment(1);
            }
        }
    }
}

/// ractor's read half: the data lane's bytes.
pub(crate) struct MuxRead {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl AsyncRead for MuxRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.cur.is_empty() {
            match ready!(this.rx.poll_recv(cx)) {
                Some(b) => this.cur = b,
                // End of stream.
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.cur.len().min(buf.remaining());
        buf.put_slice(&this.cur.split_to(n));
        Poll::Ready(Ok(()))
    }
}

/// ractor's write half: data chunks for our writer task.
pub(crate) struct MuxWrite {
    tx: PollSender<Bytes>,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection closed")
}

impl AsyncWrite for MuxWrite {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.tx.poll_reserve(cx)).map_err(|_| closed())?;
        let n = buf.len().min(DATA_CHUNK);
        self.tx
            .send_item(Bytes::copy_from_slice(&buf[..n]))
            .map_err(|_| closed())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writer task flushes whenever its queues are empty.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u64).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn frame_counter_counts_frames_split_anywhere() {
        let mut stream = Vec::new();
        for i in 0..50usize {
            stream.extend(frame(&vec![7u8; i * 13 % 300]));
        }
        for piece in [1usize, 2, 3, 7, 8, 9, 64, 1000, stream.len()] {
            let mut c = FrameCounter::default();
            let n: u64 = stream.chunks(piece).map(|p| c.feed(p)).sum();
            assert_eq!(n, 50, "pieces of {piece}");
        }
    }

    #[test]
    fn chunk_headers_round_trip_and_refuse_bad_ones() {
        assert_eq!(
            decode_chunk_header(chunk_header(KIND_CONTROL, 300)),
            Ok((KIND_CONTROL, 300))
        );
        assert_eq!(
            decode_chunk_header([9, 0, 0, 0, 1]),
            Err(ChunkError::Kind(9))
        );
        assert_eq!(
            decode_chunk_header(chunk_header(KIND_DATA, MAX_CHUNK + 1)),
            Err(ChunkError::TooLong(MAX_CHUNK + 1))
        );
    }

    #[tokio::test]
    async fn queued_control_is_written_before_queued_data() {
        let (a, _b) = tokio::io::duplex(64);
        let (r, w) = tokio::io::split(a);
        let (lane, _r, _w) = start(
            "p".into(),
            r,
            w,
            Arc::new(|_: &Lane, _| {}),
            Arc::new(|| {}),
        );
        let (ctl_tx, ctl_rx) = mpsc::channel(4);
        let (out_tx, out_rx) = mpsc::channel(4);
        let data = Bytes::from(frame(&[1, 2, 3]));
        for _ in 0..3 {
            out_tx.send(data.clone()).await.unwrap();
        }
        ctl_tx.send(Bytes::from_static(b"hb")).await.unwrap();
        drop(out_tx);
        let mut out = Vec::new();
        write_loop(&mut out, ctl_rx, out_rx, &lane).await.unwrap();
        // The control chunk, queued last, is written first; then the data in order.
        let head = |at: usize| decode_chunk_header(out[at..at + 5].try_into().unwrap()).unwrap();
        assert_eq!(head(0), (KIND_CONTROL, 2));
        assert_eq!(&out[5..7], b"hb");
        let mut at = 7;
        for _ in 0..3 {
            assert_eq!(head(at), (KIND_DATA, data.len()));
            assert_eq!(&out[at + 5..at + 5 + data.len()], &data[..]);
            at += 5 + data.len();
        }
        assert_eq!(at, out.len());
        assert_eq!(lane.outbound.frames_out(), 3);
    }

    #[tokio::test]
    async fn control_and_data_share_a_connection_and_arrive_intact() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let g = got.clone();
        let handler: ControlHandler = Arc::new(move |_, c| g.lock().push(c));
        let noop: Arc<dyn Fn() + Send + Sync> = Arc::new(|| {});
        let (la, _ra, mut wa) = start("b".into(), ar, aw, handler.clone(), noop.clone());
        let (lb, mut rb, _wb) = start("a".into(), br, bw, handler, noop);
        lb.set_ready();
        la.set_ready();
        let mut data = Vec::new();
        for i in 0..2000u32 {
            data.extend(frame(&i.to_be_bytes()));
        }
        let writer = tokio::spawn(async move {
            wa.write_all(&data).await.unwrap();
            wa.flush().await.unwrap();
            wa
        });
        let hb = Control::Probe {
            probe: actor_cluster_proto::membership::Probe::Ping { seq: 1, members: 2 },
            services: vec![(3, 4)],
            wall_ns: 5,
        };
        assert!(la.send_control(Bytes::from(encode_control(&hb).unwrap())));
        let mut back = vec![0u8; 2000 * 12];
        rb.read_exact(&mut back).await.unwrap();
        let _wa = writer.await.unwrap();
        let mut c = FrameCounter::default();
        assert_eq!(c.feed(&back), 2000);
        assert_eq!(&back[8..12], &0u32.to_be_bytes());
        assert_eq!(&back[back.len() - 4..], &1999u32.to_be_bytes());
        assert_eq!(got.lock().as_slice(), &[hb]);
        assert_eq!(la.outbound.frames_out(), 2000);
    }
}
