//! The ranking actors: `TournamentRanking` (incremental) and `NaiveRanking` (the baseline), one
//! per tournament, with the same messages, run as children of the distributed supervisor.
//!
//! `TournamentRanking` is registered by the supervisor under `tournament:<id>` as soon as it is
//! spawned, and loads its tournament from the database in `post_start`: events sent meanwhile
//! wait in its mailbox, and the ones the database already had are recognized as duplicates. It
//! then applies each [`HandFinished`] in O(k log n). A send lost with a dead node shows up as a
//! hole in the sequence numbers: if a hole stays open for `gap_timeout`, or when the tournament
//! is finishing, the actor re-reads the database (every lost hand was written before it was
//! sent). Subscribers on any node receive [`StandingsUpdate`]s (the top rows and the rows that
//! changed), at most one per `publish_every`.

use std::time::{Duration, Instant};

use actor_cluster::supervisor::{ChildKind, StartContext};
use actor_core::RemoteMessage;
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use serde::{Deserialize, Serialize};

use crate::model::{HandFinished, StandingRow, TournamentSnapshot};
use crate::ranking::{Applied, Ranking};
use crate::store::PokerStore;

mod entity;
mod naive;
pub use entity::{RankingContext, RankingEntity, RankingMove};
pub use naive::{NaiveRanking, NaiveState};

/// The supervisor kind of the incremental ranking actor.
pub const RANKING_KIND: &str = "tournament-ranking";
/// The supervisor kind of the naive ranking actor.
pub const NAIVE_KIND: &str = "tournament-ranking-naive";

/// A ranking actor's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankingSummary {
    /// The tournament.
    pub tournament: u64,
    /// Players.
    pub players: u32,
    /// Players still in.
    pub alive: u32,
    /// Every hand up to this sequence number is applied.
    pub through: u64,
    /// The highest sequence number applied.
    pub highest: u64,
    /// Events applied.
    pub applied: u64,
    /// Events recognized as already applied.
    pub duplicates: u64,
    /// Times the database was read (the load at start included), across planned moves.
    pub loads: u64,
    /// Times it started from the state its previous node handed over (a planned move) instead
    /// of reading the database.
    pub handoffs: u64,
    /// The tournament ended and the final standings are stored.
    pub finished: bool,
}

/// What a standings subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingsDelta {
    /// The tournament.
    pub tournament: u64,
    /// Every hand up to this sequence number is in it.
    pub through: u64,
    /// Players still in.
    pub alive: u32,
    /// The first rows.
    pub top: Vec<StandingRow>,
    /// Rows that changed since the previous update.
    pub changed: Vec<StandingRow>,
    /// The tournament is over and these are final.
    pub finished: bool,
}

/// The message type of standings subscribers.
#[derive(RemoteMessage)]
pub enum StandingsUpdate {
    /// New standings.
    Update(StandingsDelta),
}

/// The messages of both ranking actors.
#[derive(RemoteMessage)]
pub enum RankingMsg {
    /// A hand finished (sent after it was written).
    Hand(HandFinished),
    /// Several finished hands in one message (a forwarder that coalesces events pays the
    /// mailbox and network cost once per batch).
    Hands(Vec<HandFinished>),
    /// Rows `offset..offset + limit` of the standings.
    Standings(u32, u32, RpcReplyPort<Vec<StandingRow>>),
    /// A player's row.
    RankOf(u32, RpcReplyPort<Option<StandingRow>>),
    /// Counters.
    Summary(RpcReplyPort<RankingSummary>),
    /// The tournament ended with this sequence number: make sure every hand is in, store the
    /// final standings, reply with the counters.
    Finish(u64, RpcReplyPort<Result<RankingSummary, String>>),
    /// Timer: close holes, publish.
    Tick,
}

/// The pg group of a tournament's standings subscribers.
pub fn standings_group(tournament: u64) -> String {
    format!("poker.standings.{tournament}")
}

/// Subscribes `actor` (on any node) to a tournament's standings.
pub fn subscribe(tournament: u64, actor: &ActorRef<StandingsUpdate>) {
    actor_cluster::remote::register(&standings_group(tournament), actor);
}

fn publish(delta: StandingsDelta) {
    let subs = actor_cluster::remote::lookup::<StandingsUpdate>(&standings_group(delta.tournament));
    for s in subs {
        let _ = s.cast(StandingsUpdate::Update(delta.clone()));
    }
}

fn has_subscribers(tournament: u64) -> bool {
    !actor_cluster::remote::lookup::<StandingsUpdate>(&standings_group(tournament)).is_empty()
}

