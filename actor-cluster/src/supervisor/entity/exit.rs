//! What a call learns when its entity stops: its answer, or why its incarnation failed (read
//! from the registration of the next one).

use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{DistSupervisorError, Entity, EntityRef, Target, EXIT_GRACE, GONE_GRACE};
use crate::registry::RegistryEvent;

impl<E: Entity> EntityRef<E> {
    /// Why the incarnation `t` failed, from the registration of the next one on its node
    /// (waiting a moment for it).
    pub(super) async fn exit_reason(
        &self,
        events: &mut broadcast::Receiver<RegistryEvent>,
        t: &Target<E>,
        deadline: Instant,
    ) -> Option<String> {
        let read = |meta: &[u8]| {
            meta.strip_prefix(super::super::EXIT_MAGIC)
                .map(|r| String::from_utf8_lossy(r).into_owned())
        };
        if let Some(e) = self.sup.registry().entry(&self.id) {
            if e.owner == t.owner && e.cell.as_ref().map(|c| c.get_id()) != Some(t.actor.get_id()) {
                if let Some(r) = read(&e.meta) {
                    return Some(r);
                }
            }
        }
        // The restart registers the next incarnation after the failure; on a loaded machine
        // that can take a while.
        let grace = deadline.min(Instant::now() + EXIT_GRACE);
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(RegistryEvent::Registered { name, owner, meta })
                        if name == self.id && owner == t.owner =>
                    {
                        return read(&meta)
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        };
        tokio::time::timeout_at(grace, wait).await.ok().flatten()
    }

    /// The answer to a call handed to `t`, or what went wrong.
    pub(super) async fn answer<R>(
        &self,
        rx: ractor::concurrency::OneshotReceiver<R>,
        orx: ractor::concurrency::OneshotReceiver<String>,
        t: &Target<E>,
        events: &mut broadcast::Receiver<RegistryEvent>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<R, DistSupervisorError> {
        let exited = |reason: String| DistSupervisorError::ExitedWhileHandling {
            id: self.id.clone(),
            reason,
        };
        tokio::pin!(rx);
        let gone: String = loop {
            tokio::select! {
                r = &mut rx => match r {
                    Ok(v) => return Ok(v),
                    Err(_) => {
                        let reason = orx.await.unwrap_or_else(|_| "it stopped before answering".to_owned());
                        if reason != crate::supervisor::host::LOST {
                            return Err(exited(reason));
                        }
                        // The answer was lost with the actor's proxy: a local restart's
                        // registration says why it failed.
                        return Err(exited(self.exit_reason(events, t, deadline).await.unwrap_or(reason)));
                    }
                },
                ev = events.recv() => match ev {
                    Ok(RegistryEvent::Unregistered { name, owner }) if name == self.id && owner == t.owner => {
                        break format!("it stopped on {} (or its node went down) while the call was being handled; the call was not sent again", owner.node);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) if self.current().map(|c| c.actor.get_id()) != Some(t.actor.get_id()) => {
                        break "it stopped while the call was being handled; the call was not sent again".to_owned();
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        break "the supervisor stopped".to_owned();
                    }
                    _ => {}
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(DistSupervisorError::Timeout(format!(
                        "entity {:?} did not answer within {timeout:?}", self.id
                    )));
                }
            }
        };
        // Its answer or its handler's error may still be on the way.
        let grace = deadline.min(Instant::now() + GONE_GRACE);
        match tokio::time::timeout_at(grace, &mut rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(exited(
                tokio::time::timeout_at(grace, orx)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(gone),
            )),
            Err(_) => Err(exited(gone)),
        }
    }
}
