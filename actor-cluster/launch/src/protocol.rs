//! The control protocol between a launcher and its node processes: JSON lines, requests on
//! the node's stdin, replies and membership events on its stdout.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use actor_cluster::{MemberEvent, Node, NodeIdentity};

use crate::unix_ns;

/// A request from the parent to a node process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Correlates the reply.
    pub id: u64,
    /// What to do.
    pub cmd: Control,
}

/// Commands of the control protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Control {
    /// Reply with the member list.
    Members,
    /// Block traffic with these peers.
    Block {
        /// Peer node names.
        peers: Vec<String>,
    },
    /// Unblock these peers.
    Unblock {
        /// Peer node names.
        peers: Vec<String>,
    },
    /// Unblock every peer.
    UnblockAll,
    /// Fault injection: what this node receives from these peers is delayed by `delay_ms`
    /// plus up to `jitter_ms`, and `loss` of their probe frames is dropped (all zero: normal).
    SlowLink {
        /// Peer node names.
        peers: Vec<String>,
        /// Delay, ms.
        delay_ms: u64,
        /// Jitter, ms.
        jitter_ms: u64,
        /// Share of probe frames lost, 0 to 1.
        loss: f64,
    },
    /// Fault injection: this process's wall clock runs `ms` ahead (negative: behind).
    SkewClock {
        /// The skew, ms.
        ms: i64,
    },
    /// Reply with this node's [`ClockReport`].
    Clock,
    /// Leave the cluster gracefully, then exit.
    Leave,
    /// A command of the node binary's own [`ControlExtension`]: its `Command` type, encoded.
    Custom {
        /// The command.
        command: Value,
    },
}

/// A node's clock: the injected skew, the correction the cluster applied, and its estimates
/// of its peers' offsets (ns; positive: the peer's clock is ahead).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClockReport {
    /// The injected skew, ns.
    pub skew_ns: i64,
    /// The correction in force, ns.
    pub correction_ns: i64,
    /// Each peer's estimated offset, ns.
    pub offsets: Vec<(String, i64)>,
}

/// What a node process writes on its stdout, one JSON object per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// The node has started.
    Ready {
        /// Its identity.
        identity: NodeIdentity,
    },
    /// A membership event, with the wall-clock time it was seen (members already up when the
    /// protocol starts are reported as `MemberUp` at that time).
    Event {
        /// Nanoseconds since the Unix epoch.
        at_unix_ns: u64,
        /// The event.
        event: MemberEvent,
    },
    /// The answer to a request.
    Reply {
        /// The request's id.
        id: u64,
        /// The result value.
        ok: Option<Value>,
        /// The error text.
        err: Option<String>,
    },
}

/// Commands a node binary adds to the control protocol, as a serde type of its own (an enum,
/// usually) that the parent sends with [`crate::NodeProcess::command`].
pub trait ControlExtension: Send + Sync + 'static {
    /// The commands.
    type Command: DeserializeOwned + Send + 'static;

    /// Carries out one command; the value is the reply.
    fn handle(&self, node: &Node, cmd: Self::Command) -> BoxFuture<'static, Result<Value, String>>;
}

/// A node binary without commands of its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCommands;

/// The command type of [`NoCommands`]: it has no values.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum Never {}

impl ControlExtension for NoCommands {
    type Command = Never;

    fn handle(&self, _: &Node, cmd: Never) -> BoxFuture<'static, Result<Value, String>> {
        match cmd {}
    }
}

/// Node side: serves the control protocol on stdin/stdout until stdin closes or a `leave`
/// command has been carried out.
pub async fn serve<E: ControlExtension>(node: Node, ext: Arc<E>) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Output>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(o) = out_rx.recv().await {
            let Ok(mut line) = serde_json::to_vec(&o) else {
                continue;
            };
            line.push(b'\n');
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
        }
    });
    let mut events = node.subscribe();
    let _ = out_tx.send(Output::Ready {
        identity: node.identity().clone(),
    });
    // Members the node met before this point (it may have joined while the program was still
    // starting) are reported as up now; later events follow (a repeat is harmless).
    for m in node.members().await.unwrap_or_default() {
        if matches!(
            m.state,
            actor_cluster::MemberState::Up | actor_cluster::MemberState::Suspect
        ) {
            let _ = out_tx.send(Output::Event {
                at_unix_ns: unix_ns(),
                event: MemberEvent::MemberUp(m.node),
            });
        }
    }
    let ev_tx = out_tx.clone();
    let forward = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let _ = ev_tx.send(Output::Event {
                        at_unix_ns: unix_ns(),
                        event,
                    });
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "control protocol missed membership events");
                }
                Err(_) => return,
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "bad control request");
                continue;
            }
        };
        if matches!(req.cmd, Control::Leave) {
            let _ = node.clone().leave().await;
            let _ = out_tx.send(Output::Reply {
                id: req.id,
                ok: Some(Value::Null),
                err: None,
            });
            break;
        }
        let node = node.clone();
        let tx = out_tx.clone();
        let ext = ext.clone();
        tokio::spawn(async move {
            let result = handle(&node, &*ext, req.cmd).await;
            let (ok, err) = match result {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e)),
            };
            let _ = tx.send(Output::Reply {
                id: req.id,
                ok,
                err,
            });
        });
    }
    forward.abort();
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

async fn handle<E: ControlExtension>(node: &Node, ext: &E, cmd: Control) -> Result<Value, String> {
    match cmd {
        Control::Members => {
            let m = node.members().await.map_err(|e| e.to_string())?;
            serde_json::to_value(m).map_err(|e| e.to_string())
        }
        Control::Block { peers } => {
            node.faults().block(peers);
            Ok(Value::Null)
        }
        Control::Unblock { peers } => {
            node.faults().unblock(peers);
            Ok(Value::Null)
        }
        Control::UnblockAll => {
            node.faults().unblock_all();
            Ok(Value::Null)
        }
        Control::SlowLink {
            peers,
            delay_ms,
            jitter_ms,
            loss,
        } => {
            if !(0.0..=1.0).contains(&loss) {
                return Err(format!("loss must be between 0 and 1, not {loss}"));
            }
            node.faults().set_link(
                peers,
                actor_cluster::LinkFault {
                    delay: Duration::from_millis(delay_ms),
                    jitter: Duration::from_millis(jitter_ms),
                    loss,
                },
            );
            Ok(Value::Null)
        }
        Control::SkewClock { ms } => {
            actor_core::wallclock::inject_skew(ms.saturating_mul(1_000_000));
            Ok(Value::Null)
        }
        Control::Clock => {
            let (correction_ns, offsets) = node.clock_offsets();
            let r = ClockReport {
                skew_ns: actor_core::wallclock::skew_ns(),
                correction_ns,
                offsets,
            };
            serde_json::to_value(r).map_err(|e| e.to_string())
        }
        Control::Leave => Ok(Value::Null),
        Control::Custom { command } => match serde_json::from_value::<E::Command>(command) {
            Ok(cmd) => ext.handle(node, cmd).await,
            Err(e) => Err(format!("not a command of this node: {e}")),
        },
    }
}
