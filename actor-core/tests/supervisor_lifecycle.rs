//! Ordered start, start failure, reverse-order shutdown with timeouts, dynamic supervisors and
//! nested trees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use actor_core::ractor::{ActorCell, SpawnErr};
use actor_core::supervisor::{
    ChildKind, ChildSpec, DynamicSupervisor, Restart, Shutdown, Strategy, Supervisor,
    SupervisorError, SupervisorSpec,
};
use common::*;

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn children_start_in_order_and_a_start_failure_fails_the_supervisor() {
    let log = Log::default();
    let bad = WorkerArgs::new("b", &log);
    *bad.fail_start.lock() = true;
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log))
        .child(worker_with(bad))
        .child(worker("c", &log));
    let err = Supervisor::spawn(None, spec)
        .await
        .expect_err("start must fail");
    match err {
        SpawnErr::StartupFailed(inner) => {
            let e = inner
                .downcast_ref::<SupervisorError>()
                .expect("a SupervisorError");
            match e {
                SupervisorError::StartFailed { id, reason } => {
                    assert_eq!(id, "b");
                    assert!(reason.contains("worker b refuses to start"), "{reason}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        other => panic!("unexpected {other:?}"),
    }
    // a started, was stopped again; c never started.
    assert_eq!(
        log.snapshot(),
        vec![started("a"), Ev::Stopping("a".into()), stopped("a")]
    );
}

#[tokio::test]
async fn shutdown_runs_in_reverse_order_and_kills_a_child_over_its_timeout() {
    let log = Log::default();
    let mut slow = WorkerArgs::new("slow", &log);
    slow.stop_delay = Duration::from_secs(30);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("first", &log))
        .child(worker_with(slow).shutdown(Shutdown::Timeout(Duration::from_millis(200))))
        .child(worker("last", &log));
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
    log.take();
    let began = Instant::now();
    sup.shutdown(Some(T)).await.unwrap();
    let took = began.elapsed();
    tokio::time::timeout(T, handle).await.unwrap().unwrap();
    assert_eq!(
        log.snapshot(),
        vec![
            Ev::Stopping("last".into()),
            stopped("last"),
            Ev::Stopping("slow".into()),
            // killed after 200 ms: its post_stop never finished
            Ev::Stopping("first".into()),
            stopped("first"),
        ]
    );
    assert!(took >= Duration::from_millis(200), "waited {took:?}");
    assert!(took < Duration::from_secs(5), "waited {took:?}");
}

#[tokio::test]
async fn brutal_shutdown_kills_without_post_stop() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("b", &log).shutdown(Shutdown::Brutal));
    let (sup, _h) = Supervisor::spawn(None, spec).await.unwrap();
    sup.shutdown(Some(T)).await.unwrap();
    assert_eq!(log.snapshot(), vec![started("b")]);
}

