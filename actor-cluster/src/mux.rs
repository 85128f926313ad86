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
//! `kind: u8` (0 data, 1 control, 2 credit), `len: u32` big-endian, then `len` bytes. A data
//! chunk holds up to [`DATA_CHUNK`] bytes of ractor's stream; a control chunk holds one
//! codec-encoded [`Control`]; a credit chunk holds the data bytes its sender has taken in so
//! far. A chunk of another kind or above [`MAX_CHUNK`] ends the connection.
//!
//! The data lane is flow-controlled by credit, so that control frames overtake data in the
//! receiving direction too: a writer sends data only while less than [`DATA_WINDOW`] bytes
//! are unaccounted for by the peer's credit, and a reader therefore never stops reading its
//! socket (it buffers at most the window; a peer that sends more is cut off). Without it, a
//! receiver whose ractor session reads slower than the wire left a socket full of data, and a
//! heartbeat's answer behind it waited past the failure detector's deadline.
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
    chunk_header, decode_chunk_header, decode_control, decode_credit, encode_control, ChunkError,
    Control, FrameCounter, Keepalive, KeepaliveFilter, DATA_CHUNK, DATA_WINDOW, KIND_CONTROL,
    KIND_CREDIT, KIND_DATA, MAX_CHUNK,
};

/// Data chunks queued between ractor's writer and the socket (per connection).
const DATA_QUEUE: usize = 16;
/// Control frames queued per connection; a heartbeat finding it full is dropped (the next
/// one follows within an interval).
const CONTROL_QUEUE: usize = 64;
/// Taken-in bytes that make a credit chunk due.
const GRANT_STEP: u64 = DATA_WINDOW / 4;

/// Both directions' credit accounting of one connection's data lane.
#[derive(Debug, Default)]
struct Flow {
    /// Data bytes ractor's reader took from this connection (the receiving direction).
    taken: AtomicU64,
    /// The `taken` last reported to the peer.
    announced: AtomicU64,
    /// The peer's latest report of what it took (the sending direction).
    granted: AtomicU64,
    /// Wakes the writer: a credit chunk is due, credit arrived, or the reader ended.
    wake: tokio::sync::Notify,
    /// The reader ended (the connection closed or failed): no credit can come any more, so a
    /// writer waiting for it ends.
    reader_ended: AtomicBool,
}

impl Flow {
    /// ractor's reader took `n` more bytes: wakes the writer when a credit chunk is due.
    fn took(&self, n: usize) {
        let taken = self.taken.fetch_add(n as u64, Ordering::AcqRel) + n as u64;
        if taken - self.announced.load(Ordering::Acquire) >= GRANT_STEP {
            self.wake.notify_one();
        }
    }
}

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
    // Unbounded, but credit bounds it: the peer sends at most the window beyond what was taken.
    let (in_tx, in_rx) = mpsc::unbounded_channel::<Bytes>();
    let flow = Arc::new(Flow::default());
    let lane = Arc::new(Lane {
        control: ctl_tx,
        ready: AtomicBool::new(false),
        control_dropped: AtomicU64::new(0),
        outbound: Outbound::new(peer),
    });
    let l = lane.clone();
    let e = on_error.clone();
    let f = flow.clone();
    tokio::spawn(async move {
        if let Err(err) = write_loop(write, ctl_rx, out_rx, &l, &f).await {
            tracing::debug!(peer = %l.peer(), error = %err, "connection writer ended");
        }
        // Either the connection failed or ractor dropped its writer (the session is over):
        // cut the connection, so the reader task ends too even if the peer never closes.
        e();
        // Wake senders waiting for room: the connection is gone, their next check fails.
        l.outbound.close();
    });
    let l = Arc::downgrade(&lane);
    let f = flow.clone();
    tokio::spawn(async move {
        let ended = read_loop(read, in_tx, &l, &handler, &f).await;
        f.reader_ended.store(true, Ordering::Release);
        f.wake.notify_one();
        if let Err(err) = ended {
            tracing::debug!(error = %err, "connection reader ended");
            on_error();
        }
    });
    (
        lane,
        MuxRead {
            rx: in_rx,
            cur: Bytes::new(),
            flow,
        },
        MuxWrite {
            tx: PollSender::new(out_tx),
            keepalive: KeepaliveFilter::default(),
        },
    )
}

