//! The distributed supervisor's errors.

/// Errors of the distributed supervisor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistSupervisorError {
    /// No live member knows this kind.
    #[error("no live node can run kind {0:?}")]
    NoEligibleNode(String),
    /// This node does not see a majority of the configured members.
    #[error("quorum not met")]
    QuorumNotMet,
    /// The child did not start (or stop) in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// No child has this id.
    #[error("no child {0:?}")]
    NotFound(String),
    /// The supervisor's actor did not answer.
    #[error("supervisor unavailable: {0}")]
    Unavailable(String),
    /// The outbound queue to the child's node stayed full (see [`crate::remote`]).
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// Fewer members are eligible than the supervisor's `min_members`: nothing starts.
    #[error(
        "{have} eligible members, fewer than the {need} this supervisor needs to start children"
    )]
    TooFewMembers {
        /// Eligible members now (this node included).
        have: usize,
        /// The configured minimum.
        need: usize,
    },
    /// The message reached the entity, which stopped (its handler failed, or its node went
    /// down) before answering. The call was not sent again.
    #[error("child {id:?} exited while handling the call: {reason}")]
    ExitedWhileHandling {
        /// The child.
        id: String,
        /// The handler's error, or what happened to the child.
        reason: String,
    },
    /// The child is placed but could not be reached within the timeout (it is starting or
    /// moving, or its node is unreachable). Nothing was delivered.
    #[error("child {id:?} unreachable: {reason}")]
    Unreachable {
        /// The child.
        id: String,
        /// Why.
        reason: String,
    },
    /// The id belongs to a child of another kind than the typed reference's.
    #[error("child {id:?} is of kind {kind:?}, not {expected:?}")]
    WrongKind {
        /// The child.
        id: String,
        /// Its kind.
        kind: String,
        /// The kind of the reference.
        expected: String,
    },
    /// An entity's arguments cannot be encoded.
    #[error("child {id:?}: cannot encode its arguments: {reason}")]
    BadArgs {
        /// The child.
        id: String,
        /// The codec's error.
        reason: String,
    },
    /// The child failed for good (over its restart intensity, or its kind could not start it).
    #[error("child {id:?} failed on {node}: {reason}")]
    Failed {
        /// The child.
        id: String,
        /// Where it failed.
        node: String,
        /// Its last error.
        reason: String,
    },
}

impl From<actor_cluster_proto::supervisor::SupRefusal> for DistSupervisorError {
    /// The core's refusal of a request, as the supervisor's error.
    fn from(r: actor_cluster_proto::supervisor::SupRefusal) -> Self {
        use actor_cluster_proto::supervisor::SupRefusal;
        match r {
            SupRefusal::NoEligibleNode(k) => Self::NoEligibleNode(k),
            SupRefusal::QuorumNotMet => Self::QuorumNotMet,
            SupRefusal::NotFound(id) => Self::NotFound(id),
            SupRefusal::TooFewMembers { have, need } => Self::TooFewMembers { have, need },
        }
    }
}
