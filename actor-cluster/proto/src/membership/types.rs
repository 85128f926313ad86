//! The membership machine's vocabulary: states, events, probe frames, actions, timings.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::identity::NodeIdentity;

/// A member's state as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberState {
    /// Connected, and heartbeats arrive.
    Up,
    /// Connected, but no heartbeat for longer than `suspect_after`.
    Suspect,
    /// Unreachable: its connection closed or its heartbeats stopped. Reconnection is attempted.
    Down,
    /// Left the cluster gracefully; not reconnected to (unless it connects again).
    Left,
}

/// Why a member was declared down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownReason {
    /// Its last session closed (a crashed process, a reset connection).
    ConnectionClosed,
    /// No heartbeat within `down_after` (a frozen process, a partition).
    HeartbeatTimeout,
    /// It came back with a newer incarnation (it restarted); the old incarnation is down.
    Restarted,
}

/// What subscribers are told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberEvent {
    /// A member is reachable (a new node, or one that came back).
    MemberUp(NodeIdentity),
    /// A member became unreachable.
    MemberDown {
        /// The member.
        node: NodeIdentity,
        /// Why.
        reason: DownReason,
    },
    /// A member left gracefully.
    MemberLeft(NodeIdentity),
}

/// A membership frame between two connected nodes (on the control lane).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Probe {
    /// "Are you alive?", with the digest of the sender's member set.
    Ping {
        /// Echoed in the ack.
        seq: u64,
        /// The sender's [`Membership::digest`].
        members: u64,
    },
    /// The answer to a ping.
    Ack {
        /// The ping's.
        seq: u64,
        /// The sender's [`Membership::digest`].
        members: u64,
    },
    /// The sender's ping of this member went unanswered: probe it yourself.
    Suspect(NodeIdentity),
    /// The sender's member set (itself included), sent when digests differ.
    Members(Vec<NodeIdentity>),
}

/// Member lists are sent to one peer at most this often.
pub const MEMBERS_EVERY: Duration = Duration::from_millis(500);

/// How many times a ping's down deadline is pushed back (by `down_after`) when it falls while
/// the member set is changing (a cluster forming, a burst of joins): machines are busy then and
/// answers late, and a down would start a reconnect storm. A frozen member is then seen down
/// after at most `(1 + CHURN_EXTENSIONS) * down_after`; in a stable cluster after `down_after`.
pub const CHURN_EXTENSIONS: u8 = 2;

/// A node sends its member list only once its own member set has not changed for this long:
/// while members come and go, lists would be stale on arrival, and many nodes joining at once
/// would flood each other with them.
pub const MEMBERS_STABLE: Duration = Duration::from_millis(200);

/// What the membership actor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue this frame for that peer.
    Send {
        /// The peer's name.
        to: String,
        /// The frame.
        probe: Probe,
    },
    /// Queue this frame for every member with a session.
    Broadcast(Probe),
    /// Open a connection to this address (the peer's name, if known).
    Dial {
        /// Where.
        addr: SocketAddr,
        /// The name expected there, if known.
        name: Option<String>,
    },
    /// Close every session and connection to this peer.
    Close(String),
    /// Tell subscribers.
    Emit(MemberEvent),
    /// Dials to this address keep failing: tell the operator (a wrong address, nothing
    /// listening, another cookie). Said after [`DIAL_WARN_AFTER`] failures in a row, then every
    /// [`DIAL_WARN_EVERY`].
    Unreachable {
        /// The address.
        addr: SocketAddr,
        /// The name expected there, if known.
        name: Option<String>,
        /// Failed dials in a row.
        failures: u32,
    },
}

/// Failed dials in a row to one address before [`Action::Unreachable`].
pub const DIAL_WARN_AFTER: u32 = 5;

/// After the first [`Action::Unreachable`], how many more failures before the next.
pub const DIAL_WARN_EVERY: u32 = 50;

/// Failure-detection and reconnection timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How often this node pings one member (and checks its pings' deadlines).
    pub heartbeat_interval: Duration,
    /// A ping unanswered this long: the member is suspect, and every member is asked to probe it.
    pub suspect_after: Duration,
    /// A ping unanswered this long: the member is down and its sessions are closed.
    pub down_after: Duration,
    /// First delay before redialing an address that failed.
    pub reconnect_initial: Duration,
    /// Longest delay between redials.
    pub reconnect_max: Duration,
    /// How long a dial (TCP connect and the identity exchange) may take.
    pub dial_timeout: Duration,
    /// How often discovery is polled.
    pub discovery_interval: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(100),
            suspect_after: Duration::from_millis(300),
            down_after: Duration::from_millis(900),
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_millis(1000),
            dial_timeout: Duration::from_millis(1000),
            discovery_interval: Duration::from_secs(5),
        }
    }
}

/// A member as listed by [`Membership::members`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The member.
    pub node: NodeIdentity,
    /// Its state.
    pub state: MemberState,
}
