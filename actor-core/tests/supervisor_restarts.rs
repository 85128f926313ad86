//! Restart strategies, restart types, intensity (escalation) and backoff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core::ractor::{Actor, ActorCell, ActorId};
use actor_core::supervisor::{
    Backoff, Restart, Strategy, Supervisor, SupervisorRef, SupervisorSpec,
};
use common::*;
use parking_lot::Mutex;

const T: Duration = Duration::from_secs(5);

async fn cell_of(sup: &SupervisorRef, id: &str) -> Option<ActorCell> {
    sup.which_children()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == id)
        .and_then(|c| c.cell)
}

async fn ids(sup: &SupervisorRef) -> Vec<Option<ActorId>> {
    sup.which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.cell.map(|c| c.get_id()))
        .collect()
}

/// Spawns a supervisor of a, b, c; fails b; returns the log entries caused by the failure once
/// b has been started again, and the actor ids before and after.
async fn fail_b(strategy: Strategy) -> (Vec<Ev>, Vec<Option<ActorId>>, Vec<Option<ActorId>>) {
    let log = Log::default();
    let spec = SupervisorSpec::new(strategy)
        .child(worker("a", &log))
        .child(worker("b", &log))
        .child(worker("c", &log));
    let (sup, _h) = Supervisor::spawn(None, spec).await.unwrap();
    assert_eq!(log.take(), vec![started("a"), started("b"), started("c")]);
    let before = ids(&sup).await;
    let b = cell_of(&sup, "b").await.unwrap();
    as_worker(&b).cast(WorkerMsg::Fail).unwrap();
    wait_for("b restarted", T, || {
        let log = log.clone();
        async move { log.count(&started("b")) == 1 }
    })
    .await;
    // Everything the restart does happens inside one supervisor step; a call orders after it.
    let after = ids(&sup).await;
    let events = log.take();
    sup.shutdown(Some(T)).await.unwrap();
    (events, before, after)
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let (events, before, after) = fail_b(Strategy::OneForOne).await;
    assert_eq!(events, vec![started("b")]);
    assert_eq!(before[0], after[0], "a untouched");
    assert_ne!(before[1], after[1], "b replaced");
    assert_eq!(before[2], after[2], "c untouched");
}

#[tokio::test]
async fn one_for_all_stops_siblings_in_reverse_and_restarts_all_in_order() {
    let (events, before, after) = fail_b(Strategy::OneForAll).await;
    let filtered: Vec<Ev> = events
        .into_iter()
        .filter(|e| !matches!(e, Ev::Stopping(_)))
        .collect();
    assert_eq!(
        filtered,
        vec![
            stopped("c"),
            stopped("a"),
            started("a"),
            started("b"),
            started("c")
        ]
    );
    for i in 0..3 {
        assert_ne!(before[i], after[i], "child {i} replaced");
    }
}

#[tokio::test]
async fn rest_for_one_restarts_the_child_and_those_after_it() {
    let (events, before, after) = fail_b(Strategy::RestForOne).await;
    let filtered: Vec<Ev> = events
        .into_iter()
        .filter(|e| !matches!(e, Ev::Stopping(_)))
        .collect();
    assert_eq!(filtered, vec![stopped("c"), started("b"), started("c")]);
    assert_eq!(before[0], after[0], "a untouched");
    assert_ne!(before[1], after[1]);
    assert_ne!(before[2], after[2]);
}

#[tokio::test]
async fn a_panicking_child_is_restarted() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("p", &log));
    let (sup, _h) = Supervisor::spawn(None, spec).await.unwrap();
    let p = cell_of(&sup, "p").await.unwrap();
    as_worker(&p).cast(WorkerMsg::Panic).unwrap();
    wait_for("p restarted", T, || {
        let log = log.clone();
        async move { log.count(&started("p")) == 2 }
    })
    .await;
    let p2 = cell_of(&sup, "p").await.unwrap();
    assert_ne!(p.get_id(), p2.get_id());
    let answer = as_worker(&p2)
        .call(WorkerMsg::Ping, Some(T))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, "p");
    sup.shutdown(Some(T)).await.unwrap();
}

#[tokio::test]
async fn restart_types_follow_otp() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(100, Duration::from_secs(5))
        .child(worker("perm", &log).restart(Restart::Permanent))
        .child(worker("trans", &log).restart(Restart::Transient))
        .child(worker("temp", &log).restart(Restart::Temporary));
    let (sup, _h) = Supervisor::spawn(None, spec).await.unwrap();

    // Permanent: restarted even after a normal exit.
    as_worker(&cell_of(&sup, "perm").await.unwrap())
        .cast(WorkerMsg::Exit)
        .unwrap();
    wait_for("perm restarted after a normal exit", T, || {
        let log = log.clone();
        async move { log.count(&started("perm")) == 2 }
    })
    .await;

    // Transient: restarted after a failure and after a kill...
    as_worker(&cell_of(&sup, "trans").await.unwrap())
        .cast(WorkerMsg::Fail)
        .unwrap();
    wait_for("trans restarted after a failure", T, || {
        let log = log.clone();
        async move { log.count(&started("trans")) == 2 }
    })
    .await;
    cell_of(&sup, "trans").await.unwrap().kill();
    wait_for("trans restarted after a kill", T, || {
        let log = log.clone();
        async move { log.count(&started("trans")) == 3 }
    })
    .await;
    // ...but not after a normal exit: it stays in the list, not running.
    let trans = cell_of(&sup, "trans").await.unwrap();
    as_worker(&trans).cast(WorkerMsg::Exit).unwrap();
    trans.wait(Some(T)).await.unwrap();
    let children = sup.which_children().await.unwrap();
    let t = children.iter().find(|c| c.id == "trans").unwrap();
    assert!(
        t.cell.is_none(),
        "transient child must not restart after a normal exit"
    );

    // Temporary: never restarted, even after a failure, and removed.
    let temp = cell_of(&sup, "temp").await.unwrap();
    as_worker(&temp).cast(WorkerMsg::Fail).unwrap();
    temp.wait(Some(T)).await.unwrap();
    let children = sup.which_children().await.unwrap();
    assert!(
        children.iter().all(|c| c.id != "temp"),
        "temporary child removed"
    );
    assert_eq!(log.count(&started("temp")), 1);
    assert_eq!(log.count(&started("trans")), 3);
    sup.shutdown(Some(T)).await.unwrap();
}

