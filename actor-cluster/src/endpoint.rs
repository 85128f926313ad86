//! Building blocks for services replicated on every node (membership, registry, distributed
//! supervisor, and services of other crates such as the flag cache): a remote-facing endpoint
//! actor, the lookup of its peers, and the forwarding of membership events.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, Message};
use tokio::sync::broadcast;

use actor_cluster_proto::membership::MemberEvent;

use crate::Remote;

/// pg scope of the cluster's own actors.
pub(crate) const SCOPE: &str = "actor_cluster";

/// An actor whose message type crosses nodes: spawned with `(group, local actor)`, it joins the
/// pg group `group` (in the cluster's scope), so its peers on other nodes find it, and hands everything it receives to a local actor (whose
/// own message type carries local-only variants).
pub struct Endpoint<W, L> {
    wrap: fn(W) -> L,
    _types: PhantomData<fn(W) -> L>,
}

impl<W, L> Endpoint<W, L> {
    /// An endpoint that wraps every message with `wrap` for the local actor.
    pub fn new(wrap: fn(W) -> L) -> Self {
        Self {
            wrap,
            _types: PhantomData,
        }
    }
}

impl<W: Message, L: Message> Actor for Endpoint<W, L> {
    type Msg = W;
    type State = ActorRef<L>;
    type Arguments = (String, ActorRef<L>);

    async fn pre_start(
        &self,
        myself: ActorRef<W>,
        (group, local): (String, ActorRef<L>),
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::join_scoped(SCOPE.into(), group, vec![myself.get_cell()]);
        Ok(local)
    }

    async fn handle(
        &self,
        _: ActorRef<W>,
        msg: W,
        local: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // The local actor stops only with its service; a message to a stopped one is moot.
        let _ = local.cast((self.wrap)(msg));
        Ok(())
    }
}

/// Remote endpoints of a pg group in the cluster's scope (other nodes only).
pub fn remote_members<W: Message>(group: &str) -> Vec<ActorRef<W>> {
    ractor::pg::get_scoped_members(&SCOPE.to_string(), &group.to_owned())
        .into_iter()
        .filter(|c| !c.get_id().is_local())
        .map(ActorRef::from)
        .collect()
}

/// How many messages are held for one node whose endpoint is not bound yet; past it the oldest
/// go (counted): replication repairs what they carried through the summaries.
const HELD_PER_NODE: usize = 4096;
/// How long a message is held: an endpoint that has not appeared by then belongs to a node
/// that does not run the service (or runs it under another name), and the message goes
/// (counted).
const HELD_FOR: Duration = Duration::from_secs(10);

/// Messages to one node's endpoint of a group, held while that endpoint is not bound yet.
///
/// A member is up once our identity exchange and ractor_cluster's handshake are done, but its
/// endpoints become visible only when ractor's group sync for that session arrives, a little
/// later. A message for such a node is held here, in order, and sent when its endpoint
/// appears ([`Outbox::flush`], on the group's pg join event and on the service's tick), or
/// dropped when the node goes ([`Outbox::forget`]) or after [`HELD_FOR`]. (Until 2026-12-08 such a message went to
/// every other endpoint of the group instead: harmless for replication, but while a cluster
/// forms every new member's messages then reached every node, and a 75-node cluster took 18 s
/// and 828 false downs to form.)
#[derive(Debug)]
pub struct Outbox<P> {
    held: HashMap<String, VecDeque<(Instant, P)>>,
}

impl<P> Default for Outbox<P> {
    fn default() -> Self {
        Self {
            held: HashMap::new(),
        }
    }
}

impl<P: Clone> Outbox<P> {
    /// Sends `wrap(msg)` to the endpoint of `group` on node `node`, after what is held for it; holds
    /// it while none is bound. (Every endpoint that maps to `node` gets it: nodes sharing one
    /// process share ractor's pg groups, and one node's session ids can then name another's
    /// proxies too; a copy to the wrong one is harmless for replication, a miss is not.)
    pub fn send<W: Message>(
        &mut self,
        remote: &Remote,
        group: &str,
        node: &str,
        msg: P,
        wrap: fn(P) -> W,
    ) {
        let eps: Vec<ActorRef<W>> = remote_members::<W>(group)
            .into_iter()
            .filter(|ep| remote.is_on(ep, node))
            .collect();
        if eps.is_empty() {
            let q = self.held.entry(node.to_owned()).or_default();
            if q.len() >= HELD_PER_NODE {
                q.pop_front();
                metrics::counter!("cluster_endpoint_held_dropped_total").increment(1);
            }
            q.push_back((Instant::now(), msg));
            return;
        }
        let held = self.held.remove(node).unwrap_or_default();
        for ep in &eps {
            for (_, m) in &held {
                let _ = ep.cast(wrap(m.clone()));
            }
            let _ = ep.cast(wrap(msg.clone()));
        }
    }

    /// Sends what is held to the nodes whose endpoints are bound now; drops what was held for
    /// longer than [`HELD_FOR`].
    pub fn flush<W: Message>(&mut self, remote: &Remote, group: &str, wrap: fn(P) -> W) {
        if self.held.is_empty() {
            return;
        }
        let mut bound: HashMap<String, Vec<ActorRef<W>>> = HashMap::new();
        for ep in remote_members::<W>(group) {
            if let Some(node) = remote.node_of(&ep).filter(|n| self.held.contains_key(n)) {
                bound.entry(node).or_default().push(ep);
            }
        }
        for (node, eps) in bound {
            for (_, m) in self.held.remove(&node).unwrap_or_default() {
                for ep in &eps {
                    let _ = ep.cast(wrap(m.clone()));
                }
            }
        }
        let now = Instant::now();
        self.held.retain(|_, q| {
            let before = q.len();
            q.retain(|(at, _)| now.saturating_duration_since(*at) < HELD_FOR);
            let dropped = before - q.len();
            if dropped > 0 {
                metrics::counter!("cluster_endpoint_held_dropped_total").increment(dropped as u64);
            }
            !q.is_empty()
        });
    }

    /// `node` went down or left: what was held for it goes.
    pub fn forget(&mut self, node: &str) {
        self.held.remove(node);
    }
}

/// Forwards membership events (from `Node::subscribe`) to `to` until it stops.
pub fn forward_member_events<L: Message>(
    mut events: broadcast::Receiver<MemberEvent>,
    to: ActorRef<L>,
    wrap: fn(MemberEvent) -> L,
) {
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => {
                    if to.cast(wrap(e)).is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "membership events were missed");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}
