//! Fault injection in our transport: traffic to chosen peers can be blocked (reads and writes
//! stall, as in a partition where packets are lost, not refused) and unblocked, and a
//! connection can be cut from our side.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Blocked peers, shared by every connection of a node.
#[derive(Debug, Default)]
pub struct Faults {
    blocked: Mutex<HashSet<String>>,
    wakers: Mutex<Vec<Waker>>,
    generation: AtomicU64,
}

impl Faults {
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
}

/// A stream that obeys fault injection and can be cut from our side.
pub(crate) struct FaultStream<S> {
    pub(crate) inner: S,
    pub(crate) ctl: Arc<ConnCtl>,
    pub(crate) faults: Arc<Faults>,
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
