//! Typed remote refs.
//!
//! ractor_cluster makes a remote actor known only through pg groups, and converting such a
//! member to a typed `ActorRef<M>` is unchecked: if the actor's real message type differs, every
//! message is silently dropped on the far side. Here an actor is registered under a group *and*
//! its message type (the group's pg scope carries `std::any::type_name::<M>()`), so a lookup for
//! another type finds nothing instead of a ref that silently drops everything. Local members are
//! checked with ractor's own type check as well.
//!
//! The type name is what the compiler prints for the path of the type: nodes must run builds in
//! which the message type has the same path (the same crate and module), which is the case for
//! one application deployed on every node. Use [`register_as`] / [`lookup_as`] to name a
//! protocol explicitly instead.
//!
//! # Bounded sends
//!
//! ractor_cluster queues remote messages without bound: a sender faster than the link fills
//! memory (1 M queued casts took a node to 315 MB). The node's [`Remote`] handle
//! ([`crate::Node::remote`]) bounds what waits to be written to each peer to the node's
//! `max_outbound` messages ([`crate::NodeBuilder::max_outbound`], 16,384 by default):
//! * [`Remote::try_cast`] drops a message that finds the queue full and says so
//!   ([`SendError::Overloaded`]); drops are counted per peer ([`Remote::outbound`]) and in the
//!   metric `cluster_casts_dropped_total`;
//! * [`Remote::cast`] waits for room instead (backpressure), up to a deadline;
//! * [`Remote::call`] is refused at once with [`SendError::Overloaded`] rather than waiting for its
//!   timeout behind a queue it cannot pass, and every failure is an error, never a hang.
//!
//! Heartbeats do not wait in that queue at all (see the runtime-semantics chapter), so a
//! flooded node is not declared down. Sends to local actors are never bounded.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};

use crate::mux::Lane;
use crate::outbound::Outbound;
pub use crate::outbound::OutboundStats;
use crate::sessions::Sessions;

/// Why a bounded send did not go out (or a call got no answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The outbound queue to the actor's node is full: the message was not sent.
    #[error("outbound queue to {peer} is full ({queued} messages waiting): message not sent")]
    Overloaded {
        /// The peer node.
        peer: String,
        /// Messages waiting to be written to it.
        queued: u64,
    },
    /// The actor is gone or its node is not connected.
    #[error("actor unreachable: {0}")]
    Unreachable(String),
    /// A call reached the actor, which stopped (or dropped the reply) before answering.
    #[error("no reply: {0}")]
    NoReply(String),
    /// A call got no reply in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
}

/// Bounded sends through one node's sessions, from [`crate::Node::remote`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Remote {
    sessions: Arc<Sessions>,
}

fn send<M: Message>(to: &ActorRef<M>, msg: M) -> Result<(), SendError> {
    to.cast(msg)
        .map_err(|e| SendError::Unreachable(format!("actor {}: {e}", to.get_id())))
}

fn refused(out: &Outbound, queued: u64) -> SendError {
    out.refuse();
    SendError::Overloaded {
        peer: out.peer().to_owned(),
        queued,
    }
}

impl Remote {
    pub(crate) fn new(sessions: Arc<Sessions>) -> Self {
        Self { sessions }
    }

    /// The connection to `to`'s node: `None` for a local actor.
    fn lane_of<M: Message>(&self, to: &ActorRef<M>) -> Result<Option<Arc<Lane>>, SendError> {
        let id = to.get_id();
        if id.is_local() {
            return Ok(None);
        }
        self.sessions.get(id.node()).map(Some).ok_or_else(|| {
            SendError::Unreachable(format!("no session with the node of actor {id}"))
        })
    }

    /// Sends `msg` unless the outbound queue to `to`'s node is full; then the message is
    /// dropped, counted, and [`SendError::Overloaded`] returned.
    pub fn try_cast<M: Message>(&self, to: &ActorRef<M>, msg: M) -> Result<(), SendError> {
        self.admit(to)?;
        send(to, msg)
    }

    /// Sends `msg`, waiting while the outbound queue to `to`'s node is full (backpressure).
    /// After `wait` without room the message is dropped and counted, and
    /// [`SendError::Overloaded`] returned; a connection that closes meanwhile is
    /// [`SendError::Unreachable`].
    pub async fn cast<M: Message>(
        &self,
        to: &ActorRef<M>,
        msg: M,
        wait: Duration,
    ) -> Result<(), SendError> {
        self.reserve(to, wait).await?;
        send(to, msg)
    }