#[tokio::test]
async fn dynamic_supervisor_limits_and_bookkeeping() {
    let log = Log::default();
    let spec = SupervisorSpec::default().max_children(2);
    let (sup, _h) = DynamicSupervisor::spawn(None, spec).await.unwrap();
    assert_eq!(sup.count_children().await.unwrap().specs, 0);

    let a = sup.start_child(worker("a", &log)).await.unwrap();
    assert_eq!(
        sup.start_child(worker("a", &log)).await.unwrap_err(),
        SupervisorError::AlreadyStarted { id: "a".into() }
    );
    sup.start_child(worker("b", &log).restart(Restart::Temporary))
        .await
        .unwrap();
    assert_eq!(
        sup.start_child(worker("c", &log)).await.unwrap_err(),
        SupervisorError::MaxChildren(2)
    );
    let count = sup.count_children().await.unwrap();
    assert_eq!(
        (count.specs, count.active, count.workers, count.supervisors),
        (2, 2, 2, 0)
    );
    let ids: Vec<String> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec!["a", "b"]);

    // A failed child is restarted per its restart type, one for one.
    as_worker(&a).cast(WorkerMsg::Fail).unwrap();
    wait_for("a restarted", T, || {
        let log = log.clone();
        async move { log.count(&started("a")) == 2 }
    })
    .await;
    let a2: ActorCell = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == "a")
        .and_then(|c| c.cell)
        .unwrap();
    assert_ne!(a.get_id(), a2.get_id());

    // terminate_child stops it (post_stop runs) and frees the slot.
    sup.terminate_child("a").await.unwrap();
    assert_eq!(log.count(&stopped("a")), 1);
    assert_eq!(
        sup.terminate_child("a").await.unwrap_err(),
        SupervisorError::NotFound { id: "a".into() }
    );
    sup.start_child(worker("c", &log)).await.unwrap();

    // A start failure is reported to the caller and takes no slot.
    let bad = WorkerArgs::new("bad", &log);
    *bad.fail_start.lock() = true;
    sup.terminate_child("b").await.unwrap();
    match sup.start_child(worker_with(bad)).await.unwrap_err() {
        SupervisorError::StartFailed { id, reason } => {
            assert_eq!(id, "bad");
            assert!(reason.contains("refuses"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(sup.count_children().await.unwrap().specs, 1);
    sup.shutdown(Some(T)).await.unwrap();
    assert_eq!(log.count(&stopped("c")), 1);
}

#[tokio::test]
async fn dynamic_supervisor_removes_children_that_are_not_restarted() {
    let log = Log::default();
    let (sup, _h) = DynamicSupervisor::spawn(None, SupervisorSpec::default())
        .await
        .unwrap();
    let t = sup
        .start_child(worker("t", &log).restart(Restart::Transient))
        .await
        .unwrap();
    as_worker(&t).cast(WorkerMsg::Exit).unwrap();
    t.wait(Some(T)).await.unwrap();
    wait_for("transient child removed after a normal exit", T, || {
        let sup = sup.clone();
        async move { sup.count_children().await.unwrap().specs == 0 }
    })
    .await;
    sup.shutdown(Some(T)).await.unwrap();
}

#[tokio::test]
async fn nested_trees_restart_subtrees_and_escalate_upwards() {
    let log = Log::default();
    let inner = SupervisorSpec::new(Strategy::OneForAll)
        .intensity(0, Duration::from_secs(5))
        .child(ChildSpec::actor(
            "x",
            Some("nested-x".into()),
            Worker,
            WorkerArgs::new("x", &log),
        ))
        .child(worker("y", &log));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(ChildSpec::supervisor("inner", None, inner))
        .child(worker("z", &log));
    let (root, _h) = Supervisor::spawn(None, spec).await.unwrap();
    assert_eq!(log.take(), vec![started("x"), started("y"), started("z")]);
    let count = root.count_children().await.unwrap();
    assert_eq!((count.supervisors, count.workers), (1, 1));
    let children = root.which_children().await.unwrap();
    assert_eq!(children[0].kind, ChildKind::Supervisor);
    let inner_cell = children[0].cell.clone().unwrap();
    let z_before = children[1].cell.as_ref().map(|c| c.get_id());

    // x fails; the inner supervisor allows 0 restarts, so it stops y and fails; the root then
    // restarts the whole inner subtree and leaves z alone.
    let x = actor_core::ractor::ActorRef::<WorkerMsg>::where_is("nested-x").unwrap();
    x.cast(WorkerMsg::Fail).unwrap();
    wait_for("subtree restarted", T, || {
        let log = log.clone();
        async move { log.count(&started("x")) == 1 && log.count(&started("y")) == 1 }
    })
    .await;
    let events = log.take();
    assert!(events.contains(&stopped("y")), "{events:?}");
    assert!(!events
        .iter()
        .any(|e| matches!(e, Ev::Stopping(id) if id == "z")));
    let children = root.which_children().await.unwrap();
    assert_ne!(
        children[0].cell.as_ref().unwrap().get_id(),
        inner_cell.get_id()
    );
    assert_eq!(children[1].cell.as_ref().map(|c| c.get_id()), z_before);

    // Shutting the root down stops z, then the inner tree (y, then x).
    root.shutdown(Some(T)).await.unwrap();
    let order: Vec<Ev> = log
        .take()
        .into_iter()
        .filter(|e| matches!(e, Ev::Stopped(_)))
        .collect();
    assert_eq!(order, vec![stopped("z"), stopped("y"), stopped("x")]);
}

#[tokio::test]
async fn dynamic_supervisor_nests_under_a_static_one() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(DynamicSupervisor::child_spec(
        "pool",
        Some("lifecycle-pool".into()),
        SupervisorSpec::default(),
    ));
    let (root, _h) = Supervisor::spawn(None, spec).await.unwrap();
    let pool = actor_core::supervisor::DynamicSupervisorRef(
        actor_core::ractor::ActorRef::<actor_core::supervisor::SupervisorMsg>::where_is(
            "lifecycle-pool",
        )
        .unwrap(),
    );
    pool.start_child(worker("w", &log)).await.unwrap();
    root.shutdown(Some(T)).await.unwrap();
    assert_eq!(
        log.snapshot(),
        vec![started("w"), Ev::Stopping("w".into()), stopped("w")]
    );
}
