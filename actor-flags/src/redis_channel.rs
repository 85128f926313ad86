//! Cache busting over FWF's Redis channel, for deployments without our cluster, or shared with
//! fun_with_flags nodes.
//!
//! Every write of this node publishes `<unique_id>:<flag>` on `fun_with_flags_changes`, as FWF
//! does; on a notice from another sender, this node re-reads that flag from the store (the
//! notice carries no state). FWF nodes that share the Redis store bust their caches on our
//! notices, and we on theirs.

use futures::StreamExt;

use crate::store::{RedisStore, REDIS_CHANNEL};
use crate::{FlagError, Flags};

/// Subscribed to FWF's change channel; stops when dropped.
#[derive(Debug)]
#[must_use = "the subscription stops when this is dropped"]
pub struct RedisChannel {
    task: tokio::task::JoinHandle<()>,
    unique_id: String,
}

impl RedisChannel {
    /// Subscribes `flags` to the channel on `url`, and publishes this node's writes through
    /// `store` under `unique_id` (unique per node).
    pub async fn start(
        url: &str,
        store: RedisStore,
        flags: Flags,
        unique_id: &str,
    ) -> Result<Self, FlagError> {
        let err = |e: redis::RedisError| FlagError::Store(e.to_string());
        let client = redis::Client::open(url).map_err(err)?;
        let mut pubsub = client.get_async_pubsub().await.map_err(err)?;
        pubsub.subscribe(REDIS_CHANNEL).await.map_err(err)?;
        let me = unique_id.to_owned();
        {
            let me = me.clone();
            flags.on_change(move |flag, _version| {
                let store = store.clone();
                let me = me.clone();
                let name = flag.name.clone();
                tokio::spawn(async move {
                    if let Err(e) = store.notify(&me, &name).await {
                        tracing::warn!(flag = %name, error = %e, "cannot publish a change notice");
                    }
                });
            });
        }
        let own = me.clone();
        let task = tokio::spawn(async move {
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                let Some((sender, flag)) = payload.split_once(':') else {
                    tracing::warn!(%payload, "malformed change notice ignored");
                    continue;
                };
                if sender == own {
                    continue;
                }
                if let Err(e) = flags.refresh(flag).await {
                    tracing::warn!(%flag, error = %e, "cannot re-read a flag after a change notice");
                }
            }
        });
        Ok(Self {
            task,
            unique_id: me,
        })
    }

    /// This node's id in notices.
    pub fn unique_id(&self) -> &str {
        &self.unique_id
    }
}

impl Drop for RedisChannel {
    fn drop(&mut self) {
        self.task.abort();
    }
}