    /// Takes a place for one message in the outbound queue to `to`'s node, waiting up to
    /// `wait` for room (nothing to take for a local actor). The caller sends right after.
    pub(crate) async fn reserve<M: Message>(
        &self,
        to: &ActorRef<M>,
        wait: Duration,
    ) -> Result<(), SendError> {
        let Some(lane) = self.lane_of(to)? else {
            return Ok(());
        };
        let out = lane.outbound();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let drained = out.drained();
            tokio::pin!(drained);
            drained.as_mut().enable();
            match out.admit() {
                Ok(()) => return Ok(()),
                Err(q) => {
                    if out.is_closed() || !self.sessions.contains(to.get_id().node()) {
                        return Err(SendError::Unreachable(format!(
                            "the connection to {} closed",
                            out.peer()
                        )));
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(refused(out, q));
                    }
                    // Woken when frames reach the socket or the connection ends.
                    let _ = tokio::time::timeout_at(deadline, drained).await;
                }
            }
        }
    }

    /// Takes a place for one message to `to`'s node without waiting: [`SendError::Overloaded`]
    /// (counted) when its queue is full.
    pub(crate) fn admit<M: Message>(&self, to: &ActorRef<M>) -> Result<(), SendError> {
        if let Some(lane) = self.lane_of(to)? {
            let out = lane.outbound();
            out.admit().map_err(|q| refused(out, q))?;
        }
        Ok(())
    }

    /// Calls `to` and waits up to `timeout` for the reply. Refused at once with
    /// [`SendError::Overloaded`] when the outbound queue to its node is full; a stopped actor
    /// or a lost connection is [`SendError::Unreachable`], no reply in time
    /// [`SendError::Timeout`].
    pub async fn call<M: Message, R, F>(
        &self,
        to: &ActorRef<M>,
        msg: F,
        timeout: Duration,
    ) -> Result<R, SendError>
    where
        F: FnOnce(RpcReplyPort<R>) -> M,
        R: Send + 'static,
    {
        self.admit(to)?;
        match to.call(msg, Some(timeout)).await {
            Ok(CallResult::Success(r)) => Ok(r),
            Ok(CallResult::Timeout) => Err(SendError::Timeout(timeout)),
            Ok(CallResult::SenderError) => Err(SendError::NoReply(format!(
                "actor {} stopped or dropped the reply after the call reached it",
                to.get_id()
            ))),
            Err(e) => Err(SendError::Unreachable(format!(
                "actor {}: {e}",
                to.get_id()
            ))),
        }
    }

    /// The name of the node `to` lives on: `None` for a local actor or a node not connected.
    pub fn node_of<M: Message>(&self, to: &ActorRef<M>) -> Option<String> {
        let id = to.get_id();
        if id.is_local() {
            return None;
        }
        self.sessions.peer_of(id.node())
    }

    /// Whether `to` lives on the connected node named `node`.
    pub(crate) fn is_on<M: Message>(&self, to: &ActorRef<M>, node: &str) -> bool {
        let id = to.get_id();
        !id.is_local() && self.sessions.is_peer(id.node(), node)
    }

    /// The outbound queues of this node's sessions, by peer name.
    pub fn outbound(&self) -> Vec<OutboundStats> {
        self.sessions.stats()
    }
}

fn scope_of(protocol: &str) -> String {
    format!("actor_cluster.typed:{protocol}")
}

/// Registers `actor` under `group` for message type `M`, visible from every connected node.
pub fn register<M: Message>(group: &str, actor: &ActorRef<M>) {
    register_as(std::any::type_name::<M>(), group, actor);
}

/// Registers `actor` under `group` for an explicitly named protocol.
pub fn register_as<M: Message>(protocol: &str, group: &str, actor: &ActorRef<M>) {
    ractor::pg::join_scoped(scope_of(protocol), group.to_owned(), vec![actor.get_cell()]);
}

/// Every actor registered under `group` for message type `M`, on any connected node (local
/// ones first).
pub fn lookup<M: Message>(group: &str) -> Vec<ActorRef<M>> {
    lookup_as(std::any::type_name::<M>(), group)
}

/// Like [`lookup`], for an explicitly named protocol.
pub fn lookup_as<M: Message>(protocol: &str, group: &str) -> Vec<ActorRef<M>> {
    let mut members = ractor::pg::get_scoped_members(&scope_of(protocol), &group.to_owned());
    members.sort_by_key(|c| !c.get_id().is_local());
    members
        .into_iter()
        .filter(|c| c.is_message_type_of::<M>() != Some(false))
        .map(ActorRef::from)
        .collect()
}

/// The actors registered under `group` for `M` on other nodes.
pub fn lookup_remote<M: Message>(group: &str) -> Vec<ActorRef<M>> {
    lookup::<M>(group)
        .into_iter()
        .filter(|r| !r.get_id().is_local())
        .collect()
}

/// Waits (at most `timeout`) until an actor is registered under `group` for `M` on another
/// node, and returns it. Woken by the process-group changes of the group's scope, not by
/// polling.
pub async fn wait_remote<M: Message>(group: &str, timeout: Duration) -> Option<ActorRef<M>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let scope = scope_of(std::any::type_name::<M>());
    let changed = Arc::new(tokio::sync::Notify::new());
    // Without a watcher (the actor system is shutting down), look once.
    let watcher = ractor::Actor::spawn(None, PgWatch, changed.clone())
        .await
        .ok()
        .map(|(w, _)| w);
    if let Some(w) = &watcher {
        ractor::pg::monitor_scope(scope.clone(), w.get_cell());
    }
    let found = loop {
        // Registered before the wait began, or between the watch and this look.
        let notified = changed.notified();
        if let Some(r) = lookup_remote::<M>(group).into_iter().next() {
            break Some(r);
        }
        if watcher.is_none() || tokio::time::timeout_at(deadline, notified).await.is_err() {
            break None;
        }
    };
    if let Some(w) = watcher {
        ractor::pg::demonitor_scope(scope, w.get_id());
        w.stop(None);
    }
    found
}

/// Wakes [`wait_remote`] on every change of a process-group scope.
struct PgWatch;

#[derive(actor_core::LocalMessage)]
enum PgWatchMsg {}

impl ractor::Actor for PgWatch {
    type Msg = PgWatchMsg;
    type State = Arc<tokio::sync::Notify>;
    type Arguments = Arc<tokio::sync::Notify>;

    async fn pre_start(
        &self,
        _: ActorRef<PgWatchMsg>,
        n: Arc<tokio::sync::Notify>,
    ) -> Result<Arc<tokio::sync::Notify>, ractor::ActorProcessingErr> {
        Ok(n)
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<PgWatchMsg>,
        evt: ractor::SupervisionEvent,
        n: &mut Arc<tokio::sync::Notify>,
    ) -> Result<(), ractor::ActorProcessingErr> {
        if let ractor::SupervisionEvent::ProcessGroupChanged(_) = evt {
            n.notify_one();
        }
        Ok(())
    }
}
