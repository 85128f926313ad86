//! Plays a tournament against the database and the cluster: each hand is written (one
//! transaction), then its event is sent to the tournament's ranking actor by registry name,
//! retrying until it is handed over. When the tournament ends, the ranking actor is asked to
//! store the final standings, and is then terminated through the supervisor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::supervisor::DistributedSupervisor;

use crate::actor::{ranking_child, RankingMsg, RankingSummary};
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
    dsup.start_child(ranking_child(sim.id(), opts.naive), opts.deliver_timeout)
        .await
        .map_err(cluster)
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
        let event = w.event;
        dsup.cast_child(&id, opts.deliver_timeout, || {
            RankingMsg::Hand(event.clone())
        })
        .await
        .map_err(cluster)?;
        progress.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = opts.hand_delay {
            tokio::time::sleep(d).await;
        }
    }
    let final_seq = sim.seq();
    let ranking = dsup
        .call_child(&id, opts.deliver_timeout, |r| {
            RankingMsg::Finish(final_seq, r)
        })
        .await
        .map_err(cluster)?
        .map_err(PokerError::Db)?;
    dsup.terminate_child(&id).await.map_err(cluster)?;
    progress.finished.fetch_add(1, Ordering::Relaxed);
    Ok(Outcome { hands, ranking })
}
