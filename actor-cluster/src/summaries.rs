//! Anti-entropy on the probes: every replicated service (each registry, each distributed
//! supervisor's child table, the flag cache) keeps a summary of its state here, a hash equal
//! on every node whose replicas agree. Membership's pings and acks carry every summary of the
//! sender ([`Summaries::snapshot`]); the receiver compares them with its own
//! ([`Summaries::compare`]) and tells a service only when its peer's summary differs from its
//! own, or changed since it was last told. An idle cluster in agreement therefore exchanges no
//! service message at all, and a difference costs one digest to that peer (see
//! `actor_cluster_proto::replication`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};

/// What a service is told: a peer's summary `(peer, theirs)` differs from its own, or changed.
pub type OnSummary = Arc<dyn Fn(&str, u64) + Send + Sync>;

struct Service {
    name: String,
    value: Arc<AtomicU64>,
    on_summary: OnSummary,
}

/// This node's services and their summaries.
#[derive(Default)]
pub struct Summaries {
    services: RwLock<BTreeMap<u64, Service>>,
    /// The last `(peer's summary, own summary)` each service was told of per peer, to tell it
    /// again only of a change on either side.
    last: Mutex<HashMap<(u64, String), (u64, u64)>>,
}

impl std::fmt::Debug for Summaries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .services
            .read()
            .values()
            .map(|s| s.name.clone())
            .collect();
        f.debug_struct("Summaries")
            .field("services", &names)
            .finish()
    }
}

/// A service's place on the board: set its summary after every change. Dropping it takes the
/// service off the probes.
#[must_use = "dropping the slot takes the service off the probes"]
pub struct SummarySlot {
    id: u64,
    value: Arc<AtomicU64>,
    board: Weak<Summaries>,
}

impl std::fmt::Debug for SummarySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SummarySlot").field("id", &self.id).finish()
    }
}

impl SummarySlot {
    /// The service's current summary.
    pub fn set(&self, summary: u64) {
        self.value.store(summary, Ordering::Relaxed);
    }

    /// The service forgot what it knew of `peer` (it came up, or its replica appeared): the
    /// peer's next summary is passed on even if it equals the last one.
    pub fn want(&self, peer: &str) {
        if let Some(board) = self.board.upgrade() {
            board.last.lock().remove(&(self.id, peer.to_owned()));
        }
    }
}

impl Drop for SummarySlot {
    fn drop(&mut self) {
        if let Some(board) = self.board.upgrade() {
            let mut services = board.services.write();
            if services
                .get(&self.id)
                .is_some_and(|s| Arc::ptr_eq(&s.value, &self.value))
            {
                services.remove(&self.id);
            }
            board.last.lock().retain(|(id, _), _| *id != self.id);
        }
    }
}

/// The id of a service on the wire: a stable hash of its name.
pub fn service_id(name: &str) -> u64 {
    actor_cluster_proto::hash::of_str(name)
}

impl Summaries {
    /// Puts the service `name` (the same on every node) on the probes. `on_summary` runs on
    /// a connection's reader task: it should only queue a message for the service's actor.
    pub fn register(
        self: &Arc<Self>,
        name: &str,
        on_summary: impl Fn(&str, u64) + Send + Sync + 'static,
    ) -> SummarySlot {
        let id = service_id(name);
        let value = Arc::new(AtomicU64::new(0));
        self.services.write().insert(
            id,
            Service {
                name: name.to_owned(),
                value: value.clone(),
                on_summary: Arc::new(on_summary),
            },
        );
        self.last.lock().retain(|(i, _), _| *i != id);
        SummarySlot {
            id,
            value,
            board: Arc::downgrade(self),
        }
    }

    /// Every service's `(id, summary)`, for a ping or an ack.
    pub(crate) fn snapshot(&self) -> Vec<(u64, u64)> {
        self.services
            .read()
            .iter()
            .map(|(id, s)| (*id, s.value.load(Ordering::Relaxed)))
            .collect()
    }

    /// `peer`'s summaries, from its ping or ack: tells each service whose summary differs from
    /// its own, or when either side's changed since the service was last told (so a service
    /// whose own state caught up hears that it is now in step).
    pub(crate) fn compare(&self, peer: &str, theirs: &[(u64, u64)]) {
        let mut calls: Vec<(OnSummary, u64)> = Vec::new();
        {
            let services = self.services.read();
            let mut last = self.last.lock();
            for (id, summary) in theirs {
                let Some(s) = services.get(id) else {
                    continue;
                };
                let mine = s.value.load(Ordering::Relaxed);
                let key = (*id, peer.to_owned());
                let pair = (*summary, mine);
                let changed = last.insert(key, pair) != Some(pair);
                if changed || *summary != mine {
                    calls.push((s.on_summary.clone(), *summary));
                }
            }
        }
        for (f, summary) in calls {
            f(peer, summary);
        }
    }

    /// Forgets what `peer` announced (it went down: its next summaries are news).
    pub(crate) fn forget(&self, peer: &str) {
        self.last.lock().retain(|(_, p), _| p != peer);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn services_hear_of_differences_and_changes_only() {
        let board = Arc::new(Summaries::default());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        let slot = board.register("registry:r", move |peer, s| {
            h.lock().push((peer.to_owned(), s))
        });
        slot.set(7);
        let id = service_id("registry:r");
        assert_eq!(board.snapshot(), vec![(id, 7)]);
        // Equal, first time: told once (the service marks the peer in sync); then silence.
        board.compare("b", &[(id, 7)]);
        board.compare("b", &[(id, 7)]);
        assert_eq!(heard.lock().len(), 1);
        // Different: told every time (the service rate-limits its digests).
        board.compare("b", &[(id, 8)]);
        board.compare("b", &[(id, 8)]);
        assert_eq!(heard.lock().len(), 3);
        // This side caught up: told once more, then silence.
        slot.set(8);
        board.compare("b", &[(id, 8)]);
        board.compare("b", &[(id, 8)]);
        assert_eq!(heard.lock().len(), 4);
        // Unknown services are ignored; a dropped slot leaves the probes.
        board.compare("b", &[(id + 1, 1)]);
        assert_eq!(heard.lock().len(), 4);
        drop(slot);
        assert!(board.snapshot().is_empty());
    }
}
