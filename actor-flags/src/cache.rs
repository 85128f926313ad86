//! The cache: flag slots, the name index, handles, checks, installs and change events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use actor_core::hlc::{Hlc, Stamp};
use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::gate::{validate_name, Decision, Flag, FlagActor};
use crate::observe::{ChangeOrigin, Evaluation, FlagChange};
use crate::{now_version, stats, FlagError, FlagStore, DEFAULT_AUTHOR};

/// `Slot::fixed` of a flag whose answer without an actor depends on the random sample.
const DYNAMIC: u8 = 0xFF;

/// A random sample for a check, drawn only if the flag can use it.
#[inline]
fn sample_for(flag: &Flag) -> f64 {
    if flag.needs_sample() {
        rand::random::<f64>()
    } else {
        0.0
    }
}

/// One flag's cache entry. Slots are never removed, so handles stay valid.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The decision without an actor, if fixed ([`Decision::pack`]), or `DYNAMIC` (%-of-time).
    pub(crate) fixed: AtomicU8,
    /// Whether checks are counted (see [`stats`]).
    pub(crate) counted: AtomicBool,
    /// The slot's number in the evaluation counters.
    pub(crate) id: u32,
    pub(crate) flag: ArcSwap<Flag>,
    pub(crate) version: AtomicU64,
}

impl Slot {
    fn new(name: &str, counted: bool) -> Self {
        Self {
            fixed: AtomicU8::new(Flag::new(name).decide(0.0).pack()),
            counted: AtomicBool::new(counted),
            id: stats::next_slot_id(),
            flag: ArcSwap::from_pointee(Flag::new(name)),
            version: AtomicU64::new(0),
        }
    }

    /// Installs `flag` if `version` is newer; returns whether it did.
    pub(crate) fn install(&self, flag: Flag, version: u64) -> bool {
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
            Some(_) => flag.decide(0.0).pack(),
            None => DYNAMIC,
        };
        self.flag.store(Arc::new(flag));
        self.fixed.store(c, Ordering::Release);
        true
    }

    #[inline]
    fn enabled(&self) -> bool {
        let on = match self.fixed.load(Ordering::Acquire) {
            DYNAMIC => self.flag.load().enabled(rand::random::<f64>()),
            c => c & 1 == 1,
        };
        self.count(on)
    }

    fn enabled_for<A: FlagActor + ?Sized>(&self, actor: &A) -> bool {
        let f = self.flag.load();
        let on = f.enabled_for(actor, sample_for(&f));
        self.count(on)
    }

    /// Counts an answer, if counting is on; returns it.
    #[inline]
    fn count(&self, on: bool) -> bool {
        if self.counted.load(Ordering::Relaxed) {
            stats::tally(self.id, on);
        }
        on
    }

    /// Without an actor: the fixed decision when there is one (two atomic loads).
    #[inline]
    fn evaluate(&self) -> Evaluation {
        match self.fixed.load(Ordering::Acquire) {
            DYNAMIC => self.evaluate_with(|f, s| f.decide(s)),
            c => {
                let d = Decision::unpack(c);
                self.count(d.enabled);
                Evaluation {
                    enabled: d.enabled,
                    reason: d.reason,
                    gate: d.gate,
                    version: self.version.load(Ordering::Acquire),
                }
            }
        }
    }

    fn evaluate_with(&self, decide: impl FnOnce(&Flag, f64) -> Decision) -> Evaluation {
        let version = self.version.load(Ordering::Acquire);
        let f = self.flag.load();
        let d = decide(&f, sample_for(&f));
        self.count(d.enabled);
        Evaluation {
            enabled: d.enabled,
            reason: d.reason,
            gate: d.gate,
            version,
        }
    }
}

type Index = HashMap<String, Arc<Slot>, foldhash::fast::RandomState>;
/// Called with every flag this node writes and its version.
type Listener = Box<dyn Fn(&Flag, u64) + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn FlagStore>,
    /// The hybrid logical clock that numbers this node's writes (and observes the versions
    /// of received changes, so a write made after seeing a change is newer whatever the skew).
    pub(crate) clock: Mutex<Hlc>,
    /// Every install (local write, remote change, a changed reload).
    pub(crate) installed: tokio::sync::broadcast::Sender<FlagChange>,
    /// Whether new slots count their checks.
    pub(crate) counting: AtomicBool,
    /// Checks by name of flags that do not exist.
    pub(crate) unknown: stats::Unknown,
    pub(crate) index: ArcSwap<Index>,
    /// Serializes index growth.
    pub(crate) grow: Mutex<()>,
    pub(crate) listeners: Mutex<Vec<Listener>>,
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

    /// [`FlagHandle::enabled`] with the reason, the deciding gate and the version.
    pub fn evaluate(&self) -> Evaluation {
        self.slot.evaluate()
    }

    /// [`FlagHandle::enabled_for`] with the reason, the deciding gate and the version.
    pub fn evaluate_for<A: FlagActor + ?Sized>(&self, actor: &A) -> Evaluation {
        self.slot.evaluate_with(|f, s| f.decide_for(actor, s))
    }
}

