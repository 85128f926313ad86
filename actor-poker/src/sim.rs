//! The table simulator, sans-IO: it plays a tournament's hands from a seeded RNG and says what
//! each hand writes (the table documents it changed) and sends (the [`HandFinished`] event).
//!
//! A hand: antes and blinds are posted (they rise every `hands_per_level` hands of the
//! tournament), players enter or fold in turn (short stacks shove more often), those in call the
//! largest bet up to their stacks, one of them wins, side pots are respected (nobody wins more
//! from a player than they put in themselves), and players left without chips bust. After the
//! hand, tables are balanced as real tournaments do: a table is broken up when the others can
//! seat its players, and a table with two fewer players than another takes one of them. Each
//! hand's randomness is seeded from (seed, tournament, sequence number), so a simulator resumed
//! from the database plays exactly the hands the first one would have.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::{
    Bust, BustDoc, HandFinished, HandLog, Seat, SeatDoc, TableDoc, TournamentInfo,
    TournamentSnapshot, TournamentStatus,
};

/// How a simulated tournament is played.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Players.
    pub players: u32,
    /// Chips each starts with.
    pub starting_stack: u64,
    /// Seats per table.
    pub seats: u32,
    /// Hands (tournament-wide) per blind level.
    pub hands_per_level: u64,
    /// Multiplies the chance that a player who enters a hand goes all-in.
    pub aggression: f64,
    /// RNG seed.
    pub seed: u64,
}

impl SimConfig {
    /// A tournament of `players` with 10,000 chips each, 9-handed, about ten hands per table
    /// per blind level.
    pub fn new(players: u32) -> Self {
        let tables = u64::from(players.div_ceil(9).max(1));
        Self {
            players,
            starting_stack: 10_000,
            seats: 9,
            hands_per_level: 10 * tables,
            aggression: 1.0,
            seed: 0,
        }
    }

    /// A turbo: blinds rise three times as fast and players shove more.
    pub fn turbo(mut self) -> Self {
        self.hands_per_level = (self.hands_per_level / 3).max(1);
        self.aggression = 3.0;
        self
    }

    /// A hyper-turbo: blinds rise every hand per table and players shove often; a 1,000-player
    /// tournament ends in about 1,400 hands (a regular one takes about 8,500).
    pub fn hyper(mut self) -> Self {
        self.hands_per_level = u64::from(self.players.div_ceil(self.seats.max(2)).max(1));
        self.aggression = 8.0;
        self
    }

    /// With this seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// What one hand writes and sends.
#[derive(Debug, Clone, PartialEq)]
pub struct HandWrite {
    /// The event for the ranking actor.
    pub event: HandFinished,
    /// The table documents the hand changed (its table, and tables balancing touched).
    pub docs: Vec<TableDoc>,
}

/// A tournament being played.
#[derive(Debug, Clone)]
pub struct TournamentSim {
    id: u64,
    cfg: SimConfig,
    tables: BTreeMap<u32, TableDoc>,
    seq: u64,
    alive: u32,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64's finalizer
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A player's display name.
pub fn player_name(player: u32) -> String {
    format!("player-{player:05}")
}

const HISTORY: usize = 10;

impl TournamentSim {
    /// A new tournament: players seated round-robin over `ceil(players / seats)` tables.
    pub fn new(id: u64, cfg: SimConfig) -> Self {
        let seats = cfg.seats.max(2);
        let ntables = cfg.players.div_ceil(seats).max(1);
        let mut tables: BTreeMap<u32, TableDoc> = (0..ntables)
            .map(|t| {
                (
                    t,
                    TableDoc {
                        table: t,
                        hand_no: 0,
                        seq: 0,
                        button: 0,
                        seats: Vec::new(),
                        busted: Vec::new(),
                        closed: false,
                        history: Vec::new(),
                    },
                )
            })
            .collect();
        for p in 0..cfg.players {
            if let Some(t) = tables.get_mut(&(p % ntables)) {
                t.seats.push(SeatDoc {
                    player: p,
                    name: player_name(p),
                    stack: cfg.starting_stack,
                });
            }
        }
        Self {
            id,
            cfg: SimConfig { seats, ..cfg },
            tables,
            seq: 0,
            alive: cfg.players,
        }
    }

    /// Carries on a tournament from what the database holds.
    pub fn resume(cfg: SimConfig, snap: &TournamentSnapshot) -> Self {
        let alive = snap
            .player_states()
            .iter()
            .filter(|s| s.is_some_and(|s| s.bust.is_none()))
            .count() as u32;
        Self {
            id: snap.info.id,
            cfg: SimConfig {
                players: snap.info.players,
                starting_stack: snap.info.starting_stack,
                seats: cfg.seats.max(2),
                ..cfg
            },
            tables: snap.tables.iter().map(|t| (t.table, t.clone())).collect(),
            seq: snap.info.seq,
            alive,
        }
    }

    /// The tournament's row as it stands.
    pub fn info(&self, name: &str) -> TournamentInfo {
        TournamentInfo {
            id: self.id,
            name: name.to_owned(),
            players: self.cfg.players,
            starting_stack: self.cfg.starting_stack,
            status: if self.is_finished() {
                TournamentStatus::Finished
            } else {
                TournamentStatus::Running
            },
            seq: self.seq,
        }
    }

