//! Building blocks for services replicated on every node (membership, registry, distributed
//! supervisor, and services of other crates such as the flag cache): a remote-facing endpoint
//! actor, the lookup of its peers, and the forwarding of membership events.

use std::marker::PhantomData;

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

/// Sends `wrap(msg)` to the endpoint of `group` on node `node`; to every remote endpoint of the
/// group while none is known to be on that node (its session not bound yet): for replication
/// messages a copy to the others is harmless.
pub fn send_to_node<W: Message, P: Clone>(
    remote: &Remote,
    group: &str,
    node: &str,
    msg: P,
    wrap: fn(P) -> W,
) {
    let all = remote_members::<W>(group);
    let on_node: Vec<&ActorRef<W>> = all
        .iter()
        .filter(|ep| remote.node_of(*ep).as_deref() == Some(node))
        .collect();
    let to = if on_node.is_empty() {
        all.iter().collect()
    } else {
        on_node
    };
    for ep in to {
        let _ = ep.cast(wrap(msg.clone()));
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
