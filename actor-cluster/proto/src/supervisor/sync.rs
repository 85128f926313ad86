//! The child table as a replicated service: rows travel as deltas when they change, each node
//! announces a summary of its table on the membership probes, a peer whose summary differs
//! gets this node's digest (row count and newest stamp), and a peer whose digest differs
//! gets this node's whole table (at most once per [`FULL_MIN_INTERVAL`]). Both sides of a
//! difference send theirs when they see the other's digest, and rows merge last-writer-wins by
//! stamp, so they converge.

use actor_core_base::hlc::{Hlc, Stamp};
use serde::{Deserialize, Serialize};

use super::{ChildTable, Row, SupEffect, SupPeerMsg, SupervisorCore, ROWS_PER_MESSAGE};
use crate::replication::{Merged, Replicated, Replicator, SyncMsg, SyncOut, Verdict};
use crate::Now;

/// A child table's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDigest {
    /// Rows in the table (tombstones included).
    pub rows: u64,
    /// The newest stamp.
    pub newest: Stamp,
}

/// The child table's messages (the replication skeleton's, see [`crate::replication`]).
pub type TableMsg = SyncMsg<Vec<Row>, TableDigest, Vec<Row>>;

/// The table and the clock its rows are merged into, for the skeleton.
pub(super) struct TableSync<'a> {
    pub(super) table: &'a mut ChildTable,
    pub(super) clock: &'a mut Hlc,
}

impl TableSync<'_> {
    fn merge(&mut self, rows: Vec<Row>, wall_ns: u64) -> Vec<String> {
        let mut changed = Vec::new();
        for r in rows {
            self.clock.observe(&r.stamp, wall_ns);
            let id = r.spec.id.clone();
            if self.table.merge(r) {
                changed.push(id);
            }
        }
        changed
    }
}

impl Replicated for TableSync<'_> {
    type Delta = Vec<Row>;
    type Digest = TableDigest;
    type Part = Vec<Row>;
    type Change = String;

    fn apply_delta(&mut self, _: &str, rows: Vec<Row>, wall_ns: u64) -> Merged<String> {
        Merged::Applied(self.merge(rows, wall_ns))
    }

    fn digest(&self) -> TableDigest {
        let (rows, newest) = self.table.digest();
        TableDigest { rows, newest }
    }

    fn compare(&self, _: &str, theirs: &TableDigest) -> Verdict {
        if *theirs == self.digest() {
            Verdict::InSync
        } else {
            Verdict::SendMine
        }
    }

    fn summary(&self) -> u64 {
        let (rows, newest) = self.table.digest();
        let stamp = actor_core_base::codec::encode(&newest).unwrap_or_default();
        crate::hash::StableHash::default()
            .u64(rows)
            .bytes(&stamp)
            .finish()
    }

    fn parts(&self) -> Vec<Vec<Row>> {
        let rows: Vec<Row> = self.table.rows().cloned().collect();
        rows.chunks(ROWS_PER_MESSAGE).map(<[Row]>::to_vec).collect()
    }

    fn apply_part(&mut self, _: &str, rows: Vec<Row>, wall_ns: u64) -> Vec<String> {
        self.merge(rows, wall_ns)
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
