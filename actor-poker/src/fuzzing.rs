//! Entry point for the fuzz targets (`fuzz/`) and the corpus replay tests: a ranking actor's
//! messages decoded as the network path does, and every decoded hand applied to a ranking.

use actor_core::fuzzing::split;
use ractor::message::SerializedMessage;
use ractor::Message;

use crate::actor::{RankingMsg, StandingsUpdate};
use crate::ranking::Ranking;
use crate::sim::{SimConfig, TournamentSim};

/// Decodes a `RankingMsg` or `StandingsUpdate` cast; a decoded hand is applied to a small
/// tournament's ranking, which must refuse or apply it without panicking.
pub fn events(data: &[u8]) {
    let (sel, variant, args) = split(data);
    let msg = SerializedMessage::Cast {
        variant,
        args,
        metadata: None,
    };
    if sel % 2 == 1 {
        let _ = StandingsUpdate::deserialize(msg);
        return;
    }
    let hands = match RankingMsg::deserialize(msg) {
        Ok(RankingMsg::Hand(h)) => vec![h],
        Ok(RankingMsg::Hands(hs)) => hs,
        _ => return,
    };
    let sim = TournamentSim::new(0, SimConfig::new(20).seed(1));
    let mut r = Ranking::from_snapshot(&sim.snapshot("fuzz"));
    for mut h in hands {
        let _ = r.apply(&h);
        h.tournament = 0;
        let _ = r.apply(&h);
    }
    let _ = r.range(0, 100);
}

/// Valid inputs for [`events`].
pub fn events_seeds() -> Vec<Vec<u8>> {
    use actor_core::fuzzing::input_for;
    let mut sim = TournamentSim::new(0, SimConfig::new(20).hyper().seed(1));
    let hands: Vec<_> = std::iter::from_fn(|| sim.play_hand().map(|w| w.event))
        .take(3)
        .collect();
    let mut out = Vec::new();
    if let Some(h) = hands.first() {
        out.extend(input_for(0, RankingMsg::Hand(h.clone())));
    }
    out.extend(input_for(0, RankingMsg::Hands(hands)));
    out.extend(input_for(
        1,
        StandingsUpdate::Update(crate::actor::StandingsDelta {
            tournament: 0,
            through: 3,
            alive: 19,
            top: Vec::new(),
            changed: Vec::new(),
            finished: false,
        }),
    ));
    out
}
