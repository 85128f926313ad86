//! Flooding one node with remote casts, for the overload test and the `overload` bench: a
//! counting sink actor registered on every node, and control commands that flood the sink of
//! another node and report progress.
//!
//! Commands: [`FloodCmd`], carried out by [`Flood::run`]; a node binary with no other commands
//! serves [`Flood`] itself as its [`ControlExtension`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core::RemoteMessage;
use futures::future::BoxFuture;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use actor_cluster::remote::{self, SendError};
use actor_cluster::{Node, Remote};
use actor_cluster_launch::ControlExtension;

/// The sink's protocol.
#[derive(RemoteMessage)]
pub enum SinkMsg {
    /// One flood message.
    Item(u64),
    /// How many items arrived.
    Count(RpcReplyPort<u64>),
}

/// The sink: counts items, spending `work` of CPU on each (a slow consumer when not zero).
struct Sink {
    work: Duration,
}

impl Actor for Sink {
    type Msg = SinkMsg;
    type State = Arc<AtomicU64>;
    type Arguments = Arc<AtomicU64>;

    async fn pre_start(
        &self,
        _: ActorRef<SinkMsg>,
        n: Arc<AtomicU64>,
    ) -> Result<Arc<AtomicU64>, ActorProcessingErr> {
        Ok(n)
    }

    async fn handle(
        &self,
        _: ActorRef<SinkMsg>,
        msg: SinkMsg,
        n: &mut Arc<AtomicU64>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SinkMsg::Item(_) => {
                let began = Instant::now();
                while began.elapsed() < self.work {
                    std::hint::spin_loop();
                }
                n.fetch_add(1, Ordering::Relaxed);
            }
            SinkMsg::Count(reply) => {
                let _ = reply.send(n.load(Ordering::Relaxed));
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    running: AtomicBool,
    elapsed_ms: AtomicU64,
}

/// The flood commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum FloodCmd {
    /// In the background, send `n` messages to the sink of node `to` (any other node when
    /// `None`).
    Flood {
        /// How many.
        n: u64,
        /// How.
        mode: FloodMode,
        /// The node whose sink to flood.
        to: Option<String>,
    },
    /// The flood's progress: a [`FloodStatus`].
    FloodStatus,
    /// Messages this node's sink received.
    SinkCount,
    /// A bounded call to the sink of node `to` (any other node when `None`): a [`SinkCall`].
    CallSink {
        /// The call's timeout.
        timeout_ms: u64,
        /// The node whose sink to call.
        to: Option<String>,
    },
}

/// How a flood sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FloodMode {
    /// ractor's own unbounded `cast`.
    Raw,
    /// [`Remote::try_cast`]: dropped when the outbound queue is full.
    Try,
    /// [`Remote::cast`]: waits for room.
    Wait,
}

/// The reply to [`FloodCmd::FloodStatus`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloodStatus {
    /// Messages sent.
    pub sent: u64,
    /// Messages refused as overloaded.
    pub dropped: u64,
    /// Messages that failed otherwise.
    pub failed: u64,
    /// Whether the flood has ended.
    pub done: bool,
    /// How long it took (once done).
    pub elapsed_ms: u64,
    /// Messages queued to all peers now.
    pub queued: u64,
}

/// The reply to [`FloodCmd::CallSink`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SinkCall {
    /// The sink's count, when the call succeeded.
    pub ok: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether it failed as overloaded.
    pub overloaded: bool,
    /// How long the call took.
    pub ms: f64,
}

/// The sink of this node and the flood commands.
pub struct Flood {
    received: Arc<AtomicU64>,
    progress: Arc<Progress>,
    remote: Remote,
}

