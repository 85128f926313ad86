//! `actor-flags`: cluster-cached feature flags with fun_with_flags (FWF) semantics.
//!
//! * [`gate`]: boolean, actor, group, %-of-time and %-of-actors gates with FWF's precedence and
//!   FWF's %-of-actors score, so cohorts match a service that already uses FWF.
//! * [`store`]: SQLite (embedded default) and Postgres in FWF's Ecto table, Redis in FWF's
//!   layout: Rust and Elixir services can share one store.
//! * [`Flags`]: the local cache. Every flag lives in a slot whose answer without an actor is
//!   precomputed, and the name index is an immutable map swapped atomically: a check by
//!   [`FlagHandle`] is one atomic load, a check by name one lock-free map lookup more. A node
//!   loads every flag before it serves; writes go to the store first, then to the cache with a
//!   version, and an older version never overwrites a newer one. With the store down, checks go
//!   on from the cache and writes fail.
//!
//! * [`ClusterFlags`]: changes reach every node's cache through the cluster, with their version.
//!
//! * [`admin`]: the HTTP admin API (JSON), behind a token or basic auth.
//!
//! * [`redis_channel`]: FWF's Redis change channel, for deployments without our cluster or
//!   shared with fun_with_flags nodes.

pub mod admin;
pub mod cluster;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod install_log;
pub mod redis_channel;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use actor_core::hlc::{Hlc, Stamp};
use arc_swap::ArcSwap;
use parking_lot::Mutex;

pub use cluster::ClusterFlags;
pub use gate::{actor_score, validate_name, Flag, FlagActor, Gate, GateKey};
pub use install_log::InstallLog;
pub use store::{FlagStore, RedisStore, SqlStore};

/// Errors of feature flags.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlagError {
    /// The flag name does not match `^\w+$`.
    #[error("invalid flag name {0:?}: use letters, digits and underscores")]
    InvalidName(String),
    /// A percentage outside `0 < r < 1`.
    #[error("invalid ratio {0}: it must lie strictly between 0 and 1")]
    InvalidRatio(f64),
    /// An empty actor id or group name.
    #[error("invalid gate target: {0}")]
    InvalidTarget(String),
    /// The store failed (down, unreachable, refused).
    #[error("flag store: {0}")]
    Store(String),
    /// The store holds something that is not a valid gate.
    #[error("corrupt flag data: {0}")]
    Corrupt(String),
}

const FALSE: u8 = 0;
const TRUE: u8 = 1;
const DYNAMIC: u8 = 2;

/// One flag's cache entry. Slots are never removed, so handles stay valid.
#[derive(Debug)]
struct Slot {
    /// The answer without an actor, if fixed: `FALSE`, `TRUE`, or `DYNAMIC` (%-of-time).
    constant: AtomicU8,
    flag: ArcSwap<Flag>,
    version: AtomicU64,
}

impl Slot {
    fn new(name: &str) -> Self {
        Self {
            constant: AtomicU8::new(FALSE),
            flag: ArcSwap::from_pointee(Flag::new(name)),
            version: AtomicU64::new(0),
        }
    }

    /// Installs `flag` if `version` is newer; returns whether it did.
    fn install(&self, flag: Flag, version: u64) -> bool {
        let mut cur = self.version.load(Ordering::Acquire);
        loop {
            if version <= cur && cur != 0 {
                return false;
            }
            match self
                .version
                .compare_exchange(cur, version, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(v) => cur = v,
            }
        }
        metrics::counter!("flags_changes_installed_total").increment(1);
        let c = match flag.constant() {
            Some(true) => TRUE,
            Some(false) => FALSE,
            None => DYNAMIC,
        };
        self.flag.store(Arc::new(flag));
        self.constant.store(c, Ordering::Release);
        true
    }

    #[inline]
    fn enabled(&self) -> bool {
        match self.constant.load(Ordering::Acquire) {
            TRUE => true,
            FALSE => false,
            _ => self.flag.load().enabled(rand::random::<f64>()),
        }
    }

