//! Messages to children by id: casts and calls that find the child wherever it runs.

use std::time::{Duration, Instant};

use ractor::{Message, RpcReplyPort};

use super::{ChildStatus, DistSupervisorError, DistributedSupervisor};

impl DistributedSupervisor {
    /// When a child is not reachable: whether waiting can help. An id the replicated table does
    /// not hold (or holds as terminated) is [`DistSupervisorError::NotFound`] at once, a failed
    /// child [`DistSupervisorError::Failed`]; a live one may be starting or moving.
    async fn reachable_later(&self, id: &str) -> Result<(), DistSupervisorError> {
        match self.status(id).await?.map(|(s, _)| s) {
            None | Some(ChildStatus::Removed) => Err(DistSupervisorError::NotFound(id.to_owned())),
            Some(ChildStatus::Failed { node, reason }) => Err(DistSupervisorError::Failed {
                id: id.to_owned(),
                node,
                reason,
            }),
            Some(ChildStatus::Live) => Ok(()),
        }
    }

    /// Sends a cast to a child by id, retrying (every millisecond, up to `timeout`) while it is
    /// not reachable, e.g. while it moves. An unknown id is [`DistSupervisorError::NotFound`]
    /// and a failed child [`DistSupervisorError::Failed`], at once. A remote child is sent to through
    /// [`crate::Remote::cast`]: while the outbound queue to its node is full this waits for
    /// room (backpressure), and fails with [`DistSupervisorError::Overloaded`] if none came
    /// within `timeout`.
    pub async fn cast_child<M: Message>(
        &self,
        id: &str,
        timeout: Duration,
        mut msg: impl FnMut() -> M,
    ) -> Result<(), DistSupervisorError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.inner.registry.lookup_typed::<M>(id) {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.inner.remote.cast(&r, msg(), left).await {
                    Ok(()) => return Ok(()),
                    Err(e @ crate::remote::SendError::Overloaded { .. }) => {
                        return Err(DistSupervisorError::Overloaded(format!(
                            "child {id:?}: {e}"
                        )))
                    }
                    Err(_) => {}
                }
            }
            self.reachable_later(id).await?;
            if Instant::now() >= deadline {
                return Err(DistSupervisorError::Timeout(format!(
                    "child {id:?} unreachable"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Calls a child by id, retrying (up to `timeout`) only while it is not reachable: a call
    /// that reached the child is never sent again (at most once), and a child that stopped
    /// before answering is [`DistSupervisorError::ExitedWhileHandling`]. An unknown id is
    /// [`DistSupervisorError::NotFound`] and a failed child [`DistSupervisorError::Failed`], at
    /// once. Typed entities ([`super::EntityRef::call`]) also carry the handler's error.
    /// A call that finds the outbound queue to the child's node full fails at once with
    /// [`DistSupervisorError::Overloaded`] (see [`crate::Remote::call`]).
    pub async fn call_child<M: Message, R: Send + 'static>(
        &self,
        id: &str,
        timeout: Duration,
        mut msg: impl FnMut(RpcReplyPort<R>) -> M,
    ) -> Result<R, DistSupervisorError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.inner.registry.lookup_typed::<M>(id) {
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1));
                match self.inner.remote.call(&r, &mut msg, left).await {
                    Ok(v) => return Ok(v),
                    Err(e @ crate::remote::SendError::Overloaded { .. }) => {
                        return Err(DistSupervisorError::Overloaded(format!(
                            "child {id:?}: {e}"
                        )))
                    }
                    Err(crate::remote::SendError::NoReply(reason)) => {
                        return Err(DistSupervisorError::ExitedWhileHandling {
                            id: id.to_owned(),
                            reason,
                        })
                    }
                    Err(crate::remote::SendError::Timeout(t)) => {
                        return Err(DistSupervisorError::Timeout(format!(
                            "child {id:?} did not answer within {t:?}"
                        )))
                    }
                    // Not sent: the actor was gone before the call reached it.
                    Err(crate::remote::SendError::Unreachable(_)) => {}
                }
            }
            self.reachable_later(id).await?;
            if Instant::now() >= deadline {
                return Err(DistSupervisorError::Timeout(format!(
                    "child {id:?} did not answer"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}