/// The node's flag cache over a store.
#[derive(Clone)]
pub struct Flags {
    pub(crate) inner: Arc<Inner>,
    /// Who this handle's writes are recorded as ([`Flags::by`]).
    pub(crate) author: Arc<str>,
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flags")
            .field("flags", &self.inner.index.load().len())
            .finish_non_exhaustive()
    }
}

impl Flags {
    /// A version for a write made now: after every version this node made or received.
    pub(crate) fn next_version(&self) -> u64 {
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
                counting: AtomicBool::new(false),
                unknown: stats::Unknown::new(),
                grow: Mutex::new(()),
                listeners: Mutex::new(Vec::new()),
            }),
            author: Arc::from(DEFAULT_AUTHOR),
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
            if !f.gates.is_empty() {
                self.inner.unknown.forget(&f.name);
            }
            let slot = self.slot(&f.name);
            let changed = **slot.flag.load() != f;
            let name = f.name.clone();
            if slot.install(f, version) && changed {
                self.installed(name, version, ChangeOrigin::Store);
            }
        }
        for (name, slot) in self.inner.index.load().iter() {
            if !seen.contains(name) {
                let changed = !slot.flag.load().gates.is_empty();
                if slot.install(Flag::new(name.as_str()), version) && changed {
                    self.installed(name.clone(), version, ChangeOrigin::Store);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn slot(&self, name: &str) -> Arc<Slot> {
        if let Some(s) = self.inner.index.load().get(name) {
            return s.clone();
        }
        let _g = self.inner.grow.lock();
        let cur = self.inner.index.load_full();
        if let Some(s) = cur.get(name) {
            return s.clone();
        }
        let mut next = (*cur).clone();
        let slot = Arc::new(Slot::new(name, self.inner.counting.load(Ordering::Acquire)));
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

    /// Whether `name` is on, without an actor (unknown flags are off, and counted:
    /// [`Flags::unknown_checks`]).
    #[inline(always)]
    pub fn enabled(&self, name: &str) -> bool {
        match self.inner.index.load().get(name) {
            Some(s) => s.enabled(),
            None => self.unknown(name),
        }
    }

    /// Whether `name` is on for `actor`.
    pub fn enabled_for<A: FlagActor + ?Sized>(&self, name: &str, actor: &A) -> bool {
        match self.inner.index.load().get(name) {
            Some(s) => s.enabled_for(actor),
            None => self.unknown(name),
        }
    }

    /// [`Flags::enabled`] with the reason, the deciding gate and the version.
    pub fn evaluate(&self, name: &str) -> Evaluation {
        match self.inner.index.load().get(name) {
            Some(s) => s.evaluate(),
            None => {
                self.unknown(name);
                Evaluation::NOT_FOUND
            }
        }
    }

    /// [`Flags::enabled_for`] with the reason, the deciding gate and the version.
    pub fn evaluate_for<A: FlagActor + ?Sized>(&self, name: &str, actor: &A) -> Evaluation {
        match self.inner.index.load().get(name) {
            Some(s) => s.evaluate_with(|f, sample| f.decide_for(actor, sample)),
            None => {
                self.unknown(name);
                Evaluation::NOT_FOUND
            }
        }
    }

    /// A check of a name this node does not know: counted, logged once per name; false.
    #[cold]
    pub(crate) fn unknown(&self, name: &str) -> bool {
        self.inner.unknown.checked(name);
        false
    }

    pub(crate) fn installed(&self, name: String, version: u64, origin: ChangeOrigin) {
        let _ = self.inner.installed.send(FlagChange {
            name,
            version,
            origin,
        });
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

    /// One flag as the store holds it (no gates if it has none); a flag that exists leaves the
    /// unknown names.
    pub(crate) async fn read_stored(&self, name: &str) -> Result<Flag, FlagError> {
        let flag = self
            .inner
            .store
            .get(name)
            .await?
            .unwrap_or_else(|| Flag::new(name));
        if !flag.gates.is_empty() {
            self.inner.unknown.forget(name);
        }
        Ok(flag)
    }

    /// Re-reads one flag from the store into the cache.
    pub async fn refresh(&self, name: &str) -> Result<(), FlagError> {
        validate_name(name)?;
        let version = self.next_version();
        let flag = self.read_stored(name).await?;
        if self.slot(name).install(flag, version) {
            self.installed(name.to_owned(), version, ChangeOrigin::Store);
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
        let exists = !flag.gates.is_empty();
        let done = self.slot(&name).install(flag, version);
        if done {
            if exists {
                self.inner.unknown.forget(&name);
            }
            self.installed(name, version, ChangeOrigin::Remote);
        }
        done
    }

    /// Every flag state installed in this cache from now on: local writes, changes from other
    /// nodes, and states read from the store that differ from the cached one. A receiver that
    /// falls more than 4,096 changes behind gets `Lagged` and should re-read what it needs.
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<FlagChange> {
        self.inner.installed.subscribe()
    }

    /// Calls `f` with every flag this node writes, after the store accepted it (to broadcast it).
    pub fn on_change(&self, f: impl Fn(&Flag, u64) + Send + Sync + 'static) {
        self.inner.listeners.lock().push(Box::new(f));
    }
}
