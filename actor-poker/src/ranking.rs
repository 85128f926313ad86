//! The incremental ranking: a tournament's standings kept in memory and updated per finished hand
//! in O(k log n) for the k players the hand touched. Sans-IO: the actor in [`crate::actor`] only
//! wires it to a mailbox and the database.
//!
//! Events may arrive twice, late, or out of order (a retried send, a failover). Each player's
//! state is last-writer-wins by the write's sequence number, so applying any permutation of a
//! set of events, with duplicates, gives the same standings as applying them in order; the
//! sequence numbers seen so far also tell which writes are still missing, so the owner knows
//! when it must re-read the database.

use std::collections::BTreeSet;

use crate::model::{
    key_player, sort_key, HandFinished, PlayerState, StandingRow, TournamentSnapshot,
};
use crate::order::OrderStat;

/// The sequence numbers applied so far: every number up to `through`, and some above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqTracker {
    through: u64,
    above: BTreeSet<u64>,
}

impl SeqTracker {
    /// Everything up to and including `through` is known.
    pub fn starting_at(through: u64) -> Self {
        Self {
            through,
            above: BTreeSet::new(),
        }
    }

    /// Records `seq`; false if it was already known.
    pub fn insert(&mut self, seq: u64) -> bool {
        if seq == self.through + 1 && self.above.is_empty() {
            self.through = seq;
            return true;
        }
        if seq <= self.through || !self.above.insert(seq) {
            return false;
        }
        while self.above.first() == Some(&(self.through + 1)) {
            self.above.pop_first();
            self.through += 1;
        }
        true
    }

    /// Whether `seq` is known.
    pub fn contains(&self, seq: u64) -> bool {
        seq <= self.through || self.above.contains(&seq)
    }

    /// Every sequence number up to this one is known.
    pub fn through(&self) -> u64 {
        self.through
    }

    /// The highest known sequence number.
    pub fn highest(&self) -> u64 {
        self.above.last().copied().unwrap_or(self.through)
    }

    /// Some number below the highest is missing.
    pub fn has_gap(&self) -> bool {
        !self.above.is_empty()
    }
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// New; this many players changed place or stack.
    New(usize),
    /// A write this ranking already has (a retried or replayed send).
    Duplicate,
}

/// Why an event was refused (nothing of it was applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RankingError {
    /// The event is for another tournament.
    #[error("event for tournament {got}, this ranking is {want}")]
    WrongTournament {
        /// The event's tournament.
        got: u64,
        /// This ranking's.
        want: u64,
    },
    /// A player id outside the tournament.
    #[error("player {0} is not in this tournament")]
    UnknownPlayer(u32),
    /// A sequence number of 0, or a stack too large to rank.
    #[error("malformed event: {0}")]
    Malformed(&'static str),
}

/// A per-table record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TableProgress {
    /// The table's latest hand number seen.
    pub hand_no: u64,
    /// The sequence number of that hand.
    pub seq: u64,
}

const LIMIT: u64 = 1 << 47;

/// A ranking as it moves to another node on a planned move: everything but the sorted index,
/// which the next node rebuilds (no database read).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RankingHandoff {
    tournament: u64,
    players: Vec<PlayerState>,
    tables: Vec<TableProgress>,
    through: u64,
    above: Vec<u64>,
    final_seq: Option<u64>,
}

/// A tournament's standings, kept incrementally.
#[derive(Debug, Clone)]
pub struct Ranking {
    tournament: u64,
    players: Vec<PlayerState>,
    order: OrderStat,
    tables: Vec<TableProgress>,
    seqs: SeqTracker,
    alive: u32,
    final_seq: Option<u64>,
    changed: Vec<u32>,
}

impl Ranking {
    /// The standings as the snapshot has them. A player who appears in no document is ranked as
    /// busted at sequence 0 (a well-formed tournament has none).
    pub fn from_snapshot(snap: &TournamentSnapshot) -> Self {
        let players: Vec<PlayerState> = snap
            .player_states()
            .into_iter()
            .map(|s| {
                s.unwrap_or(PlayerState {
                    seq: 0,
                    stack: 0,
                    table: 0,
                    bust: Some((0, 0)),
                })
            })
            .collect();
        let keys = players
            .iter()
            .enumerate()
            .map(|(i, p)| sort_key(i as u32, p))
            .collect();
        let mut tables = Vec::new();
        for t in &snap.tables {
            let i = t.table as usize;
            if i < players.len().max(1) {
                if tables.len() <= i {
                    tables.resize(i + 1, TableProgress::default());
                }
                tables[i] = TableProgress {
                    hand_no: t.hand_no,
                    seq: t.seq,
                };
            }
        }
        let alive = players.iter().filter(|p| p.bust.is_none()).count() as u32;
        Self {
            tournament: snap.info.id,
            order: OrderStat::from_keys(keys),
            players,
            tables,
            seqs: SeqTracker::starting_at(snap.info.seq),
            alive,
            final_seq: (snap.info.status == crate::model::TournamentStatus::Finished)
                .then_some(snap.info.seq),
            changed: Vec::new(),
        }
    }

