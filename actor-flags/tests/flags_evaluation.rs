//! The cache's evaluation details, counters, unknown names and change events, over a real
//! SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use actor_flags::{ChangeOrigin, EvaluationCount, Flag, Flags, Gate, GateKind, Reason, SqlStore};

async fn flags() -> (Flags, Arc<SqlStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::sqlite(&dir.path().join("eval.db")).await.unwrap());
    (Flags::open(store.clone()).await.unwrap(), store, dir)
}

#[tokio::test]
async fn evaluate_gives_the_reason_the_gate_and_the_cached_version() {
    let (flags, _store, _dir) = flags().await;
    flags.enable("on_for_all").await.unwrap();
    flags.disable("targeted").await.unwrap();
    flags
        .set_for_actor("targeted", "user:1", true)
        .await
        .unwrap();
    flags
        .enable_percentage_of_actors("split", 0.5)
        .await
        .unwrap();

    let e = flags.evaluate("on_for_all");
    assert!(e.enabled);
    assert_eq!(
        (e.reason, e.gate),
        (Reason::Static, Some(GateKind::Boolean))
    );
    assert_eq!(e.version, flags.version("on_for_all"));
    assert!(e.version > 0);

    let e = flags.evaluate_for("targeted", "user:1");
    assert!(e.enabled);
    assert_eq!(
        (e.reason, e.gate),
        (Reason::TargetingMatch, Some(GateKind::Actor))
    );
    let e = flags.evaluate_for("targeted", "user:2");
    assert!(!e.enabled);
    assert_eq!(
        (e.reason, e.gate),
        (Reason::Static, Some(GateKind::Boolean))
    );

    let e = flags.evaluate_for("split", "user:3");
    assert_eq!(
        (e.reason, e.gate),
        (Reason::Split, Some(GateKind::PercentageOfActors))
    );
    assert_eq!(e.enabled, flags.enabled_for("split", "user:3"));
    // Without an actor the %-of-actors gate does not apply.
    let e = flags.evaluate("split");
    assert_eq!(
        (e.enabled, e.reason, e.gate),
        (false, Reason::Default, None)
    );

    let e = flags.evaluate("never_created");
    assert_eq!(
        (e.enabled, e.reason, e.gate, e.version),
        (false, Reason::NotFound, None, 0)
    );
    // By handle: the same details.
    let h = flags.handle("targeted").unwrap();
    assert_eq!(
        h.evaluate_for("user:1"),
        flags.evaluate_for("targeted", "user:1")
    );
    // A flag cleared is not found, with the version of its clearing.
    flags.clear("on_for_all").await.unwrap();
    let e = flags.evaluate("on_for_all");
    assert_eq!((e.enabled, e.reason), (false, Reason::NotFound));
    assert_eq!(e.version, flags.version("on_for_all"));
}

#[tokio::test]
async fn counters_are_opt_in_and_count_every_check_on_every_thread() {
    let (flags, _store, _dir) = flags().await;
    flags.enable("counted_on").await.unwrap();
    flags.disable("counted_off").await.unwrap();
    let h = flags.handle("counted_on").unwrap();
    for _ in 0..10 {
        assert!(h.enabled());
    }
    assert!(
        flags.evaluation_counts().is_empty(),
        "nothing counted before counting is on"
    );
    flags.count_evaluations(true);
    std::thread::scope(|s| {
        for _ in 0..3 {
            let f = flags.clone();
            let h = h.clone();
            s.spawn(move || {
                for _ in 0..1000 {
                    assert!(h.enabled());
                    assert!(f.enabled("counted_on"));
                    assert!(!f.enabled_for("counted_off", "user:1"));
                }
            });
        }
    });
    assert!(flags.evaluate("counted_on").enabled);
    // A flag created after counting was turned on is counted too.
    flags.enable("counted_later").await.unwrap();
    assert!(flags.enabled("counted_later"));
    assert_eq!(
        flags.evaluation_counts(),
        vec![
            EvaluationCount {
                name: "counted_later".into(),
                enabled: 1,
                disabled: 0
            },
            EvaluationCount {
                name: "counted_off".into(),
                enabled: 0,
                disabled: 3000
            },
            EvaluationCount {
                name: "counted_on".into(),
                enabled: 6001,
                disabled: 0
            },
        ]
    );
    flags.count_evaluations(false);
    assert!(flags.enabled("counted_on"));
    assert_eq!(
        flags.evaluation_counts()[2].enabled,
        6001,
        "off again: not counted"
    );
}

#[tokio::test]
async fn checks_of_unknown_names_are_counted_per_name_until_the_flag_exists() {
    let (flags, _store, _dir) = flags().await;
    flags.enable("reactions").await.unwrap();
    assert!(!flags.enabled("reactionz"));
    assert!(!flags.enabled_for("reactionz", "user:1"));
    assert!(!flags.evaluate("reactionz").enabled);
    assert!(!flags.enabled("other_typo"));
    assert!(flags.enabled("reactions"));
    assert_eq!(
        flags.unknown_checks(),
        (
            vec![("other_typo".to_owned(), 1), ("reactionz".to_owned(), 3)],
            0
        )
    );
    flags.enable("reactionz").await.unwrap();
    assert!(flags.enabled("reactionz"));
    assert_eq!(
        flags.unknown_checks().0,
        vec![("other_typo".to_owned(), 1)],
        "a name leaves the list once the flag exists"
    );
}

#[tokio::test]
async fn change_events_carry_the_name_the_version_and_the_origin() {
    let (flags, store, _dir) = flags().await;
    let mut watch = flags.watch();
    flags.enable("evented").await.unwrap();
    let c = watch.recv().await.unwrap();
    assert_eq!(
        (c.name.as_str(), c.version, c.origin),
        ("evented", flags.version("evented"), ChangeOrigin::Local)
    );
    // A change from another node.
    let remote = flags.version("evented") + 1_000;
    let mut f = Flag::new("evented");
    f.put(Gate::Boolean(false));
    assert!(flags.apply(f, remote));
    let c = watch.recv().await.unwrap();
    assert_eq!(
        (c.name.as_str(), c.version, c.origin),
        ("evented", remote, ChangeOrigin::Remote)
    );
    // A reload that finds the store changed (another writer) reports that flag only.
    let other = Flags::open(store).await.unwrap();
    other.enable("written_elsewhere").await.unwrap();
    flags.reload().await.unwrap();
    // "evented" differs from the store too (the remote state was never written there); the
    // reload goes in name order.
    let c = watch.recv().await.unwrap();
    assert_eq!(
        (c.name.as_str(), c.origin),
        ("evented", ChangeOrigin::Store)
    );
    let c = watch.recv().await.unwrap();
    assert_eq!(
        (c.name.as_str(), c.origin),
        ("written_elsewhere", ChangeOrigin::Store)
    );
    flags.reload().await.unwrap();
    assert!(
        watch.try_recv().is_err(),
        "a reload that finds nothing new reports nothing"
    );
}
