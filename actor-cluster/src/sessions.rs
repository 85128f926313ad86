//! The node's session table: ractor_cluster's node ids to the connection that carries their
//! session. It belongs to the node's transport (one per [`crate::Node`]), which binds a
//! session when ractor authenticates it and unbinds it when it ends; [`crate::Remote`] reads
//! it to find a peer's [`crate::outbound`] accounting.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::mux::Lane;
use crate::outbound::OutboundStats;

/// The node's sessions by ractor_cluster node id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_node: RwLock<HashMap<u64, Arc<Lane>>>,
}

impl Sessions {
    pub(crate) fn bind(&self, node_id: u64, lane: Arc<Lane>) {
        self.by_node.write().insert(node_id, lane);
    }

    pub(crate) fn unbind(&self, node_id: u64) {
        self.by_node.write().remove(&node_id);
    }

    /// The connection carrying the session with `node_id`.
    pub(crate) fn get(&self, node_id: u64) -> Option<Arc<Lane>> {
        self.by_node.read().get(&node_id).cloned()
    }

    /// Whether the session with `node_id` is still up.
    pub(crate) fn contains(&self, node_id: u64) -> bool {
        self.by_node.read().contains_key(&node_id)
    }

    /// The name of the peer whose session is `node_id`.
    pub(crate) fn peer_of(&self, node_id: u64) -> Option<String> {
        self.by_node
            .read()
            .get(&node_id)
            .map(|l| l.outbound().peer().to_owned())
    }

    /// Whether the session `node_id` is with the peer named `name`.
    pub(crate) fn is_peer(&self, node_id: u64, name: &str) -> bool {
        self.by_node
            .read()
            .get(&node_id)
            .is_some_and(|l| l.outbound().peer() == name)
    }

    /// Every session's outbound queue, by peer name.
    pub(crate) fn stats(&self) -> Vec<OutboundStats> {
        let mut v: Vec<OutboundStats> = self
            .by_node
            .read()
            .values()
            .map(|l| l.outbound().stats())
            .collect();
        v.sort_by(|a, b| a.peer.cmp(&b.peer));
        v
    }
}
