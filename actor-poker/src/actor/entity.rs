//! The incremental ranking as a typed entity of the distributed supervisor.

use std::time::{Duration, Instant};

use ractor::ActorProcessingErr;
use serde::{Deserialize, Serialize};

use super::RankingOptions;
use super::{RankingArgs, RankingMsg, RankingSpec, RankingState, RankingSummary, RANKING_KIND};
use crate::ranking::Ranking;
use crate::store::PokerStore;

/// What the ranking entities of one node share.
#[derive(Debug, Clone)]
pub struct RankingContext {
    /// The database.
    pub store: PokerStore,
    /// Settings.
    pub options: RankingOptions,
}

/// What a ranking entity hands to its next node on a planned move.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RankingMove {
    ranking: crate::ranking::RankingHandoff,
    summary: RankingSummary,
}

/// The incremental ranking as a typed entity of the distributed supervisor (kind
/// [`RANKING_KIND`], id `tournament:<id>`): it loads its tournament from the database when it
/// starts after a crash or a node going down, and takes its standings from the handoff on a
/// planned move (drain, redistribution), without reading the database.
#[derive(Debug)]
pub struct RankingEntity {
    st: RankingState,
}

impl actor_cluster::supervisor::Entity for RankingEntity {
    const KIND: &'static str = RANKING_KIND;
    type Args = RankingSpec;
    type Msg = RankingMsg;
    type Handoff = RankingMove;
    type Context = RankingContext;

    async fn start(
        ctx: &actor_cluster::supervisor::EntityContext<Self>,
        args: RankingSpec,
        handoff: Option<RankingMove>,
    ) -> Result<Self, ActorProcessingErr> {
        let c = ctx.context();
        let mut st = RankingState {
            summary: RankingSummary {
                tournament: args.tournament,
                ..RankingSummary::default()
            },
            args: RankingArgs {
                tournament: args.tournament,
                store: c.store.clone(),
                options: c.options.clone(),
            },
            ranking: None,
            gap_since: None,
            last_publish: Instant::now(),
        };
        match handoff {
            Some(m) if m.summary.tournament == args.tournament => {
                let ranking = Ranking::from_handoff(m.ranking);
                if ranking.seqs().has_gap() {
                    st.gap_since = Some(Instant::now());
                }
                st.ranking = Some(ranking);
                st.summary = m.summary;
                st.summary.handoffs += 1;
                tracing::debug!(
                    tournament = args.tournament,
                    "standings taken from the handoff"
                );
            }
            _ => st.load().await?,
        }
        let tick = (c.options.publish_every / 2).max(Duration::from_millis(5));
        ctx.send_interval(tick, || RankingMsg::Tick);
        Ok(Self { st })
    }

    async fn handle(
        &mut self,
        _ctx: &actor_cluster::supervisor::EntityContext<Self>,
        msg: RankingMsg,
    ) -> Result<(), ActorProcessingErr> {
        self.st.on_msg(msg).await
    }

    async fn handoff(&mut self) -> Option<RankingMove> {
        self.st.refresh_summary();
        let ranking = self.st.ranking.as_ref()?.handoff();
        Some(RankingMove {
            ranking,
            summary: self.st.summary,
        })
    }
}