    /// Its state for a planned move ([`Ranking::from_handoff`] on the next node).
    pub fn handoff(&self) -> RankingHandoff {
        RankingHandoff {
            tournament: self.tournament,
            players: self.players.clone(),
            tables: self.tables.clone(),
            through: self.seqs.through,
            above: self.seqs.above.iter().copied().collect(),
            final_seq: self.final_seq,
        }
    }

    /// The ranking a planned move handed over (the same standings, the same holes).
    pub fn from_handoff(h: RankingHandoff) -> Self {
        let keys = h
            .players
            .iter()
            .enumerate()
            .map(|(i, p)| sort_key(i as u32, p))
            .collect();
        let alive = h.players.iter().filter(|p| p.bust.is_none()).count() as u32;
        Self {
            tournament: h.tournament,
            order: OrderStat::from_keys(keys),
            players: h.players,
            tables: h.tables,
            seqs: SeqTracker {
                through: h.through,
                above: h.above.into_iter().collect(),
            },
            alive,
            final_seq: h.final_seq,
            changed: Vec::new(),
        }
    }

    /// The tournament.
    pub fn tournament(&self) -> u64 {
        self.tournament
    }

    /// Number of players.
    pub fn players(&self) -> u32 {
        self.players.len() as u32
    }

    /// Players still in.
    pub fn alive(&self) -> u32 {
        self.alive
    }

    /// The sequence numbers applied.
    pub fn seqs(&self) -> &SeqTracker {
        &self.seqs
    }

    /// The sequence number of the tournament's last hand, once the event that ended it arrived.
    pub fn final_seq(&self) -> Option<u64> {
        self.final_seq
    }

    /// Every hand up to the last one is applied: the standings are final.
    pub fn is_complete(&self) -> bool {
        self.final_seq
            .is_some_and(|f| self.seqs.through() >= f && !self.seqs.has_gap())
    }

    /// A table's latest hand.
    pub fn table(&self, table: u32) -> Option<TableProgress> {
        self.tables
            .get(table as usize)
            .copied()
            .filter(|t| t.seq > 0)
    }

    /// Applies a finished hand. O(k log n) for the k players it touched; nothing is applied if
    /// the event is refused.
    pub fn apply(&mut self, ev: &HandFinished) -> Result<Applied, RankingError> {
        if ev.tournament != self.tournament {
            return Err(RankingError::WrongTournament {
                got: ev.tournament,
                want: self.tournament,
            });
        }
        if ev.seq == 0 || ev.seq >= LIMIT {
            return Err(RankingError::Malformed("sequence number out of range"));
        }
        let n = self.players.len() as u32;
        // A tournament never has more tables than players.
        if ev.table >= n.max(1) {
            return Err(RankingError::Malformed("table number out of range"));
        }
        for s in &ev.stacks {
            if s.table >= n.max(1) {
                return Err(RankingError::Malformed("table number out of range"));
            }
            if s.player >= n {
                return Err(RankingError::UnknownPlayer(s.player));
            }
            if s.stack >= LIMIT {
                return Err(RankingError::Malformed("stack out of range"));
            }
        }
        for b in &ev.busted {
            if b.player >= n {
                return Err(RankingError::UnknownPlayer(b.player));
            }
        }
        if !self.seqs.insert(ev.seq) {
            return Ok(Applied::Duplicate);
        }
        let ti = ev.table as usize;
        if self.tables.len() <= ti {
            self.tables.resize(ti + 1, TableProgress::default());
        }
        let t = &mut self.tables[ti];
        if ev.seq > t.seq {
            *t = TableProgress {
                hand_no: ev.hand_no,
                seq: ev.seq,
            };
        }
        if ev.finished {
            self.final_seq = Some(ev.seq);
        }
        let before = self.changed.len();
        for s in &ev.stacks {
            self.set(
                s.player,
                PlayerState {
                    seq: ev.seq,
                    stack: s.stack,
                    table: s.table,
                    bust: None,
                },
            );
        }
        for b in &ev.busted {
            self.set(
                b.player,
                PlayerState {
                    seq: ev.seq,
                    stack: 0,
                    table: ev.table,
                    bust: Some((ev.seq, b.start_stack.min(LIMIT - 1))),
                },
            );
        }
        Ok(Applied::New(self.changed.len() - before))
    }

