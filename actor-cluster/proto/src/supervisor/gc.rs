//! Collecting the child table's tombstones, safely.
//!
//! A terminated child stays in the table as a tombstone ([`ChildStatus::Removed`]) so that a
//! late copy of its live row cannot bring it back. Kept forever, tombstones grow the table
//! without bound; dropped too early, a replica that has not seen the removal yet sends its live
//! row back. The rule here drops a tombstone only when every replica that could still send
//! an older row has said it has seen the tombstone's write:
//!
//! * **Dots.** Every write to the table is numbered by its writer: a [`Dot`] (the writer's
//!   incarnation and a sequence number, the writer being the row's `stamp.node`). A node's
//!   deltas carry its writes in order, so a replica knows, per writer incarnation, the highest
//!   number up to which it has every write (or a newer row of the same child): its **seen
//!   vector**. A gap in a writer's numbers (a lost delta) stops that entry and pulls the
//!   writer's table. A complete copy of a peer's table carries the peer's seen vector, which
//!   the receiver merges (entry by entry, the larger number).
//! * **Acknowledgements.** Each node sends its seen vector to its peers ([`SupPeerMsg::Seen`]):
//!   the entries that changed, at most once per [`ANNOUNCE_EVERY`]; the whole vector to a
//!   member that comes up.
//! * **Collection.** A tombstone is dropped when this node's seen vector and the last vector
//!   of every **counted** peer cover its dot. Counted are the members up, the members up
//!   whose kinds are unknown, the members a peer reported, and members that went down without
//!   leaving, for [`TOMBSTONE_HOLD`] after they went down (a partitioned node comes back with
//!   the table it had). A member that comes up again counts as having seen nothing until it
//!   says otherwise.
//! * **The guard.** A row that arrives for a child this table has no row for, and whose dot
//!   the seen vector already covers, was collected here: it is dropped, not merged.
//!
//! What remains possible: a node cut off for longer than [`TOMBSTONE_HOLD`] that comes back
//! with a live row of a child terminated meanwhile, whose write no other node's vector covers,
//! can restore that row (the runtime-semantics chapter says so).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{ChildTable, Row, SupEffect, SupPeerMsg};
use crate::Now;

/// How long a member that went down without leaving still counts for collection.
pub const TOMBSTONE_HOLD: Duration = Duration::from_secs(300);

/// How often, at most, a node sends the entries of its seen vector that changed.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);

/// How often, at most, a node asks one peer for its whole seen vector, when that peer's last
/// one keeps a tombstone from being collected (a `Seen` message may have been lost).
pub const ASK_EVERY: Duration = Duration::from_secs(2);

/// Which write of its writer a row is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Dot {
    /// The writer's incarnation (the wall clock, in ns, of its first write).
    pub inc: u64,
    /// The write's number, from 1, per incarnation; 0: no dot (never collected).
    pub seq: u64,
}

/// One entry of a seen vector: every write of `node`'s incarnation `inc` up to `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenEntry {
    /// The writer.
    pub node: String,
    /// Its incarnation.
    pub inc: u64,
    /// The last write covered.
    pub seq: u64,
}

/// A piece of a node's table, as sent to a peer that lacks it; the last piece of a copy
/// carries the sender's seen vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablePart {
    /// Rows.
    pub rows: Vec<Row>,
    /// This piece's place in the copy, from 0.
    pub index: u32,
    /// Pieces in the copy.
    pub total: u32,
    /// The sender's seen vector (last piece only).
    pub seen: Vec<SeenEntry>,
}

type Writer = (String, u64);

/// One node's bookkeeping for collecting tombstones.
#[derive(Debug, Clone, Default)]
pub(super) struct Collector {
    inc: u64,
    seq: u64,
    seen: BTreeMap<Writer, u64>,
    changed: BTreeSet<Writer>,
    acks: BTreeMap<String, BTreeMap<Writer, u64>>,
    /// Members that went down without leaving, and when.
    departed: BTreeMap<String, Instant>,
    /// Members owed the whole vector.
    owed: BTreeSet<String>,
    /// The next piece expected of each sender's copy (`u32::MAX`: this copy is broken).
    parts_in: BTreeMap<String, u32>,
    announced: Option<Instant>,
    /// When each peer was last asked for its whole vector.
    asked: BTreeMap<String, Instant>,
    collected: u64,
}

