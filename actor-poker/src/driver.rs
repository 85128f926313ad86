//! Plays a tournament against the database and the cluster: each hand is written (one
//! transaction), then its event is sent to the tournament's ranking actor by registry name,
//! retrying until it is handed over. When the tournament ends, the ranking actor is asked to
//! store the final standings, and is then terminated through the supervisor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::supervisor::{DistSupervisorError, DistributedSupervisor};

use crate::actor::{ranking_child, RankingEntity, RankingMsg, RankingSpec, RankingSummary};
use crate::model::HandFinished;
use crate::sim::TournamentSim;
use crate::store::PokerStore;
use crate::{child_id, PokerError};

/// Counters shared by the drivers of a run.
#[derive(Debug, Default)]
pub struct Progress {
    /// Hands written.
    pub hands: AtomicU64,
    /// Events handed to a ranking actor.
    pub delivered: AtomicU64,
    /// Players busted.
    pub busted: AtomicU64,
    /// Tournaments finished (final standings stored).
    pub finished: AtomicU64,
}

/// How a driver runs.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Pause between hands (none: as fast as the database takes them).
    pub hand_delay: Option<Duration>,
    /// How long one event or call may retry before the driver gives up.
    pub deliver_timeout: Duration,
    /// Run the naive ranking actor instead of the incremental one.
    pub naive: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            hand_delay: None,
            deliver_timeout: Duration::from_secs(30),
            naive: false,
        }
    }
}

/// What a finished tournament reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Hands played by this driver.
    pub hands: u64,
    /// The ranking actor's counters when it stored the final standings.
    pub ranking: RankingSummary,
}

fn cluster(e: impl std::fmt::Display) -> PokerError {
    PokerError::Cluster(e.to_string())
}

/// Creates the tournament (if the database does not have it yet) and starts its ranking actor
/// somewhere in the cluster; returns the node it runs on.
pub async fn open_tournament(
    store: &PokerStore,
    dsup: &DistributedSupervisor,
    sim: &TournamentSim,
    name: &str,
    opts: &DriverOptions,
) -> Result<String, PokerError> {
    let tables: Vec<_> = sim.tables().cloned().collect();
    store.create_tournament(&sim.info(name), &tables).await?;
    if opts.naive {
        return dsup
            .start_child(ranking_child(sim.id(), true), opts.deliver_timeout)
            .await
            .map_err(cluster);
    }
    let spec = RankingSpec {
        tournament: sim.id(),
    };
    dsup.start_entity::<RankingEntity>(&child_id(sim.id()), &spec, opts.deliver_timeout)
        .await
        .map(|s| s.node)
        .map_err(cluster)
}

/// Sends a finished hand to the tournament's ranking actor.
async fn deliver(
    dsup: &DistributedSupervisor,
    id: &str,
    event: HandFinished,
    opts: &DriverOptions,
) -> Result<(), PokerError> {
    if opts.naive {
        return dsup
            .cast_child(id, opts.deliver_timeout, || RankingMsg::Hand(event.clone()))
            .await
            .map_err(cluster);
    }
    dsup.entity::<RankingEntity>(id)
        .cast(RankingMsg::Hand(event), opts.deliver_timeout)
        .await
        .map_err(cluster)
}

/// Asks the ranking actor to store the final standings. `Finish` is idempotent, so a call
/// whose actor died while handling it (a failover) is made again, within the timeout.
async fn finish(
    dsup: &DistributedSupervisor,
    id: &str,
    final_seq: u64,
    opts: &DriverOptions,
) -> Result<RankingSummary, PokerError> {
    let r = if opts.naive {
        dsup.call_child(id, opts.deliver_timeout, |r| {
            RankingMsg::Finish(final_seq, r)
        })
        .await
    } else {
        let deadline = tokio::time::Instant::now() + opts.deliver_timeout;
        let ranking = dsup.entity::<RankingEntity>(id);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match ranking
                .call(|r| RankingMsg::Finish(final_seq, r), left)
                .await
            {
                Err(DistSupervisorError::ExitedWhileHandling { reason, .. }) if !left.is_zero() => {
                    tracing::info!(child = id, %reason, "ranking actor exited while finishing; asking again");
                }
                other => break other,
            }
        }
    };
    r.map_err(cluster)?.map_err(PokerError::Db)
}

/// Plays the tournament to its end (see the module docs). Transient database errors are
/// retried; a [`PokerError::SeqConflict`] (another driver wrote this hand) ends the run.
pub async fn play_tournament(
    store: &PokerStore,
    dsup: &DistributedSupervisor,
    mut sim: TournamentSim,
    opts: &DriverOptions,
    progress: &Arc<Progress>,
) -> Result<Outcome, PokerError> {
    let id = child_id(sim.id());
    let mut hands = 0;
    while let Some(w) = sim.play_hand() {
        let mut tries = 0;
        loop {
            match store.write_hand(&w).await {
                Ok(()) => break,
                Err(PokerError::Db(e)) if tries < 20 => {
                    tries += 1;
                    tracing::warn!(error = %e, tries, "hand not written; retrying");
                    tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
        hands += 1;
        progress.hands.fetch_add(1, Ordering::Relaxed);
        progress
            .busted
            .fetch_add(w.event.busted.len() as u64, Ordering::Relaxed);
        deliver(dsup, &id, w.event, opts).await?;
        progress.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = opts.hand_delay {
            tokio::time::sleep(d).await;
        }
    }
    let final_seq = sim.seq();
    let ranking = finish(dsup, &id, final_seq, opts).await?;
    dsup.terminate_child(&id).await.map_err(cluster)?;
    progress.finished.fetch_add(1, Ordering::Relaxed);
    Ok(Outcome { hands, ranking })
}
