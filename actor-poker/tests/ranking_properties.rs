//! Property tests of the incremental ranking: after any sequence of events, duplicated and
//! reordered, from a load at any point, the standings equal a full recomputation from the
//! database's documents; and a missing event is always noticed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actor_poker::model::HandFinished;
use actor_poker::ranking::Applied;
use actor_poker::sim::HandWrite;
use actor_poker::{Ranking, SimConfig, TournamentSim};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// A whole tournament: the snapshot after every hand (index 0: before the first) and the
/// events.
fn play(
    players: u32,
    seed: u64,
    hyper: bool,
) -> (Vec<actor_poker::TournamentSnapshot>, Vec<HandFinished>) {
    let mut cfg = SimConfig::new(players).seed(seed);
    cfg = if hyper { cfg.hyper() } else { cfg.turbo() };
    let mut sim = TournamentSim::new(seed % 1000, cfg);
    let mut snaps = vec![sim.snapshot("t")];
    let mut events = Vec::new();
    while let Some(HandWrite { event, .. }) = sim.play_hand() {
        events.push(event);
        snaps.push(sim.snapshot("t"));
    }
    (snaps, events)
}

fn scrambled(events: &[HandFinished], rng: &mut StdRng, dup_rate: f64) -> Vec<HandFinished> {
    let mut out: Vec<HandFinished> = events.to_vec();
    for e in events {
        if rng.random_bool(dup_rate) {
            out.push(e.clone());
        }
    }
    out.shuffle(rng);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_order_with_duplicates_gives_the_recomputed_standings(
        players in 2u32..120,
        seed in any::<u64>(),
        shuffle in any::<u64>(),
        load_at in 0.0f64..1.0,
        dup_rate in 0.0f64..0.5,
        hyper in any::<bool>(),
    ) {
        let (snaps, events) = play(players, seed, hyper);
        let last = snaps.last().unwrap();
        prop_assert_eq!(events.len() + 1, snaps.len());
        // Load at some point of the tournament, then receive every event (the ones before the
        // load as duplicates), scrambled.
        let k = ((events.len() as f64) * load_at) as usize;
        let mut r = Ranking::from_snapshot(&snaps[k]);
        prop_assert_eq!(r.standings(), snaps[k].recompute());
        let mut rng = StdRng::seed_from_u64(shuffle);
        let mut new = 0;
        for e in scrambled(&events, &mut rng, dup_rate) {
            if let Applied::New(_) = r.apply(&e).unwrap() {
                new += 1;
            }
        }
        prop_assert_eq!(new, events.len() - k);
        prop_assert!(r.is_complete());
        let want = last.recompute();
        prop_assert_eq!(r.standings(), want.clone());
        for row in &want {
            prop_assert_eq!(r.rank_of(row.player), Some(*row));
        }
        prop_assert_eq!(r.alive(), 1);
    }

    #[test]
    fn in_order_every_prefix_equals_its_recomputation(
        players in 2u32..60,
        seed in any::<u64>(),
    ) {
        let (snaps, events) = play(players, seed, true);
        let mut r = Ranking::from_snapshot(&snaps[0]);
        for (i, e) in events.iter().enumerate() {
            r.apply(e).unwrap();
            prop_assert_eq!(r.standings(), snaps[i + 1].recompute(), "after hand {}", i + 1);
            prop_assert!(!r.seqs().has_gap());
        }
    }

    #[test]
    fn a_lost_event_is_always_noticed(
        players in 3u32..80,
        seed in any::<u64>(),
        shuffle in any::<u64>(),
        lost in 0.0f64..1.0,
    ) {
        let (snaps, events) = play(players, seed, true);
        let mut r = Ranking::from_snapshot(&snaps[0]);
        let drop = ((events.len() as f64) * lost) as usize;
        let mut rest: Vec<HandFinished> = events.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, e)| e.clone()).collect();
        rest.shuffle(&mut StdRng::seed_from_u64(shuffle));
        for e in &rest {
            r.apply(e).unwrap();
        }
        prop_assert!(!r.is_complete());
        // The last hand lost: no hole, but the ranking does not know the tournament ended.
        prop_assert!(r.seqs().has_gap() || r.final_seq().is_none());
    }
}

#[test]
fn a_foreign_or_malformed_event_is_refused_whole() {
    let (snaps, events) = play(30, 5, true);
    let mut r = Ranking::from_snapshot(&snaps[0]);
    let before = r.standings();
    let mut bad = events[0].clone();
    bad.tournament += 1;
    assert!(r.apply(&bad).is_err());
    let mut bad = events[0].clone();
    bad.stacks.push(actor_poker::model::Seat {
        player: 999,
        table: 0,
        stack: 1,
    });
    assert!(r.apply(&bad).is_err());
    let mut bad = events[0].clone();
    bad.seq = 0;
    assert!(r.apply(&bad).is_err());
    assert_eq!(r.standings(), before);
    assert_eq!(r.seqs().through(), 0);
    assert!(matches!(r.apply(&events[0]).unwrap(), Applied::New(_)));
    assert_eq!(r.apply(&events[0]).unwrap(), Applied::Duplicate);
    assert_eq!(r.standings(), snaps[1].recompute());
}