impl Collector {
    /// The dot of this node's next write.
    pub(super) fn next_dot(&mut self, me: &str, wall_ns: u64) -> Dot {
        if self.inc == 0 {
            self.inc = wall_ns.max(1);
        }
        self.seq += 1;
        self.advance((me.to_owned(), self.inc), self.seq);
        Dot {
            inc: self.inc,
            seq: self.seq,
        }
    }

    fn advance(&mut self, w: Writer, seq: u64) {
        let e = self.seen.entry(w.clone()).or_insert(0);
        if seq > *e {
            *e = seq;
            self.changed.insert(w);
        }
    }

    /// Whether this node has seen the write of `row` (or a newer row of its child).
    pub(super) fn covers(&self, row: &Row) -> bool {
        row.dot.seq > 0
            && self
                .seen
                .get(&(row.stamp.node.clone(), row.dot.inc))
                .is_some_and(|s| *s >= row.dot.seq)
    }

    /// Whether the rows of a delta from `from` follow what this node has seen of their
    /// writer, with no write missing in between.
    pub(super) fn in_order(&self, from: &str, rows: &[Row]) -> bool {
        let mut next: Option<(&Row, u64)> = None;
        rows.iter()
            .filter(|r| r.dot.seq > 0 && r.stamp.node == from)
            .all(|r| {
                let have = match next {
                    Some((prev, seq)) if prev.dot.inc == r.dot.inc => seq,
                    _ => self
                        .seen
                        .get(&(r.stamp.node.clone(), r.dot.inc))
                        .copied()
                        .unwrap_or(0),
                };
                next = Some((r, have.max(r.dot.seq)));
                r.dot.seq <= have + 1
            })
    }

    /// A row of a delta from `from` that [`Collector::in_order`] accepted: its write is seen.
    pub(super) fn on_delta_row(&mut self, from: &str, row: &Row) {
        if row.dot.seq > 0 && row.stamp.node == from {
            self.advance((row.stamp.node.clone(), row.dot.inc), row.dot.seq);
        }
    }

    /// This node's seen vector, whole.
    pub(super) fn vector(&self) -> Vec<SeenEntry> {
        self.seen
            .iter()
            .map(|((node, inc), seq)| SeenEntry {
                node: node.clone(),
                inc: *inc,
                seq: *seq,
            })
            .collect()
    }

    /// A piece of `from`'s copy arrived; true when it completes an unbroken copy (its seen
    /// vector may then be merged).
    pub(super) fn part_arrived(&mut self, from: &str, index: u32, total: u32) -> bool {
        let next = self.parts_in.entry(from.to_owned()).or_insert(0);
        *next = match index {
            0 => 1,
            i if i == *next => i + 1,
            _ => u32::MAX,
        };
        if *next == total {
            self.parts_in.remove(from);
            return true;
        }
        false
    }

    /// Merges a peer's seen vector into this node's (after a complete copy of its table).
    pub(super) fn merge_vector(&mut self, seen: Vec<SeenEntry>) {
        for e in seen {
            self.advance((e.node, e.inc), e.seq);
        }
    }

    /// A peer said what it has seen.
    pub(super) fn on_seen(&mut self, from: String, seen: Vec<SeenEntry>) {
        let acks = self.acks.entry(from).or_default();
        for e in seen {
            let a = acks.entry((e.node, e.inc)).or_insert(0);
            *a = (*a).max(e.seq);
        }
    }

    /// `from` asked for this node's whole vector.
    pub(super) fn asked_by(&mut self, from: String) {
        self.owed.insert(from);
    }

    pub(super) fn member_up(&mut self, node: &str) {
        self.acks.remove(node);
        self.asked.remove(node);
        self.departed.remove(node);
        self.parts_in.remove(node);
        self.owed.insert(node.to_owned());
    }

    pub(super) fn member_down(&mut self, node: &str, left: bool, now: Instant) {
        self.parts_in.remove(node);
        self.owed.remove(node);
        if left {
            self.acks.remove(node);
            self.departed.remove(node);
        } else {
            self.departed.insert(node.to_owned(), now);
        }
    }

