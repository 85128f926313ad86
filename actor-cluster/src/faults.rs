//! Fault injection in our transport: traffic to chosen peers can be blocked (reads and writes
//! stall, as in a partition where packets are lost, not refused) and unblocked, links to
//! chosen peers can be made slow and lossy ([`LinkFault`]), and a connection can be cut from
//! our side.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A slow, lossy link to a peer, as this node receives from it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkFault {
    /// Every byte from the peer arrives this much later.
    pub delay: Duration,
    /// Plus up to this much more, drawn per read (order is kept, as TCP keeps it).
    pub jitter: Duration,
    /// The share (0 to 1) of the peer's probe frames dropped on arrival. The data lane is a
    /// TCP stream: its losses are retransmitted, so they show as delay and jitter.
    pub loss: f64,
}

/// Blocked peers and slow links, shared by every connection of a node.
#[derive(Debug, Default)]
pub struct Faults {
    blocked: Mutex<HashSet<String>>,
    wakers: Mutex<Vec<Waker>>,
    generation: AtomicU64,
    links: Mutex<HashMap<String, LinkFault>>,
    any_link: AtomicBool,
}

impl Faults {
    /// Makes the links from these peers slow and lossy (replacing what was set for them).
    pub fn set_link<I: IntoIterator<Item = S>, S: Into<String>>(&self, peers: I, link: LinkFault) {
        let mut l = self.links.lock();
        for p in peers {
            if link == LinkFault::default() {
                l.remove(&p.into());
            } else {
                l.insert(p.into(), link);
            }
        }
        self.any_link.store(!l.is_empty(), Ordering::Relaxed);
    }

    /// Every link back to normal.
    pub fn clear_links(&self) {
        self.links.lock().clear();
        self.any_link.store(false, Ordering::Relaxed);
    }

    /// The fault on the link from `peer`, if any.
    pub fn link(&self, peer: &str) -> Option<LinkFault> {
        if !self.any_link.load(Ordering::Relaxed) {
            return None;
        }
        self.links.lock().get(peer).copied()
    }

    /// Whether a probe frame just read from `peer` is lost (drawn against its link's loss).
    pub(crate) fn lose_probe(&self, peer: &str) -> bool {
        self.link(peer)
            .is_some_and(|l| l.loss > 0.0 && rand::random::<f64>() < l.loss)
    }

    /// Blocks all traffic to and from these peers (by node name).
    pub fn block<I: IntoIterator<Item = S>, S: Into<String>>(&self, peers: I) {
        let mut b = self.blocked.lock();
        for p in peers {
            b.insert(p.into());
        }
    }

    /// Unblocks these peers.
    pub fn unblock<I: IntoIterator<Item = S>, S: Into<String>>(&self, peers: I) {
        {
            let mut b = self.blocked.lock();
            for p in peers {
                b.remove(&p.into());
            }
        }
        self.wake_all();
    }

    /// Unblocks every peer.
    pub fn unblock_all(&self) {
        self.blocked.lock().clear();
        self.wake_all();
    }

    /// Whether traffic with this peer is blocked.
    pub fn is_blocked(&self, peer: &str) -> bool {
        self.blocked.lock().contains(peer)
    }

    /// The blocked peers.
    pub fn blocked(&self) -> Vec<String> {
        self.blocked.lock().iter().cloned().collect()
    }

    fn park(&self, waker: &Waker) {
        let mut w = self.wakers.lock();
        if !w.iter().any(|x| x.will_wake(waker)) {
            w.push(waker.clone());
        }
    }

    fn wake_all(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        let wakers = std::mem::take(&mut *self.wakers.lock());
        for w in wakers {
            w.wake();
        }
    }
}

/// Control of one connection: which peer it is with, and whether we cut it.
#[derive(Debug, Default)]
pub(crate) struct ConnCtl {
    peer: Mutex<Option<String>>,
    closed: AtomicBool,
    read_waker: Mutex<Option<Waker>>,
    write_waker: Mutex<Option<Waker>>,
}

impl ConnCtl {
    pub(crate) fn set_peer(&self, name: &str) {
        *self.peer.lock() = Some(name.to_owned());
    }

    /// Cuts the connection: pending and future reads and writes fail.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(w) = self.read_waker.lock().take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.lock().take() {
            w.wake();
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn blocked(&self, faults: &Faults) -> bool {
        match &*self.peer.lock() {
            Some(p) => faults.is_blocked(p),
            None => false,
        }
    }

    fn link(&self, faults: &Faults) -> Option<LinkFault> {
        if !faults.any_link.load(Ordering::Relaxed) {
            return None;
        }
        self.peer.lock().as_deref().and_then(|p| faults.link(p))
    }
}