    fn enabled_for<A: FlagActor + ?Sized>(&self, actor: &A) -> bool {
        self.flag.load().enabled_for(actor, rand::random::<f64>())
    }
}

type Index = HashMap<String, Arc<Slot>, foldhash::fast::RandomState>;
/// Called with every flag this node writes and its version.
type Listener = Box<dyn Fn(&Flag, u64) + Send + Sync>;

struct Inner {
    store: Arc<dyn FlagStore>,
    /// The hybrid logical clock that numbers this node's writes (and observes the versions
    /// of received changes, so a write made after seeing a change is newer whatever the skew).
    clock: Mutex<Hlc>,
    /// Every install (local write, remote change, reload): flag name and version.
    installed: tokio::sync::broadcast::Sender<(String, u64)>,
    index: ArcSwap<Index>,
    /// Serializes index growth.
    grow: Mutex<()>,
    listeners: Mutex<Vec<Listener>>,
}

/// A typed handle to one flag, resolved once: its check is the fast path.
#[derive(Debug, Clone)]
pub struct FlagHandle {
    slot: Arc<Slot>,
}

impl FlagHandle {
    /// Whether the flag is on, without an actor.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.slot.enabled()
    }

    /// Whether the flag is on for `actor`.
    pub fn enabled_for<A: FlagActor + ?Sized>(&self, actor: &A) -> bool {
        self.slot.enabled_for(actor)
    }
}

/// The node's flag cache over a store.
#[derive(Clone)]
pub struct Flags {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flags")
            .field("flags", &self.inner.index.load().len())
            .finish_non_exhaustive()
    }
}

/// A number from the wall clock alone (ns since the Unix epoch, as corrected by the cluster:
/// [`actor_core::wallclock`]). The cache's own versions are hybrid-logical-clock stamps
/// ([`actor_core::hlc::Stamp::version`]).
pub fn now_version() -> u64 {
    actor_core::wallclock::wall_ns()
}

impl Flags {
    /// A version for a write made now: after every version this node made or received.
    fn next_version(&self) -> u64 {
        self.inner.clock.lock().now(now_version()).version()
    }

    /// Opens the cache over `store`, loading every flag before it returns (no cold cache).
    pub async fn open(store: Arc<dyn FlagStore>) -> Result<Self, FlagError> {
        let flags = Self {
            inner: Arc::new(Inner {
                store,
                clock: Mutex::new(Hlc::new("flags")),
                index: ArcSwap::from_pointee(Index::default()),
                installed: tokio::sync::broadcast::channel(4096).0,
                grow: Mutex::new(()),
                listeners: Mutex::new(Vec::new()),
            }),
        };
        flags.reload().await?;
        Ok(flags)
    }

    /// Re-reads every flag from the store (the periodic safety net). Flags gone from the store
    /// are turned off.
    pub async fn reload(&self) -> Result<(), FlagError> {
        let version = self.next_version();
        let all = self.inner.store.all_flags().await?;
        let mut seen = std::collections::HashSet::new();
        for f in all {
            seen.insert(f.name.clone());
            self.slot(&f.name).install(f, version);
        }
        for (name, slot) in self.inner.index.load().iter() {
            if !seen.contains(name) {
                slot.install(Flag::new(name.as_str()), version);
            }
        }
        Ok(())
    }

    fn slot(&self, name: &str) -> Arc<Slot> {
        if let Some(s) = self.inner.index.load().get(name) {
            return s.clone();
        }
        let _g = self.inner.grow.lock();
        let cur = self.inner.index.load_full();
        if let Some(s) = cur.get(name) {
            return s.clone();
        }
        let mut next = (*cur).clone();
        let slot = Arc::new(Slot::new(name));
        next.insert(name.to_owned(), slot.clone());
        self.inner.index.store(Arc::new(next));
        slot
    }

    /// A handle to `name` (valid even before the flag exists).
    pub fn handle(&self, name: &str) -> Result<FlagHandle, FlagError> {
        validate_name(name)?;
        Ok(FlagHandle {
            slot: self.slot(name),
        })
    }