    /// The tournament id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Every table document.
    pub fn tables(&self) -> impl Iterator<Item = &TableDoc> {
        self.tables.values()
    }

    /// The snapshot the database would hold now.
    pub fn snapshot(&self, name: &str) -> TournamentSnapshot {
        TournamentSnapshot {
            info: self.info(name),
            tables: self.tables.values().cloned().collect(),
        }
    }

    /// Sequence number of the last hand.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Players still in.
    pub fn alive(&self) -> u32 {
        self.alive
    }

    /// One player is left (or none ever were).
    pub fn is_finished(&self) -> bool {
        self.alive <= 1
    }

    fn big_blind(&self) -> u64 {
        let level = (self.seq.saturating_sub(1)) / self.cfg.hands_per_level.max(1);
        let mut bb = (self.cfg.starting_stack / 100).max(2);
        let cap = self
            .cfg
            .starting_stack
            .saturating_mul(u64::from(self.cfg.players));
        for _ in 0..level {
            bb = (bb.saturating_mul(3) / 2).min(cap);
        }
        bb
    }

    /// Plays the next hand; `None` once the tournament is over.
    pub fn play_hand(&mut self) -> Option<HandWrite> {
        if self.is_finished() {
            return None;
        }
        let tno = self
            .tables
            .values()
            .filter(|t| !t.closed && t.seats.len() >= 2)
            .min_by_key(|t| (t.hand_no, t.table))?
            .table;
        self.seq += 1;
        let seq = self.seq;
        let mut rng = StdRng::seed_from_u64(mix(self.cfg.seed ^ mix(self.id ^ mix(seq))));
        let bb = self.big_blind();
        let sb = bb / 2;
        let level = (seq - 1) / self.cfg.hands_per_level.max(1);
        let ante = if level >= 2 { bb / 8 } else { 0 };
        let aggression = self.cfg.aggression;
        let t = self.tables.get_mut(&tno)?;
        let n = t.seats.len();
        let start: Vec<u64> = t.seats.iter().map(|s| s.stack).collect();
        let mut contrib = vec![0u64; n];
        let post = |contrib: &mut Vec<u64>, i: usize, amount: u64| {
            let a = amount.min(start[i] - contrib[i]);
            contrib[i] += a;
        };
        for i in 0..n {
            post(&mut contrib, i, ante);
        }
        let button = t.button as usize % n;
        let (sbp, bbp) = if n == 2 {
            (button, (button + 1) % n)
        } else {
            ((button + 1) % n, (button + 2) % n)
        };
        post(&mut contrib, sbp, sb);
        post(&mut contrib, bbp, bb);
        let mut actions = Vec::with_capacity(n + 1);
        let mut inn = vec![false; n];
        for k in 1..=n {
            let i = (bbp + k) % n;
            let name = &t.seats[i].name;
            if contrib[i] == start[i] {
                inn[i] = true;
                actions.push(format!("{name} is all-in for {}", contrib[i]));
                continue;
            }
            let short = start[i] < 10 * bb;
            let mut p_enter = if short { 0.45 } else { 0.2 };
            if i == bbp {
                p_enter += 0.3;
            }
            if rng.random_bool(p_enter) {
                inn[i] = true;
                let p_shove = if short {
                    0.85
                } else {
                    (0.05 * aggression).min(1.0)
                };
                if rng.random_bool(p_shove) {
                    post(&mut contrib, i, start[i]);
                    actions.push(format!("{name} goes all-in for {}", contrib[i]));
                } else {
                    let to = bb * rng.random_range(2..=5u64);
                    let more = to.saturating_sub(contrib[i]);
                    post(&mut contrib, i, more);
                    actions.push(format!("{name} raises to {}", contrib[i]));
                }
            } else {
                actions.push(format!("{name} folds"));
            }
        }
        let mut ins: Vec<usize> = (0..n).filter(|i| inn[*i]).collect();
        if ins.is_empty() {
            ins.push(bbp);
            inn[bbp] = true;
        }
        // Those in call the largest bet, up to their stacks.
        let top = ins.iter().map(|i| contrib[*i]).max().unwrap_or(0);
        for i in &ins {
            let want = top.min(start[*i]);
            contrib[*i] = contrib[*i].max(want);
        }
        let w = ins[rng.random_range(0..ins.len())];
        let mut won = 0u64;
        let mut pot = contrib[w];
        let mut after = start.clone();
        for j in 0..n {
            if j == w {
                continue;
            }
            let paid = if inn[j] {
                contrib[j].min(contrib[w])
            } else {
                contrib[j]
            };
            after[j] = start[j] - paid;
            won += paid;
            pot += paid;
        }
        after[w] = start[w] + won;
        actions.push(format!("{} wins {pot}", t.seats[w].name));
        let hand_no = t.hand_no + 1;
        let winner = t.seats[w].player;
        let mut busted = Vec::new();
        let mut kept = Vec::with_capacity(n);
        for (j, mut seat) in std::mem::take(&mut t.seats).into_iter().enumerate() {
            seat.stack = after[j];
            if seat.stack == 0 {
                busted.push(Bust {
                    player: seat.player,
                    start_stack: start[j],
                });
                t.busted.push(BustDoc {
                    player: seat.player,
                    seq,
                    start_stack: start[j],
                    hand_no,
                });
                actions.push(format!("{} busts", seat.name));
            } else {
                kept.push(seat);
            }
        }
        t.seats = kept;
        t.hand_no = hand_no;
        t.seq = seq;
        t.button = (button as u32 + 1) % (t.seats.len().max(1) as u32);
        t.history.push(HandLog {
            hand_no,
            seq,
            blinds: (sb, bb, ante),
            pot,
            winner,
            actions,
        });
        if t.history.len() > HISTORY {
            t.history.remove(0);
        }
        self.alive -= busted.len() as u32;
        let mut touched = BTreeSet::from([tno]);
        if !self.is_finished() {
            self.balance(&mut touched);
        }
        let mut stacks = Vec::new();
        let mut docs = Vec::with_capacity(touched.len());
        for tn in touched {
            if let Some(doc) = self.tables.get_mut(&tn) {
                doc.seq = seq;
                stacks.extend(doc.seats.iter().map(|s| Seat {
                    player: s.player,
                    table: tn,
                    stack: s.stack,
                }));
                docs.push(doc.clone());
            }
        }
        Some(HandWrite {
            event: HandFinished {
                tournament: self.id,
                table: tno,
                hand_no,
                seq,
                stacks,
                busted,
                finished: self.is_finished(),
            },
            docs,
        })
    }