async fn write_loop<W: AsyncWrite + Unpin>(
    write: W,
    mut ctl_rx: mpsc::Receiver<Bytes>,
    mut out_rx: mpsc::Receiver<Bytes>,
    lane: &Lane,
    flow: &Flow,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(DATA_CHUNK + 5, write);
    let mut frames = FrameCounter::default();
    let mut control_open = true;
    // Data bytes written; unflushed bytes in `w`.
    let (mut sent, mut dirty) = (0u64, false);
    loop {
        let taken = flow.taken.load(Ordering::Acquire);
        if taken - flow.announced.load(Ordering::Acquire) >= GRANT_STEP {
            w.write_all(&chunk_header(KIND_CREDIT, 8)).await?;
            w.write_all(&taken.to_be_bytes()).await?;
            flow.announced.store(taken, Ordering::Release);
            dirty = true;
        }
        let open = sent - flow.granted.load(Ordering::Acquire).min(sent) < DATA_WINDOW;
        if !open && flow.reader_ended.load(Ordering::Acquire) {
            // The connection is over while data waited for credit.
            break;
        }
        if dirty && ctl_rx.is_empty() && (!open || out_rx.is_empty()) {
            w.flush().await?;
            dirty = false;
        }
        let (kind, chunk) = tokio::select! {
            biased;
            c = ctl_rx.recv(), if control_open => match c {
                Some(c) => (KIND_CONTROL, c),
                None => { control_open = false; continue; }
            },
            () = flow.wake.notified() => continue,
            d = out_rx.recv(), if open => match d {
                Some(d) => (KIND_DATA, d),
                // ractor dropped its writer: the session is over.
                None => break,
            },
        };
        w.write_all(&chunk_header(kind, chunk.len())).await?;
        w.write_all(&chunk).await?;
        dirty = true;
        if kind == KIND_DATA {
            sent += chunk.len() as u64;
            lane.outbound.wrote(frames.feed(&chunk));
        }
    }
    w.flush().await?;
    w.shutdown().await
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut read: R,
    in_tx: mpsc::UnboundedSender<Bytes>,
    lane: &std::sync::Weak<Lane>,
    handler: &ControlHandler,
    flow: &Flow,
) -> io::Result<()> {
    let mut received = 0u64;
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
            received += len as u64;
            let taken = flow.taken.load(Ordering::Acquire);
            if received.saturating_sub(taken) > DATA_WINDOW + MAX_CHUNK as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the peer sent past its flow-control window",
                ));
            }
            if in_tx.send(Bytes::from(body)).is_err() {
                // ractor's reader is gone.
                return Ok(());
            }
            continue;
        }
        if kind == KIND_CREDIT {
            let granted =
                decode_credit(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            flow.granted.fetch_max(granted, Ordering::AcqRel);
            flow.wake.notify_one();
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
    rx: mpsc::UnboundedReceiver<Bytes>,
    cur: Bytes,
    flow: Arc<Flow>,
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
                Some(b) => {
                    this.flow.took(b.len());
                    this.cur = b;
                }
                // End of stream.
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.cur.len().min(buf.remaining());
        buf.put_slice(&this.cur.split_to(n));
        Poll::Ready(Ok(()))
    }
}

/// ractor's write half: data chunks for our writer task, less ractor_cluster's keepalive pings
/// (see [`KeepaliveFilter`]: our probes watch the peer; ractor only logs the pong).
pub(crate) struct MuxWrite {
    tx: PollSender<Bytes>,
    keepalive: KeepaliveFilter,
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
        let this = &mut *self;
        match this.keepalive.next(buf, DATA_CHUNK) {
            Keepalive::Skip(n) => {
                metrics::counter!("cluster_keepalives_left_out_total").increment(1);
                Poll::Ready(Ok(n))
            }
            Keepalive::Forward(n) => {
                this.tx
                    .send_item(Bytes::copy_from_slice(&buf[..n]))
                    .map_err(|_| closed())?;
                Poll::Ready(Ok(n))
            }
        }
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
mod tests;
