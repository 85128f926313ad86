//! The ranking actors against a real database (SQLite file): a lost event is noticed and
//! recovered by re-reading the database; a tournament finished without its last event still
//! stores the right final standings; subscribers get the standings; the naive design agrees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use actor_poker::actor::{
    NaiveRanking, RankingArgs, RankingMsg, RankingOptions, StandingsDelta, TournamentRanking,
};
use actor_poker::sim::HandWrite;
use actor_poker::{subscribe, PokerStore, SimConfig, StandingsUpdate, TournamentSim};
use actor_testkit::wait_until;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

async fn setup(dir: &tempfile::TempDir, id: u64, players: u32) -> (PokerStore, Vec<HandWrite>) {
    let store = PokerStore::open(&dir.path().join("p.db").display().to_string())
        .await
        .unwrap();
    let mut sim = TournamentSim::new(id, SimConfig::new(players).hyper().seed(id));
    let tables: Vec<_> = sim.tables().cloned().collect();
    assert!(store
        .create_tournament(&sim.info("t"), &tables)
        .await
        .unwrap());
    let mut writes = Vec::new();
    while let Some(w) = sim.play_hand() {
        writes.push(w);
    }
    (store, writes)
}

fn args(store: &PokerStore, id: u64) -> RankingArgs {
    RankingArgs {
        tournament: id,
        store: store.clone(),
        options: RankingOptions {
            top_n: 10,
            publish_every: Duration::from_millis(10),
            gap_timeout: Duration::from_millis(100),
            fail_one_in: 0,
        },
    }
}

async fn summary(r: &ActorRef<RankingMsg>) -> actor_poker::actor::RankingSummary {
    ractor::call_t!(r, RankingMsg::Summary, 5000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_event_is_recovered_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writes) = setup(&dir, 1, 300).await;
    let (r, h) = Actor::spawn(None, TournamentRanking, args(&store, 1))
        .await
        .unwrap();
    let lost = writes.len() / 2;
    for (i, w) in writes.iter().enumerate() {
        store.write_hand(w).await.unwrap();
        if i != lost {
            r.cast(RankingMsg::Hand(w.event.clone())).unwrap();
        }
    }
    let last = writes.len() as u64;
    wait_until("the hole is closed", Duration::from_secs(10), || async {
        let s = summary(&r).await;
        Ok(s.through == last && s.highest == last)
    })
    .await
    .unwrap();
    let s = summary(&r).await;
    assert_eq!(
        s.loads, 2,
        "loaded at start, and once more for the lost hand"
    );
    let truth = store.snapshot(1).await.unwrap().recompute();
    let rows = ractor::call_t!(r, RankingMsg::Standings, 5000, 0, 10_000).unwrap();
    assert_eq!(rows, truth);
    let one = ractor::call_t!(r, RankingMsg::RankOf, 5000, truth[7].player).unwrap();
    assert_eq!(one, Some(truth[7]));
    r.stop(None);
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_without_the_last_event_stores_the_database_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writes) = setup(&dir, 2, 200).await;
    let (r, h) = Actor::spawn(None, TournamentRanking, args(&store, 2))
        .await
        .unwrap();
    let n = writes.len();
    for (i, w) in writes.iter().enumerate() {
        store.write_hand(w).await.unwrap();
        if i + 1 != n {
            r.cast(RankingMsg::Hand(w.event.clone())).unwrap();
        }
    }
    let done = ractor::call_t!(r, RankingMsg::Finish, 10_000, n as u64)
        .unwrap()
        .unwrap();
    assert!(done.finished);
    assert_eq!(done.through, n as u64);
    assert_eq!(done.loads, 2);
    let truth = store.snapshot(2).await.unwrap().recompute();
    assert_eq!(store.final_standings(2).await.unwrap(), truth);
    assert_eq!(truth.iter().filter(|r| !r.busted).count(), 1);
    r.stop(None);
    h.await.unwrap();
}

struct Sub;

impl Actor for Sub {
    type Msg = StandingsUpdate;
    type State = mpsc::UnboundedSender<StandingsDelta>;
    type Arguments = mpsc::UnboundedSender<StandingsDelta>;

    async fn pre_start(
        &self,
        _: ActorRef<StandingsUpdate>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle(
        &self,
        _: ActorRef<StandingsUpdate>,
        msg: StandingsUpdate,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let StandingsUpdate::Update(d) = msg;
        let _ = tx.send(d);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_the_standings_and_the_naive_design_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writes) = setup(&dir, 3, 120).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (sub, sh) = Actor::spawn(None, Sub, tx).await.unwrap();
    subscribe(3, &sub);
    let (r, h) = Actor::spawn(None, TournamentRanking, args(&store, 3))
        .await
        .unwrap();
    let half = writes.len() / 2;
    for w in &writes[..half] {
        store.write_hand(w).await.unwrap();
        r.cast(RankingMsg::Hand(w.event.clone())).unwrap();
    }
    let truth = store.snapshot(3).await.unwrap().recompute();
    let delta = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let d = rx.recv().await.unwrap();
            if d.through == half as u64 {
                return d;
            }
        }
    })
    .await
    .expect("an update with every hand so far");
    assert_eq!(delta.top, truth[..10].to_vec());
    for row in &delta.changed {
        assert_eq!(truth[row.position as usize - 1], *row);
    }
    // The naive design, started now, gives the same answers from the same database.
    let (naive, nh) = Actor::spawn(None, NaiveRanking, args(&store, 3))
        .await
        .unwrap();
    for w in &writes[half..] {
        store.write_hand(w).await.unwrap();
        r.cast(RankingMsg::Hand(w.event.clone())).unwrap();
        naive.cast(RankingMsg::Hand(w.event.clone())).unwrap();
    }
    let a = ractor::call_t!(r, RankingMsg::Standings, 5000, 0, 1000).unwrap();
    let b = ractor::call_t!(naive, RankingMsg::Standings, 5000, 0, 1000).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, store.snapshot(3).await.unwrap().recompute());
    for (actor, handle) in [(r, h), (naive, nh)] {
        actor.stop(None);
        handle.await.unwrap();
    }
    sub.stop(None);
    sh.await.unwrap();
}