#[tokio::test]
async fn exceeding_the_intensity_stops_children_and_escalates_to_the_parent() {
    let log = Log::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    let (parent, _ph) = Actor::spawn(None, Parent, events.clone()).await.unwrap();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(10))
        .child(worker("steady", &log))
        .child(worker("flaky", &log));
    let (sup, handle) = Supervisor::spawn_linked(None, spec, parent.get_cell())
        .await
        .unwrap();
    // Two failures are within the budget of 2 restarts.
    for n in 2..=3 {
        as_worker(&cell_of(&sup, "flaky").await.unwrap())
            .cast(WorkerMsg::Fail)
            .unwrap();
        wait_for("flaky restarted", T, || {
            let log = log.clone();
            async move { log.count(&started("flaky")) == n }
        })
        .await;
    }
    assert!(events.lock().is_empty());
    // The third restart within the period exceeds it.
    as_worker(&cell_of(&sup, "flaky").await.unwrap())
        .cast(WorkerMsg::Fail)
        .unwrap();
    tokio::time::timeout(T, handle).await.unwrap().unwrap();
    wait_for("parent sees the supervisor fail", T, || {
        let events = events.clone();
        async move { !events.lock().is_empty() }
    })
    .await;
    let seen = events.lock().clone();
    match &seen[..] {
        [ParentEv::Failed(text)] => {
            assert!(text.contains("more than 2 restarts"), "{text}");
            assert!(text.contains("flaky"), "{text}");
        }
        other => panic!("expected one failure, got {other:?}"),
    }
    // The sibling was shut down gracefully before the supervisor failed.
    assert_eq!(log.count(&stopped("steady")), 1);
    assert_eq!(log.count(&started("flaky")), 3);
    parent.stop(None);
}

#[tokio::test]
async fn restarts_outside_the_period_do_not_accumulate() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(1, Duration::from_millis(200))
        .child(worker("w", &log));
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
    for n in 2..=4 {
        let began = Instant::now();
        as_worker(&cell_of(&sup, "w").await.unwrap())
            .cast(WorkerMsg::Fail)
            .unwrap();
        wait_for("w restarted", T, || {
            let log = log.clone();
            async move { log.count(&started("w")) == n }
        })
        .await;
        // Let the previous restart leave the window before the next failure.
        let wait = Duration::from_millis(250).saturating_sub(began.elapsed());
        tokio::time::sleep(wait).await;
    }
    assert!(!handle.is_finished(), "supervisor still running");
    sup.shutdown(Some(T)).await.unwrap();
}

#[tokio::test]
async fn backoff_delays_the_restart() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .backoff(Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            jitter: 0.25,
        })
        .child(worker("w", &log));
    let (sup, _h) = Supervisor::spawn(None, spec).await.unwrap();
    let began = Instant::now();
    as_worker(&cell_of(&sup, "w").await.unwrap())
        .cast(WorkerMsg::Fail)
        .unwrap();
    wait_for("w restarted", T, || {
        let log = log.clone();
        async move { log.count(&started("w")) == 2 }
    })
    .await;
    let first = began.elapsed();
    assert!(
        first >= Duration::from_millis(150),
        "first restart after {first:?}"
    );
    // The second restart in the window waits about twice as long.
    let began = Instant::now();
    as_worker(&cell_of(&sup, "w").await.unwrap())
        .cast(WorkerMsg::Fail)
        .unwrap();
    wait_for("w restarted again", T, || {
        let log = log.clone();
        async move { log.count(&started("w")) == 3 }
    })
    .await;
    let second = began.elapsed();
    assert!(
        second >= Duration::from_millis(300),
        "second restart after {second:?}"
    );
    sup.shutdown(Some(T)).await.unwrap();
}

#[tokio::test]
async fn a_child_that_cannot_restart_exhausts_the_intensity() {
    let log = Log::default();
    let args = WorkerArgs::new("w", &log);
    let fail = args.fail_start.clone();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(10))
        .child(worker_with(args));
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
    *fail.lock() = true;
    as_worker(&cell_of(&sup, "w").await.unwrap())
        .cast(WorkerMsg::Fail)
        .unwrap();
    // Each failed restart attempt counts; the supervisor gives up instead of looping.
    tokio::time::timeout(T, handle).await.unwrap().unwrap();
    assert_eq!(log.count(&started("w")), 1);
}