/// Bytes read from a slow link, held until they are due.
#[derive(Default)]
pub(crate) struct Lag {
    queue: VecDeque<(Instant, Vec<u8>, usize)>,
    last_due: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The end of the stream (or its error), delivered after what is queued.
    end: Option<io::Result<()>>,
}

/// A stream that obeys fault injection and can be cut from our side.
pub(crate) struct FaultStream<S> {
    pub(crate) inner: S,
    pub(crate) ctl: Arc<ConnCtl>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) lag: Lag,
}

impl<S> FaultStream<S> {
    pub(crate) fn new(inner: S, ctl: Arc<ConnCtl>, faults: Arc<Faults>) -> Self {
        Self {
            inner,
            ctl,
            faults,
            lag: Lag::default(),
        }
    }
}

impl<S: AsyncRead + Unpin> FaultStream<S> {
    /// The read path of a slow link: takes in what the socket has, stamped with when it is
    /// due, and hands out what is due.
    fn poll_lagged(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        link: Option<LinkFault>,
    ) -> Poll<io::Result<()>> {
        if let Some(l) = link {
            while self.lag.end.is_none() {
                let mut tmp = vec![0u8; 16 * 1024];
                let mut rb = ReadBuf::new(&mut tmp);
                match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => self.lag.end = Some(Ok(())),
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        tmp.truncate(n);
                        let jitter = l.jitter.mul_f64(rand::random::<f64>());
                        let due = Instant::now() + l.delay + jitter;
                        let due = self.lag.last_due.map_or(due, |last| due.max(last));
                        self.lag.last_due = Some(due);
                        self.lag.queue.push_back((due, tmp, 0));
                    }
                    Poll::Ready(Err(e)) => self.lag.end = Some(Err(e)),
                    Poll::Pending => break,
                }
            }
        }
        loop {
            let Some((due, bytes, at)) = self.lag.queue.front_mut() else {
                if let Some(end) = self.lag.end.take() {
                    return Poll::Ready(end);
                }
                return wait(&self.ctl, cx, &self.ctl.read_waker);
            };
            if *due <= Instant::now() {
                let n = buf.remaining().min(bytes.len() - *at);
                buf.put_slice(&bytes[*at..*at + n]);
                *at += n;
                if *at == bytes.len() {
                    self.lag.queue.pop_front();
                }
                self.lag.sleep = None;
                return Poll::Ready(Ok(()));
            }
            let due = *due;
            let sleep = self
                .lag
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            if sleep.deadline() != due {
                sleep.as_mut().reset(due);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return wait(&self.ctl, cx, &self.ctl.read_waker);
            }
        }
    }
}

fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection cut by this node",
    )
}

/// Before touching the socket: `Some` when the connection is cut (an error) or traffic with the
/// peer is blocked (pending until unblocked or cut).
fn gate<T>(
    ctl: &ConnCtl,
    faults: &Faults,
    cx: &mut Context<'_>,
    waker: &Mutex<Option<Waker>>,
) -> Option<Poll<io::Result<T>>> {
    if ctl.is_closed() {
        return Some(Poll::Ready(Err(cut())));
    }
    if ctl.blocked(faults) {
        faults.park(cx.waker());
        *waker.lock() = Some(cx.waker().clone());
        if ctl.is_closed() {
            return Some(Poll::Ready(Err(cut())));
        }
        if ctl.blocked(faults) {
            return Some(Poll::Pending);
        }
    }
    None
}

/// The socket is not ready: remember the waker, so that a cut wakes the task.
fn wait<T>(
    ctl: &ConnCtl,
    cx: &mut Context<'_>,
    waker: &Mutex<Option<Waker>>,
) -> Poll<io::Result<T>> {
    *waker.lock() = Some(cx.waker().clone());
    if ctl.is_closed() {
        return Poll::Ready(Err(cut()));
    }
    Poll::Pending
}

impl<S: AsyncRead + Unpin> AsyncRead for FaultStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(p) = gate(&this.ctl, &this.faults, cx, &this.ctl.read_waker) {
            return p;
        }
        let link = this.ctl.link(&this.faults);
        if link.is_some() || !this.lag.queue.is_empty() || this.lag.end.is_some() {
            return this.poll_lagged(cx, buf, link);
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => wait(&this.ctl, cx, &this.ctl.read_waker),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FaultStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(p) = gate(&this.ctl, &this.faults, cx, &this.ctl.write_waker) {
            return p;
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => wait(&this.ctl, cx, &this.ctl.write_waker),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(p) = gate(&this.ctl, &this.faults, cx, &this.ctl.write_waker) {
            return p;
        }
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => wait(&this.ctl, cx, &this.ctl.write_waker),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