/// Settings of a ranking actor.
#[derive(Debug, Clone)]
pub struct RankingOptions {
    /// Rows in the `top` of each update.
    pub top_n: u32,
    /// At most one update per this period.
    pub publish_every: Duration,
    /// A hole in the sequence numbers open this long makes the actor re-read the database.
    pub gap_timeout: Duration,
    /// Fault injection (0: off): the handler fails, before applying it, on a new hand whose
    /// tournament and sequence number hash to 0 modulo this. The entity restarts in place and
    /// re-reads the database, which has the hand (it is written before it is sent). The chaos
    /// run uses it; [`purposeful_failures`] counts them.
    pub fail_one_in: u64,
}

impl Default for RankingOptions {
    fn default() -> Self {
        Self {
            top_n: 10,
            publish_every: Duration::from_millis(50),
            gap_timeout: Duration::from_millis(300),
            fail_one_in: 0,
        }
    }
}

static PURPOSEFUL_FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times this process's ranking handlers failed on purpose
/// ([`RankingOptions::fail_one_in`]).
pub fn purposeful_failures() -> u64 {
    PURPOSEFUL_FAILURES.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a ranking actor is started with.
#[derive(Debug, Clone)]
pub struct RankingArgs {
    /// The tournament.
    pub tournament: u64,
    /// The database.
    pub store: PokerStore,
    /// Settings.
    pub options: RankingOptions,
}

/// The incremental ranking actor.
#[derive(Debug, Clone, Copy, Default)]
pub struct TournamentRanking;

/// Its state.
#[derive(Debug)]
pub struct RankingState {
    args: RankingArgs,
    ranking: Option<Ranking>,
    gap_since: Option<Instant>,
    summary: RankingSummary,
    last_publish: Instant,
}

impl RankingState {
    async fn load(&mut self) -> Result<(), ActorProcessingErr> {
        let snap = self.args.store.snapshot(self.args.tournament).await?;
        self.summary.loads += 1;
        let mut fresh = Ranking::from_snapshot(&snap);
        if let Some(old) = &self.ranking {
            // Keep what the database did not have yet (it cannot be behind a delivered event,
            // but a reload must never go backwards).
            if old.seqs().highest() > snap.info.seq {
                tracing::warn!(
                    tournament = self.args.tournament,
                    db = snap.info.seq,
                    memory = old.seqs().highest(),
                    "database behind the events received; keeping the in-memory standings"
                );
                return Ok(());
            }
            fresh.take_changed();
        }
        tracing::debug!(
            tournament = self.args.tournament,
            seq = snap.info.seq,
            "standings loaded from the database"
        );
        self.ranking = Some(fresh);
        self.gap_since = None;
        Ok(())
    }

    fn apply(&mut self, events: &[HandFinished]) {
        let Some(r) = self.ranking.as_mut() else {
            return;
        };
        metrics::counter!("poker_ranking_events_total").increment(events.len() as u64);
        for ev in events {
            match r.apply(ev) {
                Ok(Applied::New(_)) => self.summary.applied += 1,
                Ok(Applied::Duplicate) => self.summary.duplicates += 1,
                Err(e) => {
                    tracing::warn!(tournament = self.args.tournament, error = %e, "event refused");
                }
            }
        }
        if r.seqs().has_gap() {
            self.gap_since.get_or_insert_with(Instant::now);
        } else {
            self.gap_since = None;
        }
    }

    fn refresh_summary(&mut self) {
        if let Some(r) = &self.ranking {
            self.summary.players = r.players();
            self.summary.alive = r.alive();
            self.summary.through = r.seqs().through();
            self.summary.highest = r.seqs().highest();
        }
    }

    fn publish(&mut self, force: bool) {
        let Some(r) = self.ranking.as_mut() else {
            return;
        };
        if !force && self.last_publish.elapsed() < self.args.options.publish_every {
            return;
        }
        let changed = r.take_changed();
        if changed.is_empty() && !force {
            return;
        }
        self.last_publish = Instant::now();
        if !has_subscribers(self.args.tournament) {
            return;
        }
        let delta = StandingsDelta {
            tournament: self.args.tournament,
            through: r.seqs().through(),
            alive: r.alive(),
            top: r.range(0, self.args.options.top_n),
            changed: changed.iter().filter_map(|p| r.rank_of(*p)).collect(),
            finished: self.summary.finished,
        };
        publish(delta);
    }
}

impl Actor for TournamentRanking {
    type Msg = RankingMsg;
    type State = RankingState;
    type Arguments = RankingArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<RankingMsg>,
        args: RankingArgs,
    ) -> Result<RankingState, ActorProcessingErr> {
        Ok(RankingState {
            summary: RankingSummary {
                tournament: args.tournament,
                ..RankingSummary::default()
            },
            args,
            ranking: None,
            gap_since: None,
            last_publish: Instant::now(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<RankingMsg>,
        st: &mut RankingState,
    ) -> Result<(), ActorProcessingErr> {
        st.load().await?;
        let tick = (st.args.options.publish_every / 2).max(Duration::from_millis(5));
        myself.send_interval(tick, || RankingMsg::Tick);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<RankingMsg>,
        msg: RankingMsg,
        st: &mut RankingState,
    ) -> Result<(), ActorProcessingErr> {
        st.on_msg(msg).await
    }
}

impl RankingState {
    /// The injected fault of [`RankingOptions::fail_one_in`], if one of these new hands is due
    /// to fail.
    fn fail_on_purpose(&self, events: &[HandFinished]) -> Result<(), ActorProcessingErr> {
        let n = self.args.options.fail_one_in;
        let Some(r) = self.ranking.as_ref().filter(|_| n > 0) else {
            return Ok(());
        };
        let due = events.iter().find(|ev| {
            let h = ev
                .seq
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(self.args.tournament);
            !r.seqs().contains(ev.seq) && (h ^ (h >> 29)) % n == 0
        });
        match due {
            Some(ev) => {
                PURPOSEFUL_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(format!(
                    "fault injection: the handler fails on hand {} on purpose",
                    ev.seq
                )
                .into())
            }
            None => Ok(()),
        }
    }

    async fn on_msg(&mut self, msg: RankingMsg) -> Result<(), ActorProcessingErr> {
        let st = self;
        match msg {
            RankingMsg::Hand(ev) => {
                st.fail_on_purpose(std::slice::from_ref(&ev))?;
                st.apply(std::slice::from_ref(&ev))
            }
            RankingMsg::Hands(evs) => {
                st.fail_on_purpose(&evs)?;
                st.apply(&evs)
            }
            RankingMsg::Standings(offset, limit, reply) => {
                let rows = st
                    .ranking
                    .as_ref()
                    .map(|r| r.range(offset, limit))
                    .unwrap_or_default();
                let _ = reply.send(rows);
            }
            RankingMsg::RankOf(player, reply) => {
                let _ = reply.send(st.ranking.as_ref().and_then(|r| r.rank_of(player)));
            }
            RankingMsg::Summary(reply) => {
                st.refresh_summary();
                let _ = reply.send(st.summary);
            }
            RankingMsg::Finish(final_seq, reply) => {
                let complete = st
                    .ranking
                    .as_ref()
                    .is_some_and(|r| r.seqs().through() >= final_seq && !r.seqs().has_gap());
                if !complete {
                    st.load().await?;
                }
                let rows = st
                    .ranking
                    .as_ref()
                    .map(Ranking::standings)
                    .unwrap_or_default();
                let res = match st
                    .args
                    .store
                    .save_final_standings(st.args.tournament, &rows)
                    .await
                {
                    Ok(()) => {
                        st.summary.finished = true;
                        st.refresh_summary();
                        st.publish(true);
                        Ok(st.summary)
                    }
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(res);
            }
            RankingMsg::Tick => {
                if st
                    .gap_since
                    .is_some_and(|t| t.elapsed() >= st.args.options.gap_timeout)
                {
                    tracing::info!(
                        tournament = st.args.tournament,
                        "a hand is missing; re-reading the tournament"
                    );
                    st.load().await?;
                }
                st.publish(false);
            }
        }
        Ok(())
    }
}

/// The arguments of a ranking child: its tournament.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankingSpec {
    /// The tournament.
    pub tournament: u64,
}

/// The child spec of a tournament's naive ranking actor (the baseline design, on the
/// untyped layer). The incremental one is the typed entity [`RankingEntity`].
pub fn ranking_child(tournament: u64, naive: bool) -> actor_cluster::supervisor::DistChildSpec {
    let args = actor_core::codec::encode(&RankingSpec { tournament }).unwrap_or_default();
    actor_cluster::supervisor::DistChildSpec::new(
        crate::child_id(tournament),
        if naive { NAIVE_KIND } else { RANKING_KIND },
        args,
    )
}

struct Kind {
    store: PokerStore,
    options: RankingOptions,
    naive: bool,
}

impl ChildKind for Kind {
    fn start(&self, ctx: StartContext) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> {
        let spec = actor_core::codec::decode::<RankingSpec>(&ctx.args);
        let args = spec.map(|s| RankingArgs {
            tournament: s.tournament,
            store: self.store.clone(),
            options: self.options.clone(),
        });
        let naive = self.naive;
        Box::pin(async move {
            let args = args.map_err(|e| SpawnErr::StartupFailed(e.to_string().into()))?;
            let cell = if naive {
                Actor::spawn_linked(None, NaiveRanking, args, ctx.supervisor)
                    .await?
                    .0
                    .get_cell()
            } else {
                Actor::spawn_linked(None, TournamentRanking, args, ctx.supervisor)
                    .await?
                    .0
                    .get_cell()
            };
            Ok(cell)
        })
    }
}

/// The factory to register on every node that runs ranking actors:
/// `DistributedSupervisor::builder(..).kind(RANKING_KIND, ranking_kind(store, options, false))`.
pub fn ranking_kind(store: PokerStore, options: RankingOptions, naive: bool) -> impl ChildKind {
    Kind {
        store,
        options,
        naive,
    }
}