impl std::fmt::Debug for Flood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flood")
            .field("received", &self.received.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The sink on node `to`, or on any other node when `to` is absent.
fn target(remote: &Remote, to: Option<&str>) -> Result<ActorRef<SinkMsg>, String> {
    remote::lookup_remote::<SinkMsg>("flood-sink")
        .into_iter()
        .find(|r| to.is_none() || remote.node_of(r).as_deref() == to)
        .ok_or_else(|| format!("no sink on {}", to.unwrap_or("another node")))
}

impl Flood {
    /// Spawns this node's sink and registers it under the group `flood-sink`.
    pub async fn start(node: &Node) -> Result<Self, ractor::SpawnErr> {
        Self::start_with(node, Duration::ZERO).await
    }

    /// [`Flood::start`] with a sink that spends `work` of CPU on every item: a consumer slower
    /// than the wire, so what arrives queues in this node's mailboxes.
    pub async fn start_with(node: &Node, work: Duration) -> Result<Self, ractor::SpawnErr> {
        let received = Arc::new(AtomicU64::new(0));
        let (sink, _) = Actor::spawn(None, Sink { work }, received.clone()).await?;
        remote::register("flood-sink", &sink);
        Ok(Self {
            received,
            progress: Arc::default(),
            remote: node.remote().clone(),
        })
    }

    /// Carries out a flood command.
    pub fn run(&self, cmd: FloodCmd) -> BoxFuture<'static, Result<Value, String>> {
        let received = self.received.clone();
        let p = self.progress.clone();
        let remote = self.remote.clone();
        match cmd {
            FloodCmd::SinkCount => {
                Box::pin(async move { Ok(json!(received.load(Ordering::Relaxed))) })
            }
            FloodCmd::FloodStatus => Box::pin(async move {
                let queued: u64 = remote.outbound().iter().map(|o| o.queued).sum();
                Ok(json!(FloodStatus {
                    sent: p.sent.load(Ordering::Relaxed),
                    dropped: p.dropped.load(Ordering::Relaxed),
                    failed: p.failed.load(Ordering::Relaxed),
                    done: !p.running.load(Ordering::SeqCst),
                    elapsed_ms: p.elapsed_ms.load(Ordering::Relaxed),
                    queued,
                }))
            }),
            FloodCmd::CallSink { timeout_ms, to } => Box::pin(async move {
                let to = target(&remote, to.as_deref())?;
                let timeout = Duration::from_millis(timeout_ms);
                let t0 = Instant::now();
                let r = remote.call(&to, SinkMsg::Count, timeout).await;
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                Ok(json!(match r {
                    Ok(n) => SinkCall {
                        ok: Some(n),
                        error: None,
                        overloaded: false,
                        ms
                    },
                    Err(e) => SinkCall {
                        ok: None,
                        error: Some(e.to_string()),
                        overloaded: matches!(e, SendError::Overloaded { .. }),
                        ms,
                    },
                }))
            }),
            FloodCmd::Flood { n, mode, to } => Box::pin(async move {
                let to = target(&remote, to.as_deref())?;
                if p.running.swap(true, Ordering::SeqCst) {
                    return Err("a flood is running".into());
                }
                for c in [&p.sent, &p.dropped, &p.failed, &p.elapsed_ms] {
                    c.store(0, Ordering::Relaxed);
                }
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    for i in 0..n {
                        let r = match mode {
                            FloodMode::Raw => to
                                .cast(SinkMsg::Item(i))
                                .map_err(|e| SendError::Unreachable(e.to_string())),
                            FloodMode::Try => remote.try_cast(&to, SinkMsg::Item(i)),
                            FloodMode::Wait => {
                                remote
                                    .cast(&to, SinkMsg::Item(i), Duration::from_secs(30))
                                    .await
                            }
                        };
                        match r {
                            Ok(()) => p.sent.fetch_add(1, Ordering::Relaxed),
                            Err(SendError::Overloaded { .. }) => {
                                p.dropped.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(_) => p.failed.fetch_add(1, Ordering::Relaxed),
                        };
                        if i % 1024 == 1023 {
                            tokio::task::yield_now().await;
                        }
                    }
                    p.elapsed_ms
                        .store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
                    p.running.store(false, Ordering::SeqCst);
                });
                Ok(json!("started"))
            }),
        }
    }
}

impl ControlExtension for Flood {
    type Command = FloodCmd;

    fn handle(&self, _: &Node, cmd: FloodCmd) -> BoxFuture<'static, Result<Value, String>> {
        self.run(cmd)
    }
}