    /// What this node owes its peers of its seen vector now.
    pub(super) fn announce(&mut self, me: &str, now: Instant, out: &mut Vec<SupEffect>) {
        for peer in std::mem::take(&mut self.owed) {
            out.push(SupEffect::Send(
                peer,
                SupPeerMsg::Seen {
                    from: me.to_owned(),
                    seen: self.vector(),
                    ask: false,
                },
            ));
        }
        let due = self
            .announced
            .is_none_or(|t| now.saturating_duration_since(t) >= ANNOUNCE_EVERY);
        if self.changed.is_empty() || !due {
            return;
        }
        self.announced = Some(now);
        let seen = std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|w| {
                let seq = *self.seen.get(&w)?;
                Some(SeenEntry {
                    node: w.0,
                    inc: w.1,
                    seq,
                })
            })
            .collect();
        out.push(SupEffect::Broadcast(SupPeerMsg::Seen {
            from: me.to_owned(),
            seen,
            ask: false,
        }));
    }

    /// Drops the tombstones that every counted replica has seen; `peers` are the members up
    /// (and reported) other than this node. A peer up whose last vector keeps a tombstone is
    /// asked for its whole vector (at most once per [`ASK_EVERY`]). Returns the children whose
    /// tombstones it dropped.
    pub(super) fn collect<'a>(
        &mut self,
        me: &str,
        table: &mut ChildTable,
        peers: impl Iterator<Item = &'a String>,
        now: Instant,
        out: &mut Vec<SupEffect>,
    ) -> Vec<String> {
        if table.tombstone_count() == 0 {
            return Vec::new();
        }
        self.departed
            .retain(|_, since| now.saturating_duration_since(*since) < TOMBSTONE_HOLD);
        let up: BTreeSet<String> = peers.cloned().collect();
        let mut counted = up.clone();
        counted.extend(self.departed.keys().cloned());
        self.acks.retain(|n, _| counted.contains(n));
        let covered = |acks: Option<&BTreeMap<Writer, u64>>, w: &Writer, seq: u64| {
            acks.and_then(|a| a.get(w)).is_some_and(|s| *s >= seq)
        };
        let mut done = Vec::new();
        let mut blocking = BTreeSet::new();
        for id in table.tombstones() {
            let Some(r) = table.get(id).filter(|r| r.dot.seq > 0) else {
                continue;
            };
            let w = (r.stamp.node.clone(), r.dot.inc);
            if self.seen.get(&w).is_none_or(|s| *s < r.dot.seq) {
                continue;
            }
            let blockers: Vec<&String> = counted
                .iter()
                .filter(|p| !covered(self.acks.get(*p), &w, r.dot.seq))
                .collect();
            if blockers.is_empty() {
                done.push(id.clone());
            } else {
                blocking.extend(blockers.into_iter().cloned());
            }
        }
        for p in blocking.into_iter().filter(|p| up.contains(p)) {
            let due = self
                .asked
                .get(&p)
                .is_none_or(|t| now.saturating_duration_since(*t) >= ASK_EVERY);
            if due {
                self.asked.insert(p.clone(), now);
                out.push(SupEffect::Send(
                    p,
                    SupPeerMsg::Seen {
                        from: me.to_owned(),
                        seen: Vec::new(),
                        ask: true,
                    },
                ));
            }
        }
        done.retain(|id| table.collect(id));
        self.collected += done.len() as u64;
        done
    }

    /// Tombstones this node has dropped since it started.
    pub(super) fn collected(&self) -> u64 {
        self.collected
    }
}

impl super::SupervisorCore {
    /// Drops the tombstones every counted replica has seen (see the module doc), and what this node
    /// kept of those children ([`SupEffect::Collected`]); returns how many.
    pub fn collect_tombstones(&mut self, now: Now, out: &mut Vec<SupEffect>) -> usize {
        let peers = self
            .names
            .iter()
            .chain(self.pending.keys())
            .chain(self.heard.keys())
            .filter(|n| **n != self.me);
        let ids = self
            .gc
            .collect(&self.me, &mut self.table, peers, now.mono, out);
        for id in &ids {
            self.lost.remove(id);
        }
        let n = ids.len();
        if n > 0 {
            out.push(SupEffect::Collected(ids));
        }
        n
    }

    /// Tombstones this node has collected since it started.
    pub fn tombstones_collected(&self) -> u64 {
        self.gc.collected()
    }
}
