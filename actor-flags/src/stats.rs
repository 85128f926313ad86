//! Evaluation counters and unknown-name tracking.
//!
//! Counters are opt-in ([`crate::Flags::count_evaluations`]). A counted check must stay within
//! a couple of nanoseconds, so it does no atomic read-modify-write: every thread holds a shard
//! of counters (one true and one false count per flag slot, indexed by a process-wide slot
//! number) and bumps its own with a relaxed load and store. Only the holding thread writes a
//! shard; readers sum every shard. A thread that ends leaves its shard, counts included, to the
//! next thread that counts.
//!
//! Checks by name of a flag this node does not know are counted per name (up to
//! [`MAX_UNKNOWN`] names; past that in one overflow count) and logged once per name.

use std::cell::Cell;
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

/// One thread's counters: `2 * slot` counts false answers, `2 * slot + 1` true ones. A shard
/// is never freed: it stays in [`SHARDS`] (its counts are part of every sum) and, when its
/// thread ends, goes to [`FREE`] for the next thread. Only the thread holding it writes it.
struct Shard {
    counts: Box<[AtomicU64]>,
}

impl Shard {
    fn get(&self, i: usize) -> u64 {
        self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Every shard ever made: as many as threads counted at once, times the growth steps.
static SHARDS: Mutex<Vec<&'static Shard>> = Mutex::new(Vec::new());
/// Shards whose thread ended, for the next thread to take.
static FREE: Mutex<Vec<&'static Shard>> = Mutex::new(Vec::new());

thread_local! {
    /// The thread's shard. A `Cell` of a reference, const-initialized and without a
    /// destructor: reading it is one thread-local load, with no state check and no borrow flag.
    static SHARD: Cell<Option<&'static Shard>> = const { Cell::new(None) };
    /// Gives the thread's shard back when the thread ends (touched once, in the slow path).
    static GUARD: Guard = const { Guard };
}

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(Some(s)) = SHARD.try_with(Cell::take) {
            FREE.lock().push(s);
        }
    }
}

/// Counts one answer of slot `slot` on this thread.
#[inline]
pub(crate) fn tally(slot: u32, enabled: bool) {
    let i = 2 * slot as usize + usize::from(enabled);
    // A check made while this thread's locals are being destroyed is not counted.
    let Ok(shard) = SHARD.try_with(Cell::get) else {
        return;
    };
    match shard.and_then(|s| s.counts.get(i)) {
        // Only this thread writes its shard: a load and a store, no read-modify-write.
        Some(c) => c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed),
        None => grow_and_tally(i),
    }
}

/// The slow path: this thread has no shard yet, or one too short for `i`. It takes a free
/// shard long enough, or makes one; a shard too short goes back to the free ones.
#[cold]
fn grow_and_tally(i: usize) {
    let _ = GUARD.try_with(|_| ());
    let Ok(old) = SHARD.try_with(Cell::take) else {
        return;
    };
    let mut free = FREE.lock();
    if let Some(old) = old {
        free.push(old);
    }
    let shard = match free.iter().position(|s| s.counts.len() > i) {
        Some(at) => free.swap_remove(at),
        None => {
            let len = (i + 1).next_power_of_two().max(256);
            let shard: &'static Shard = Box::leak(Box::new(Shard {
                counts: (0..len).map(|_| AtomicU64::new(0)).collect(),
            }));
            SHARDS.lock().push(shard);
            shard
        }
    };
    drop(free);
    if let Some(c) = shard.counts.get(i) {
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    let _ = SHARD.try_with(|c| c.set(Some(shard)));
}

/// (false, true) answers counted for `slot`, over every thread.
pub(crate) fn counts(slot: u32) -> (u64, u64) {
    let (f, t) = (2 * slot as usize, 2 * slot as usize + 1);
    SHARDS
        .lock()
        .iter()
        .fold((0, 0), |(a, b), s| (a + s.get(f), b + s.get(t)))
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
