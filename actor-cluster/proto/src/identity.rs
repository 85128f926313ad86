//! The vocabulary every layer shares: who a node is, and which run of it owns a registration.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Who a node is: its unique name, the incarnation of this run (a restarted node with the same
/// name has a higher incarnation) and the address it accepts cluster connections on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// The node's unique name.
    pub name: String,
    /// The incarnation of this run (start time in nanoseconds since the Unix epoch by default).
    pub incarnation: u64,
    /// The address the node accepts cluster connections on.
    pub addr: SocketAddr,
}

/// Who owns a registration: a node incarnation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    /// The node's name.
    pub node: String,
    /// The node's incarnation.
    pub incarnation: u64,
}

impl From<&NodeIdentity> for Owner {
    fn from(n: &NodeIdentity) -> Self {
        Self {
            node: n.name.clone(),
            incarnation: n.incarnation,
        }
    }
}