    fn set(&mut self, player: u32, new: PlayerState) {
        let cur = self.players[player as usize];
        if new.seq <= cur.seq {
            return;
        }
        let (old_key, new_key) = (sort_key(player, &cur), sort_key(player, &new));
        if old_key != new_key {
            self.order.replace(old_key, new_key);
            self.changed.push(player);
        } else if new.table != cur.table {
            self.changed.push(player);
        }
        match (cur.bust.is_some(), new.bust.is_some()) {
            (false, true) => self.alive -= 1,
            (true, false) => self.alive += 1,
            _ => {}
        }
        self.players[player as usize] = new;
    }

    /// Players whose row changed since the last call, each once.
    pub fn take_changed(&mut self) -> Vec<u32> {
        let mut v = std::mem::take(&mut self.changed);
        v.sort_unstable();
        v.dedup();
        v
    }

    fn row(&self, player: u32, position: usize) -> StandingRow {
        let p = &self.players[player as usize];
        StandingRow {
            position: position as u32 + 1,
            player,
            stack: p.stack,
            table: p.table,
            busted: p.bust.is_some(),
        }
    }

    /// A player's row (O(log n)).
    pub fn rank_of(&self, player: u32) -> Option<StandingRow> {
        let p = self.players.get(player as usize)?;
        let pos = self.order.rank(sort_key(player, p))?;
        let n = self.players.len();
        Some(self.row(player, n - 1 - pos))
    }

    /// Rows `offset..offset + limit` of the standings (O(log n + limit)).
    pub fn range(&self, offset: u32, limit: u32) -> Vec<StandingRow> {
        let n = self.players.len();
        let offset = offset as usize;
        if offset >= n || limit == 0 {
            return Vec::new();
        }
        let last = (offset + limit as usize).min(n);
        // The set is ascending and the best key is the highest, so position p is at index
        // n - 1 - p: walk down from the highest key wanted.
        let start = n - last;
        let mut keys: Vec<u128> = self.order.iter_from(start).take(last - offset).collect();
        keys.reverse();
        keys.into_iter()
            .enumerate()
            .map(|(i, k)| self.row(key_player(k), offset + i))
            .collect()
    }

    /// The whole standings.
    pub fn standings(&self) -> Vec<StandingRow> {
        self.range(0, self.players.len() as u32)
    }

    /// Bytes on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.players.capacity() * std::mem::size_of::<PlayerState>()
            + self.order.heap_bytes()
            + self.tables.capacity() * std::mem::size_of::<TableProgress>()
            + self.changed.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seq_tracker_fills_gaps() {
        let mut s = SeqTracker::starting_at(3);
        assert!(!s.insert(2));
        assert!(s.insert(5));
        assert!(s.has_gap());
        assert_eq!((s.through(), s.highest()), (3, 5));
        assert!(!s.insert(5));
        assert!(s.insert(4));
        assert!(!s.has_gap());
        assert_eq!(s.through(), 5);
    }

    #[test]
    fn a_handed_off_ranking_has_the_same_standings_and_holes() {
        use crate::sim::{SimConfig, TournamentSim};
        let mut sim = TournamentSim::new(7, SimConfig::new(60).hyper().seed(7));
        let mut r = Ranking::from_snapshot(&sim.snapshot("t"));
        let mut n = 0;
        while let Some(w) = sim.play_hand() {
            n += 1;
            // Leave a hole: every fifth hand is not applied.
            if n % 5 != 0 {
                r.apply(&w.event).unwrap();
            }
            if n == 40 {
                break;
            }
        }
        let moved = Ranking::from_handoff(r.handoff());
        assert_eq!(moved.standings(), r.standings());
        assert_eq!(moved.seqs(), r.seqs());
        assert!(moved.seqs().has_gap());
        assert_eq!((moved.alive(), moved.players()), (r.alive(), r.players()));
    }
}
