//! Writes: to the store first (recorded in the history), then to the cache and the listeners.

use std::sync::Arc;

use crate::gate::{validate_name, Gate, GateKey};
use crate::observe::ChangeOrigin;
use crate::store::{Change, HistoryEntry};
use crate::{now_version, FlagError, Flags, MAX_HISTORY};

impl Flags {
    /// This cache, with its writes recorded in the history as made by `label` (an admin
    /// user, a service, a deploy script).
    pub fn by(&self, label: &str) -> Flags {
        Flags {
            inner: self.inner.clone(),
            author: Arc::from(label),
        }
    }

    /// Who this handle's writes are recorded as.
    pub fn author(&self) -> &str {
        &self.author
    }

    /// The newest `limit` (at most [`MAX_HISTORY`]) recorded writes of `name`, newest first.
    pub async fn history(&self, name: &str, limit: usize) -> Result<Vec<HistoryEntry>, FlagError> {
        validate_name(name)?;
        self.inner.store.history(name, limit.min(MAX_HISTORY)).await
    }

    async fn after_write(&self, name: &str) -> Result<(), FlagError> {
        let flag = self.read_stored(name).await?;
        let version = self.next_version();
        if self.slot(name).install(flag.clone(), version) {
            self.installed(name.to_owned(), version, ChangeOrigin::Local);
        }
        for l in self.inner.listeners.lock().iter() {
            l(&flag, version);
        }
        Ok(())
    }

    /// Who and when, for a write made now.
    fn change(&self) -> Change<'_> {
        Change {
            by: &self.author,
            at_ms: i64::try_from(now_version() / 1_000_000).unwrap_or(i64::MAX),
        }
    }

    async fn put(&self, name: &str, gate: Gate) -> Result<(), FlagError> {
        validate_name(name)?;
        gate.validate()?;
        self.inner.store.put(name, &gate, &self.change()).await?;
        self.after_write(name).await
    }

    /// Turns the boolean gate on.
    pub async fn enable(&self, name: &str) -> Result<(), FlagError> {
        self.put(name, Gate::Boolean(true)).await
    }

    /// Turns the boolean gate off.
    pub async fn disable(&self, name: &str) -> Result<(), FlagError> {
        self.put(name, Gate::Boolean(false)).await
    }

    /// Sets an actor gate.
    pub async fn set_for_actor(
        &self,
        name: &str,
        actor_id: &str,
        enabled: bool,
    ) -> Result<(), FlagError> {
        self.put(
            name,
            Gate::Actor {
                id: actor_id.to_owned(),
                enabled,
            },
        )
        .await
    }

    /// Sets a group gate.
    pub async fn set_for_group(
        &self,
        name: &str,
        group: &str,
        enabled: bool,
    ) -> Result<(), FlagError> {
        self.put(
            name,
            Gate::Group {
                name: group.to_owned(),
                enabled,
            },
        )
        .await
    }

    /// Enables for a share of checks (`0 < ratio < 1`); `disable_…` stores `1 - ratio`.
    pub async fn enable_percentage_of_time(&self, name: &str, ratio: f64) -> Result<(), FlagError> {
        self.put(name, Gate::PercentageOfTime(ratio)).await
    }

    /// Disables for a share of checks: stores `1 - ratio`, as FWF does.
    pub async fn disable_percentage_of_time(
        &self,
        name: &str,
        ratio: f64,
    ) -> Result<(), FlagError> {
        Gate::PercentageOfTime(ratio).validate()?;
        self.put(name, Gate::PercentageOfTime(1.0 - ratio)).await
    }

    /// Enables for a share of actors (`0 < ratio < 1`).
    pub async fn enable_percentage_of_actors(
        &self,
        name: &str,
        ratio: f64,
    ) -> Result<(), FlagError> {
        self.put(name, Gate::PercentageOfActors(ratio)).await
    }

    /// Disables for a share of actors: stores `1 - ratio`, as FWF does.
    pub async fn disable_percentage_of_actors(
        &self,
        name: &str,
        ratio: f64,
    ) -> Result<(), FlagError> {
        Gate::PercentageOfActors(ratio).validate()?;
        self.put(name, Gate::PercentageOfActors(1.0 - ratio)).await
    }

    /// Removes one gate.
    pub async fn clear_gate(&self, name: &str, key: &GateKey) -> Result<(), FlagError> {
        validate_name(name)?;
        self.inner
            .store
            .delete_gate(name, key, &self.change())
            .await?;
        self.after_write(name).await
    }

    /// Removes the whole flag.
    pub async fn clear(&self, name: &str) -> Result<(), FlagError> {
        validate_name(name)?;
        self.inner.store.delete_flag(name, &self.change()).await?;
        self.after_write(name).await
    }
}