    /// Breaks tables the others can absorb, then evens out table sizes.
    fn balance(&mut self, touched: &mut BTreeSet<u32>) {
        let seats = self.cfg.seats as usize;
        let needed = (self.alive as usize).div_ceil(seats).max(1);
        loop {
            let open: Vec<(usize, u32)> = self
                .tables
                .values()
                .filter(|t| !t.closed)
                .map(|t| (t.seats.len(), t.table))
                .collect();
            if open.len() > needed {
                // Break the smallest table (the highest number among equals).
                let Some(&(_, victim)) = open.iter().min_by_key(|(n, t)| (*n, u32::MAX - *t))
                else {
                    return;
                };
                let moving = match self.tables.get_mut(&victim) {
                    Some(v) => {
                        v.closed = true;
                        std::mem::take(&mut v.seats)
                    }
                    None => return,
                };
                touched.insert(victim);
                for seat in moving {
                    let Some(dest) = self
                        .tables
                        .values_mut()
                        .filter(|t| !t.closed)
                        .min_by_key(|t| (t.seats.len(), t.table))
                    else {
                        return;
                    };
                    touched.insert(dest.table);
                    dest.seats.push(seat);
                }
                continue;
            }
            let (Some(&(small_n, small)), Some(&(big_n, big))) = (
                open.iter().min_by_key(|(n, t)| (*n, *t)),
                open.iter().max_by_key(|(n, t)| (*n, u32::MAX - *t)),
            ) else {
                return;
            };
            if big_n < small_n + 2 {
                return;
            }
            let Some(seat) = self.tables.get_mut(&big).and_then(|t| t.seats.pop()) else {
                return;
            };
            if let Some(t) = self.tables.get_mut(&small) {
                t.seats.push(seat);
            }
            touched.insert(big);
            touched.insert(small);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chips_are_conserved_and_the_tournament_ends() {
        let cfg = SimConfig::new(200).turbo().seed(7);
        let mut sim = TournamentSim::new(1, cfg);
        let total = 200 * cfg.starting_stack;
        let mut hands = 0;
        let mut busts = 0;
        while let Some(w) = sim.play_hand() {
            hands += 1;
            busts += w.event.busted.len();
            let chips: u64 = sim
                .tables()
                .flat_map(|t| t.seats.iter())
                .map(|s| s.stack)
                .sum();
            assert_eq!(chips, total);
            for t in sim.tables().filter(|t| !t.closed) {
                assert!(t.seats.len() <= 9);
            }
            assert!(hands < 100_000);
        }
        assert_eq!(busts, 199);
        assert_eq!(sim.alive(), 1);
        let snap = sim.snapshot("t");
        let standings = snap.recompute();
        assert_eq!(standings.len(), 200);
        assert_eq!(standings[0].stack, total);
        assert!(standings[1..].iter().all(|r| r.busted));
    }

    #[test]
    fn the_same_seed_plays_the_same_hands_and_resume_carries_on_identically() {
        let cfg = SimConfig::new(100).turbo().seed(3);
        let mut a = TournamentSim::new(9, cfg);
        let mut b = TournamentSim::new(9, cfg);
        for _ in 0..50 {
            assert_eq!(a.play_hand(), b.play_hand());
        }
        let mut c = TournamentSim::resume(cfg, &a.snapshot("t"));
        while let Some(w) = a.play_hand() {
            assert_eq!(Some(w), c.play_hand());
        }
        assert!(c.play_hand().is_none());
    }
}