    /// Whether `name` is on, without an actor (unknown flags are off).
    #[inline]
    pub fn enabled(&self, name: &str) -> bool {
        self.inner
            .index
            .load()
            .get(name)
            .is_some_and(|s| s.enabled())
    }

    /// Whether `name` is on for `actor`.
    pub fn enabled_for<A: FlagActor + ?Sized>(&self, name: &str, actor: &A) -> bool {
        self.inner
            .index
            .load()
            .get(name)
            .is_some_and(|s| s.enabled_for(actor))
    }

    /// The cached flag (`None` if unknown or without gates).
    pub fn get_flag(&self, name: &str) -> Option<Flag> {
        let f = self.inner.index.load().get(name)?.flag.load_full();
        (!f.gates.is_empty()).then(|| (*f).clone())
    }

    /// The version of the cached state of `name` (0 before any).
    pub fn version(&self, name: &str) -> u64 {
        self.inner
            .index
            .load()
            .get(name)
            .map_or(0, |s| s.version.load(Ordering::Acquire))
    }

    /// Re-reads one flag from the store into the cache.
    pub async fn refresh(&self, name: &str) -> Result<(), FlagError> {
        validate_name(name)?;
        let version = self.next_version();
        let flag = self
            .inner
            .store
            .get(name)
            .await?
            .unwrap_or_else(|| Flag::new(name));
        if self.slot(name).install(flag, version) {
            let _ = self.inner.installed.send((name.to_owned(), version));
        }
        Ok(())
    }

    /// Every cached flag with gates.
    pub fn all_flags(&self) -> Vec<Flag> {
        let mut v: Vec<Flag> = self
            .inner
            .index
            .load()
            .values()
            .map(|s| (*s.flag.load_full()).clone())
            .filter(|f| !f.gates.is_empty())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Every cached flag name with gates.
    pub fn all_flag_names(&self) -> Vec<String> {
        self.all_flags().into_iter().map(|f| f.name).collect()
    }

    /// Installs a flag state received from elsewhere (another node), if newer than the cached
    /// one. Returns whether it was installed.
    pub fn apply(&self, flag: Flag, version: u64) -> bool {
        if validate_name(&flag.name).is_err() {
            return false;
        }
        self.inner
            .clock
            .lock()
            .observe(&Stamp::from_version(version), now_version());
        let name = flag.name.clone();
        let done = self.slot(&name).install(flag, version);
        if done {
            let _ = self.inner.installed.send((name, version));
        }
        done
    }

    /// Every flag state installed in this cache from now on (name and version).
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<(String, u64)> {
        self.inner.installed.subscribe()
    }

    /// Calls `f` with every flag this node writes, after the store accepted it (to broadcast it).
    pub fn on_change(&self, f: impl Fn(&Flag, u64) + Send + Sync + 'static) {
        self.inner.listeners.lock().push(Box::new(f));
    }

    async fn after_write(&self, name: &str) -> Result<(), FlagError> {
        let flag = self
            .inner
            .store
            .get(name)
            .await?
            .unwrap_or_else(|| Flag::new(name));
        let version = self.next_version();
        if self.slot(name).install(flag.clone(), version) {
            let _ = self.inner.installed.send((name.to_owned(), version));
        }
        for l in self.inner.listeners.lock().iter() {
            l(&flag, version);
        }
        Ok(())
    }

    async fn put(&self, name: &str, gate: Gate) -> Result<(), FlagError> {
        validate_name(name)?;
        gate.validate()?;
        self.inner.store.put(name, &gate).await?;
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
        self.inner.store.delete_gate(name, key).await?;
        self.after_write(name).await
    }

    /// Removes the whole flag.
    pub async fn clear(&self, name: &str) -> Result<(), FlagError> {
        validate_name(name)?;
        self.inner.store.delete_flag(name).await?;
        self.after_write(name).await
    }
}
