//! The naive ranking actor: the benchmark's baseline.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::*;

/// The naive design, as the benchmark baseline: on every event it reads every table of the
/// tournament from the database, parses, sorts and publishes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NaiveRanking;

/// Its state.
#[derive(Debug)]
pub struct NaiveState {
    args: RankingArgs,
    standings: Vec<StandingRow>,
    summary: RankingSummary,
}

impl NaiveState {
    async fn recompute(&mut self) -> Result<TournamentSnapshot, ActorProcessingErr> {
        let snap = self.args.store.snapshot(self.args.tournament).await?;
        self.summary.loads += 1;
        self.standings = snap.recompute();
        self.summary.players = snap.info.players;
        self.summary.alive = self.standings.iter().filter(|r| !r.busted).count() as u32;
        self.summary.through = snap.info.seq;
        self.summary.highest = snap.info.seq;
        Ok(snap)
    }
}

impl NaiveState {
    async fn on_event(&mut self, ev: &HandFinished) -> Result<(), ActorProcessingErr> {
        let st = self;
        st.recompute().await?;
        st.summary.applied += 1;
        if has_subscribers(st.args.tournament) {
            let touched: std::collections::HashSet<u32> = ev
                .stacks
                .iter()
                .map(|s| s.player)
                .chain(ev.busted.iter().map(|b| b.player))
                .collect();
            publish(StandingsDelta {
                tournament: st.args.tournament,
                through: st.summary.through,
                alive: st.summary.alive,
                top: st
                    .standings
                    .iter()
                    .take(st.args.options.top_n as usize)
                    .copied()
                    .collect(),
                changed: st
                    .standings
                    .iter()
                    .filter(|r| touched.contains(&r.player))
                    .copied()
                    .collect(),
                finished: false,
            });
        }
        Ok(())
    }
}

impl Actor for NaiveRanking {
    type Msg = RankingMsg;
    type State = NaiveState;
    type Arguments = RankingArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<RankingMsg>,
        args: RankingArgs,
    ) -> Result<NaiveState, ActorProcessingErr> {
        let mut st = NaiveState {
            summary: RankingSummary {
                tournament: args.tournament,
                ..RankingSummary::default()
            },
            args,
            standings: Vec::new(),
        };
        st.recompute().await?;
        Ok(st)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RankingMsg>,
        msg: RankingMsg,
        st: &mut NaiveState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RankingMsg::Hands(evs) => {
                for ev in evs {
                    st.on_event(&ev).await?;
                }
            }
            RankingMsg::Hand(ev) => st.on_event(&ev).await?,
            RankingMsg::Standings(offset, limit, reply) => {
                let rows = st
                    .standings
                    .iter()
                    .skip(offset as usize)
                    .take(limit as usize)
                    .copied()
                    .collect();
                let _ = reply.send(rows);
            }
            RankingMsg::RankOf(player, reply) => {
                let _ = reply.send(st.standings.iter().find(|r| r.player == player).copied());
            }
            RankingMsg::Summary(reply) => {
                let _ = reply.send(st.summary);
            }
            RankingMsg::Finish(_, reply) => {
                st.recompute().await?;
                let res = match st
                    .args
                    .store
                    .save_final_standings(st.args.tournament, &st.standings)
                    .await
                {
                    Ok(()) => {
                        st.summary.finished = true;
                        Ok(st.summary)
                    }
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(res);
            }
            RankingMsg::Tick => {}
        }
        Ok(())
    }
}
