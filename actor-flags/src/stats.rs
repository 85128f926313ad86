//! Evaluation counters and unknown-name tracking.
//!
//! Counters are opt-in ([`crate::Flags::count_evaluations`]). A counted check must stay within
//! a couple of nanoseconds, so it does no atomic read-modify-write: every thread owns a shard of
//! plain counters (one true and one false count per flag slot, indexed by a process-wide slot
//! number) and bumps its own with a relaxed load and store. Only the owning thread writes a
//! shard; readers sum every live shard plus the counts of threads that ended.
//!
//! Checks by name of a flag this node does not know are counted per name (up to
//! [`MAX_UNKNOWN`] names; past that in one overflow count) and logged once per name.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

/// Distinct unknown names counted one by one; more are counted together.
pub const MAX_UNKNOWN: usize = 1024;

/// The next slot number, process-wide (slots of every cache in the process share the shards).
static NEXT_SLOT: AtomicU32 = AtomicU32::new(0);

/// A number for a new slot.
pub(crate) fn next_slot_id() -> u32 {
    NEXT_SLOT.fetch_add(1, Ordering::Relaxed)
}

/// One thread's counters: `2 * slot` counts false answers, `2 * slot + 1` true ones.
struct Shard {
    counts: Box<[AtomicU64]>,
}

impl Shard {
    fn with_len(len: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: (0..len).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn get(&self, i: usize) -> u64 {
        self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Every live thread's shard, and the sums of the threads that ended.
struct Registry {
    live: Vec<Arc<Shard>>,
    retired: Vec<u64>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    live: Vec::new(),
    retired: Vec::new(),
});

/// The thread's own shard; on thread exit its counts move to the registry's sums.
struct Local(Option<Arc<Shard>>);

impl Drop for Local {
    fn drop(&mut self) {
        let Some(shard) = self.0.take() else { return };
        let mut reg = REGISTRY.lock();
        reg.live.retain(|s| !Arc::ptr_eq(s, &shard));
        if reg.retired.len() < shard.counts.len() {
            let len = shard.counts.len();
            reg.retired.resize(len, 0);
        }
        for (sum, c) in reg.retired.iter_mut().zip(shard.counts.iter()) {
            *sum += c.load(Ordering::Relaxed);
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local(None)) };
}

/// Counts one answer of slot `slot` on this thread.
#[inline]
pub(crate) fn tally(slot: u32, enabled: bool) {
    let i = 2 * slot as usize + usize::from(enabled);
    // `try_with`: a check made while this thread's locals are being destroyed is not counted.
    let _ = LOCAL.try_with(|l| {
        if let Ok(l) = l.try_borrow() {
            if let Some(c) = l.0.as_ref().and_then(|s| s.counts.get(i)) {
                c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                return;
            }
        }
        grow_and_tally(l, i);
    });
}

/// The slow path: this thread has no shard yet, or one too short for `i`.
#[cold]
fn grow_and_tally(l: &RefCell<Local>, i: usize) {
    let Ok(mut l) = l.try_borrow_mut() else {
        return;
    };
    let len = (i + 1).next_power_of_two().max(256);
    let next = Shard::with_len(len);
    let mut reg = REGISTRY.lock();
    if let Some(old) = l.0.take() {
        for (n, o) in next.counts.iter().zip(old.counts.iter()) {
            n.store(o.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        reg.live.retain(|s| !Arc::ptr_eq(s, &old));
    }
    if let Some(c) = next.counts.get(i) {
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    reg.live.push(next.clone());
    l.0 = Some(next);
}

/// (false, true) answers counted for `slot`, over every thread.
pub(crate) fn counts(slot: u32) -> (u64, u64) {
    let reg = REGISTRY.lock();
    let (f, t) = (2 * slot as usize, 2 * slot as usize + 1);
    let retired = |i: usize| reg.retired.get(i).copied().unwrap_or(0);
    let mut sum = (retired(f), retired(t));
    for s in &reg.live {
        sum.0 += s.get(f);
        sum.1 += s.get(t);
    }
    sum
}

/// Checks by name of flags that do not exist.
pub(crate) struct Unknown {
    names: ArcSwap<HashMap<String, Arc<AtomicU64>, foldhash::fast::RandomState>>,
    /// Checks of names past the first [`MAX_UNKNOWN`].
    overflow: AtomicU64,
    grow: Mutex<()>,
}

impl Unknown {
    pub(crate) fn new() -> Self {
        Self {
            names: ArcSwap::from_pointee(HashMap::default()),
            overflow: AtomicU64::new(0),
            grow: Mutex::new(()),
        }
    }

    /// Counts a check of `name`, which this node does not know; logs the first one.
    #[cold]
    pub(crate) fn checked(&self, name: &str) {
        metrics::counter!("flags_unknown_checks_total").increment(1);
        if let Some(c) = self.names.load().get(name) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let _g = self.grow.lock();
        let cur = self.names.load_full();
        if let Some(c) = cur.get(name) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if cur.len() >= MAX_UNKNOWN {
            self.overflow.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tracing::warn!(
            flag = %name,
            "checked a flag that does not exist: it answers false (a typo, or not created yet); \
             logged once per name"
        );
        let mut next = (*cur).clone();
        next.insert(name.to_owned(), Arc::new(AtomicU64::new(1)));
        self.names.store(Arc::new(next));
    }

    /// Every unknown name checked and how often, by name; and the checks of names past the
    /// first [`MAX_UNKNOWN`].
    pub(crate) fn snapshot(&self) -> (Vec<(String, u64)>, u64) {
        let mut v: Vec<(String, u64)> = self
            .names
            .load()
            .iter()
            .map(|(n, c)| (n.clone(), c.load(Ordering::Relaxed)))
            .collect();
        v.sort();
        (v, self.overflow.load(Ordering::Relaxed))
    }

    /// Forgets `name` (it now exists).
    pub(crate) fn forget(&self, name: &str) {
        if !self.names.load().contains_key(name) {
            return;
        }
        let _g = self.grow.lock();
        let mut next = (*self.names.load_full()).clone();
        next.remove(name);
        self.names.store(Arc::new(next));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_over_threads_and_survive_their_end() {
        let a = next_slot_id();
        let b = next_slot_id();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..1000 {
                        tally(a, i % 4 == 0);
                    }
                    tally(b, true);
                });
            }
        });
        // The threads ended: their counts are in the retired sums.
        assert_eq!(counts(a), (3000, 1000));
        assert_eq!(counts(b), (0, 4));
        tally(a, true);
        assert_eq!(counts(a), (3000, 1001));
    }

    #[test]
    fn a_shard_grows_and_keeps_its_counts() {
        let a = next_slot_id();
        tally(a, false);
        // Far past the first shard's length.
        for _ in 0..300 {
            next_slot_id();
        }
        let far = next_slot_id();
        tally(far, true);
        tally(a, false);
        assert_eq!(counts(a), (2, 0));
        assert_eq!(counts(far), (0, 1));
    }

    #[test]
    fn unknown_names_are_counted_per_name_and_bounded() {
        let u = Unknown::new();
        u.checked("reactionz");
        u.checked("reactionz");
        u.checked("other");
        let (names, overflow) = u.snapshot();
        assert_eq!(
            names,
            vec![("other".to_owned(), 1), ("reactionz".to_owned(), 2)]
        );
        assert_eq!(overflow, 0);
        u.forget("other");
        for i in 0..MAX_UNKNOWN + 5 {
            u.checked(&format!("n{i}"));
        }
        let (names, overflow) = u.snapshot();
        assert_eq!(names.len(), MAX_UNKNOWN);
        assert_eq!(overflow, 6);
    }
}
