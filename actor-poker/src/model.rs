//! The tournament model: what the database stores (one JSON document per table), what a finished
//! hand sends to the ranking actor, and the full recomputation of standings that both the naive
//! design and the tests use as ground truth.
//!
//! Every write of a tournament (a hand, with the table balancing it caused) has a sequence
//! number, one more than the previous write's. A player's state is the one written at the highest
//! sequence: a player who moves between tables is removed from the old table's document and added
//! to the new one in the same write, so "latest write wins" per player is exact, whatever order
//! the events arrive in.

use serde::{Deserialize, Serialize};

/// A player's seat in a table document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatDoc {
    /// Player id, dense per tournament (`0..players`).
    pub player: u32,
    /// Display name.
    pub name: String,
    /// Chips.
    pub stack: u64,
}

/// A player who busted at this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BustDoc {
    /// Player id.
    pub player: u32,
    /// Sequence number of the hand they busted in.
    pub seq: u64,
    /// Their stack when that hand started (the bigger stack places higher on a shared bust).
    pub start_stack: u64,
    /// The table's hand number.
    pub hand_no: u64,
}

/// One hand in a table's recent history (kept for realism: services store it with the table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandLog {
    /// The table's hand number.
    pub hand_no: u64,
    /// The tournament sequence number of the hand.
    pub seq: u64,
    /// Small blind, big blind, ante.
    pub blinds: (u64, u64, u64),
    /// Chips in the pot.
    pub pot: u64,
    /// Who won it.
    pub winner: u32,
    /// What happened, in words.
    pub actions: Vec<String>,
}

/// A table's state: the JSON document stored in one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDoc {
    /// Table number within the tournament.
    pub table: u32,
    /// Hands played at this table.
    pub hand_no: u64,
    /// Sequence number of the write that last changed this document.
    pub seq: u64,
    /// Seat index of the button.
    pub button: u32,
    /// Players seated, in seat order.
    pub seats: Vec<SeatDoc>,
    /// Players who busted here.
    pub busted: Vec<BustDoc>,
    /// Broken up by table balancing.
    pub closed: bool,
    /// The last hands played here, newest last.
    pub history: Vec<HandLog>,
}

/// A player's state as a hand sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// Player id.
    pub player: u32,
    /// Table they sit at after the write.
    pub table: u32,
    /// Chips.
    pub stack: u64,
}

/// A player who busted in a hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bust {
    /// Player id.
    pub player: u32,
    /// Their stack when the hand started.
    pub start_stack: u64,
}

/// A finished hand, as the table simulator sends it to the tournament's ranking actor after it
/// has written it to the database. It carries the state of every player the write touched
/// (everyone at the hand's table, and everyone table balancing moved), so it says exactly what
/// the database now says about them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandFinished {
    /// Tournament id.
    pub tournament: u64,
    /// The table the hand was played at.
    pub table: u32,
    /// That table's hand number.
    pub hand_no: u64,
    /// The tournament-wide sequence number of the write (1, 2, ...).
    pub seq: u64,
    /// Every player the write set, with their stack and table.
    pub stacks: Vec<Seat>,
    /// Players busted in this hand.
    pub busted: Vec<Bust>,
    /// The hand ended the tournament (one player left).
    pub finished: bool,
}

/// Where a tournament is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TournamentStatus {
    /// Hands are being played.
    Running,
    /// One player is left.
    Finished,
}

impl TournamentStatus {
    /// The database's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
        }
    }

    /// Parses the database's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(Self::Running),
            "finished" => Some(Self::Finished),
            _ => None,
        }
    }
}

/// A tournament's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TournamentInfo {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Number of players (ids `0..players`).
    pub players: u32,
    /// Chips each player starts with.
    pub starting_stack: u64,
    /// Running or finished.
    pub status: TournamentStatus,
    /// Sequence number of the last write.
    pub seq: u64,
}

/// Everything the database holds about a tournament, read in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TournamentSnapshot {
    /// The tournament's row.
    pub info: TournamentInfo,
    /// Every table document, open or closed.
    pub tables: Vec<TableDoc>,
}

/// A player's latest state in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerState {
    /// Sequence number of the write that set it.
    pub seq: u64,
    /// Chips (0 once busted).
    pub stack: u64,
    /// Table (the last one, for a busted player).
    pub table: u32,
    /// Busted in the hand with this sequence number, with this starting stack.
    pub bust: Option<(u64, u64)>,
}

/// A player's row in the standings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingRow {
    /// 1-based position; for a busted player, the finishing position.
    pub position: u32,
    /// Player id.
    pub player: u32,
    /// Chips.
    pub stack: u64,
    /// Table (the last one, for a busted player).
    pub table: u32,
    /// Busted.
    pub busted: bool,
}

impl TournamentSnapshot {
    /// Every player's latest state (`None`: the player appears in no document, which a
    /// well-formed tournament never has). Players outside `0..players` are ignored.
    pub fn player_states(&self) -> Vec<Option<PlayerState>> {
        let mut out: Vec<Option<PlayerState>> = vec![None; self.info.players as usize];
        let mut set = |player: u32, st: PlayerState| {
            if let Some(slot) = out.get_mut(player as usize) {
                if slot.is_none_or(|cur| st.seq > cur.seq) {
                    *slot = Some(st);
                }
            }
        };
        for t in &self.tables {
            for s in &t.seats {
                set(
                    s.player,
                    PlayerState {
                        seq: t.seq,
                        stack: s.stack,
                        table: t.table,
                        bust: None,
                    },
                );
            }
            for b in &t.busted {
                set(
                    b.player,
                    PlayerState {
                        seq: b.seq,
                        stack: 0,
                        table: t.table,
                        bust: Some((b.seq, b.start_stack)),
                    },
                );
            }
        }
        out
    }

    /// The standings, computed from scratch: parse every table, take each player's latest state,
    /// sort. This is the ground truth the incremental ranking must equal.
    pub fn recompute(&self) -> Vec<StandingRow> {
        let mut rows: Vec<(u128, StandingRow)> = self
            .player_states()
            .into_iter()
            .enumerate()
            .filter_map(|(i, st)| {
                let st = st?;
                let player = i as u32;
                Some((
                    sort_key(player, &st),
                    StandingRow {
                        position: 0,
                        player,
                        stack: st.stack,
                        table: st.table,
                        busted: st.bust.is_some(),
                    },
                ))
            })
            .collect();
        rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
        rows.into_iter()
            .enumerate()
            .map(|(i, (_, mut r))| {
                r.position = i as u32 + 1;
                r
            })
            .collect()
    }
}

const MASK47: u128 = (1 << 47) - 1;
const MASK48: u128 = (1 << 48) - 1;

/// The order of the standings as one integer, higher is better: players still in (by stack,
/// then lower id) above busted players (later bust first, then the bigger stack at the start of
/// that hand, then lower id). Stacks and sequence numbers must stay below 2^47.
pub fn sort_key(player: u32, st: &PlayerState) -> u128 {
    let id = u128::from(!player);
    match st.bust {
        None => (1u128 << 127) | ((u128::from(st.stack) & MASK47) << 80) | id,
        Some((seq, start)) => {
            ((u128::from(seq) & MASK47) << 80) | ((u128::from(start) & MASK48) << 32) | id
        }
    }
}

/// The player id inside a sort key.
pub fn key_player(key: u128) -> u32 {
    !(key as u32)
}
