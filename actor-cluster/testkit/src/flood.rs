//! Flooding one node with remote casts, for the overload test and the `overload` bench: a
//! counting sink actor registered on every node, and control commands that flood the sink of
//! another node and report progress.
//!
//! Commands (see [`Flood::handle`]):
//! * `flood {n, mode, to?}`: in the background, cast `n` messages at the sink of node `to`
//!   (any other node when absent). `mode` is
//!   `raw` (ractor's own unbounded `cast`), `try` ([`actor_cluster::Remote::try_cast`]: drop when the
//!   outbound queue is full) or `wait` ([`actor_cluster::Remote::cast`]: wait for room);
//! * `flood_status`: `{sent, dropped, failed, done, elapsed_ms, queued}`;
//! * `sink_count`: messages this node's sink received;
//! * `call_sink {timeout_ms, to?}`: a bounded [`actor_cluster::Remote::call`] to the other node's sink,
//!   answered with `{ok, error, ms}`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core::RemoteMessage;
use futures::future::BoxFuture;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{json, Value};

use actor_cluster::remote::{self, SendError};
use actor_cluster::{Node, Remote};

/// The sink's protocol.
#[derive(RemoteMessage)]
pub enum SinkMsg {
    /// One flood message.
    Item(u64),
    /// How many items arrived.
    Count(RpcReplyPort<u64>),
}

struct Sink;

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
fn target(remote: &Remote, to: &Value) -> Result<ActorRef<SinkMsg>, String> {
    let to = to.as_str();
    remote::lookup_remote::<SinkMsg>("flood-sink")
        .into_iter()
        .find(|r| to.is_none() || remote.node_of(r).as_deref() == to)
        .ok_or_else(|| format!("no sink on {}", to.unwrap_or("another node")))
}

impl Flood {
    /// Spawns this node's sink and registers it under the group `flood-sink`.
    pub async fn start(node: &Node) -> Result<Self, ractor::SpawnErr> {
        let received = Arc::new(AtomicU64::new(0));
        let (sink, _) = Actor::spawn(None, Sink, received.clone()).await?;
        remote::register("flood-sink", &sink);
        Ok(Self {
            received,
            progress: Arc::default(),
            remote: node.remote().clone(),
        })
    }

    /// Handles a flood command; `None` for other commands.
    pub fn handle(
        &self,
        name: &str,
        args: &Value,
    ) -> Option<BoxFuture<'static, Result<Value, String>>> {
        let received = self.received.clone();
        let p = self.progress.clone();
        let args = args.clone();
        let remote = self.remote.clone();
        match name {
            "sink_count" => Some(Box::pin(async move {
                Ok(json!(received.load(Ordering::Relaxed)))
            })),
            "flood_status" => Some(Box::pin(async move {
                let queued: u64 = remote.outbound().iter().map(|o| o.queued).sum();
                Ok(json!({
                    "sent": p.sent.load(Ordering::Relaxed),
                    "dropped": p.dropped.load(Ordering::Relaxed),
                    "failed": p.failed.load(Ordering::Relaxed),
                    "done": !p.running.load(Ordering::SeqCst),
                    "elapsed_ms": p.elapsed_ms.load(Ordering::Relaxed),
                    "queued": queued,
                }))
            })),
            "call_sink" => Some(Box::pin(async move {
                let to = target(&remote, &args["to"])?;
                let timeout = Duration::from_millis(args["timeout_ms"].as_u64().unwrap_or(5000));
                let t0 = Instant::now();
                let r = remote.call(&to, SinkMsg::Count, timeout).await;
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                Ok(match r {
                    Ok(n) => json!({"ok": n, "error": null, "ms": ms}),
                    Err(e) => {
                        json!({"ok": null, "error": e.to_string(), "overloaded": matches!(e, SendError::Overloaded { .. }), "ms": ms})
                    }
                })
            })),
            "flood" => Some(Box::pin(async move {
                let to = target(&remote, &args["to"])?;
                let n = args["n"].as_u64().unwrap_or(0);
                let mode = args["mode"].as_str().unwrap_or("try").to_owned();
                if !matches!(mode.as_str(), "raw" | "try" | "wait") {
                    return Err(format!("unknown mode {mode:?}"));
                }
                if p.running.swap(true, Ordering::SeqCst) {
                    return Err("a flood is running".into());
                }
                for c in [&p.sent, &p.dropped, &p.failed, &p.elapsed_ms] {
                    c.store(0, Ordering::Relaxed);
                }
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    for i in 0..n {
                        let r = match mode.as_str() {
                            "raw" => to
                                .cast(SinkMsg::Item(i))
                                .map_err(|e| SendError::Unreachable(e.to_string())),
                            "try" => remote.try_cast(&to, SinkMsg::Item(i)),
                            _ => {
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
            })),
            _ => None,
        }
    }
}
