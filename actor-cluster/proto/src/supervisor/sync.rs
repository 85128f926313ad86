//! The child table as a replicated service: rows travel as deltas when they change, each node
//! announces a summary of its table on the membership probes, a peer whose summary differs
//! gets this node's digest (the count and hash sum of its rows other than tombstones), and a
//! peer whose digest differs
//! gets this node's whole table (at most once per [`FULL_MIN_INTERVAL`]). Both sides of a
//! difference send theirs when they see the other's digest, and rows merge last-writer-wins by
//! stamp, so they converge.

use actor_core_base::hlc::Hlc;
use serde::{Deserialize, Serialize};

use super::gc::{Collector, TablePart};
use super::{ChildTable, Row, SupEffect, SupPeerMsg, SupervisorCore, ROWS_PER_MESSAGE};
use crate::replication::{Merged, Replicated, Replicator, SyncMsg, SyncOut, Verdict};
use crate::Now;

/// A child table's digest: its rows other than tombstones (two replicas that differ only in
/// the tombstones each has collected agree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDigest {
    /// Rows other than tombstones.
    pub rows: u64,
    /// The wrapping sum of their hashes (of id and stamp).
    pub sum: u64,
}

/// The child table's messages (the replication skeleton's, see [`crate::replication`]).
pub type TableMsg = SyncMsg<Vec<Row>, TableDigest, TablePart>;

/// The table, the clock its rows are merged into and the tombstone collector, for the
/// skeleton.
pub(super) struct TableSync<'a> {
    pub(super) table: &'a mut ChildTable,
    pub(super) clock: &'a mut Hlc,
    pub(super) gc: &'a mut Collector,
}

impl TableSync<'_> {
    /// Whether `r` is the row of a child this table has collected (see [`super::gc`]).
    fn collected(&self, r: &Row) -> bool {
        self.table.get(&r.spec.id).is_none() && self.gc.covers(r)
    }

    /// Merges one row unless it is a collected child's.
    fn merge_row(&mut self, r: Row, wall_ns: u64, changed: &mut Vec<String>) {
        self.clock.observe(&r.stamp, wall_ns);
        if self.collected(&r) {
            return;
        }
        self.merge_unguarded(r, changed);
    }

    fn merge_unguarded(&mut self, r: Row, changed: &mut Vec<String>) {
        let id = r.spec.id.clone();
        if self.table.merge(r) {
            changed.push(id);
        }
    }
}

impl Replicated for TableSync<'_> {
    type Delta = Vec<Row>;
    type Digest = TableDigest;
    type Part = TablePart;
    type Change = String;

    fn apply_delta(&mut self, from: &str, rows: Vec<Row>, wall_ns: u64) -> Merged<String> {
        // A gap anywhere: nothing of it is merged, the sender's table is pulled instead.
        if !self.gc.in_order(from, &rows) {
            return Merged::Gap;
        }
        let mut changed = Vec::new();
        for r in rows {
            // Guarded first, then counted as seen: the row itself is not yet covered.
            self.clock.observe(&r.stamp, wall_ns);
            let collected = self.collected(&r);
            self.gc.on_delta_row(from, &r);
            if !collected {
                self.merge_unguarded(r, &mut changed);
            }
        }
        Merged::Applied(changed)
    }

    fn digest(&self) -> TableDigest {
        let (rows, sum) = self.table.summary();
        TableDigest { rows, sum }
    }

    fn compare(&self, _: &str, theirs: &TableDigest) -> Verdict {
        if *theirs == self.digest() {
            Verdict::InSync
        } else {
            Verdict::SendMine
        }
    }

    fn summary(&self) -> u64 {
        let (rows, sum) = self.table.summary();
        crate::hash::StableHash::default()
            .u64(rows)
            .u64(sum)
            .finish()
    }

    fn parts(&self) -> Vec<TablePart> {
        let rows: Vec<Row> = self.table.rows().cloned().collect();
        let mut chunks: Vec<Vec<Row>> =
            rows.chunks(ROWS_PER_MESSAGE).map(<[Row]>::to_vec).collect();
        if chunks.is_empty() {
            // An empty table still tells the peer what this node has seen.
            chunks.push(Vec::new());
        }
        let total = chunks.len() as u32;
        let last = total - 1;
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, rows)| TablePart {
                rows,
                index: i as u32,
                total,
                seen: if i as u32 == last {
                    self.gc.vector()
                } else {
                    Vec::new()
                },
            })
            .collect()
    }

    fn apply_part(&mut self, from: &str, part: TablePart, wall_ns: u64) -> Vec<String> {
        let mut changed = Vec::new();
        for r in part.rows {
            self.merge_row(r, wall_ns, &mut changed);
        }
        if self.gc.part_arrived(from, part.index, part.total) {
            self.gc.merge_vector(part.seen);
        }
        changed
    }
}

/// How long a peer whose digest differs waits between two copies of this node's table.
pub(super) const FULL_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

pub(super) fn replicator(me: &str) -> Replicator {
    Replicator::new(me, FULL_MIN_INTERVAL)
}

fn effects(sync: Vec<SyncOut<TableMsg>>, out: &mut Vec<SupEffect>) {
    for o in sync {
        match o {
            SyncOut::Broadcast(m) => out.push(SupEffect::Broadcast(SupPeerMsg::Table(m))),
            SyncOut::Send(n, m) => out.push(SupEffect::Send(n, SupPeerMsg::Table(m))),
            // The table's truth is its replicas.
            SyncOut::Refresh => {}
        }
    }
}

impl SupervisorCore {
    fn table_sync(&mut self) -> (TableSync<'_>, &mut Replicator) {
        (
            TableSync {
                table: &mut self.table,
                clock: &mut self.clock,
                gc: &mut self.gc,
            },
            &mut self.sync,
        )
    }

    /// Rows changed here: send them to every peer.
    pub(super) fn rows_changed(&self, rows: &[Row], out: &mut Vec<SupEffect>) {
        for chunk in rows.chunks(ROWS_PER_MESSAGE) {
            effects(vec![self.sync.delta::<TableSync<'_>>(chunk.to_vec())], out);
        }
    }

    /// A table message from a peer; marks the core dirty when rows changed.
    pub(super) fn on_table(&mut self, now: Now, msg: TableMsg, out: &mut Vec<SupEffect>) {
        let (mut state, sync) = self.table_sync();
        let synced = sync.on_message(&mut state, now.mono, now.wall_ns, msg);
        effects(synced.out, out);
        self.dirty |= !synced.changes.is_empty();
    }

    /// A peer came up: it gets this node's table.
    pub(super) fn table_to_new_peer(&mut self, node: &str, out: &mut Vec<SupEffect>) {
        let (state, sync) = self.table_sync();
        effects(sync.on_peer_up(&state, node), out);
    }

    /// The summary this node announces on its membership probes.
    pub fn table_summary(&mut self) -> u64 {
        let (state, _) = self.table_sync();
        state.summary()
    }

    /// Anti-entropy: `peer` announced its table's summary.
    pub fn on_table_summary(&mut self, now: Now, peer: &str, theirs: u64) -> Vec<SupEffect> {
        let mut out = Vec::new();
        let (state, sync) = self.table_sync();
        effects(sync.on_summary(&state, peer, theirs, now.mono), &mut out);
        out
    }
}
