#![allow(clippy::unwrap_used)]

use super::*;

struct User {
    id: u32,
    groups: Vec<&'static str>,
}

impl FlagActor for User {
    fn flag_id(&self) -> Cow<'_, str> {
        Cow::Owned(format!("user:{}", self.id))
    }
    fn in_group(&self, group: &str) -> bool {
        self.groups.contains(&group)
    }
}

fn flag(gates: Vec<Gate>) -> Flag {
    Flag {
        name: "f".into(),
        gates,
    }
}

#[test]
fn no_gates_is_off() {
    let f = flag(vec![]);
    assert!(!f.enabled(0.0));
    assert!(!f.enabled_for("user:1", 0.0));
}

#[test]
fn boolean_and_time_without_actor() {
    assert!(flag(vec![Gate::Boolean(true)]).enabled(0.9));
    assert!(!flag(vec![Gate::Boolean(false)]).enabled(0.9));
    let t = flag(vec![Gate::Boolean(false), Gate::PercentageOfTime(0.5)]);
    assert!(t.enabled(0.1));
    assert!(!t.enabled(0.9));
    // %-of-actors is ignored without an actor.
    assert!(!flag(vec![Gate::PercentageOfActors(0.99)]).enabled(0.0));
}

#[test]
fn actor_gate_beats_groups_and_boolean() {
    let u = User {
        id: 1,
        groups: vec!["beta"],
    };
    let f = flag(vec![
        Gate::Boolean(true),
        Gate::Group {
            name: "beta".into(),
            enabled: true,
        },
        Gate::Actor {
            id: "user:1".into(),
            enabled: false,
        },
    ]);
    assert!(!f.enabled_for(&u, 0.0));
    let f = flag(vec![
        Gate::Boolean(false),
        Gate::Group {
            name: "beta".into(),
            enabled: false,
        },
        Gate::Actor {
            id: "user:1".into(),
            enabled: true,
        },
    ]);
    assert!(f.enabled_for(&u, 0.0));
}

#[test]
fn a_disabled_group_beats_an_enabled_group_and_the_boolean() {
    let u = User {
        id: 2,
        groups: vec!["beta", "banned"],
    };
    let f = flag(vec![
        Gate::Boolean(true),
        Gate::Group {
            name: "beta".into(),
            enabled: true,
        },
        Gate::Group {
            name: "banned".into(),
            enabled: false,
        },
    ]);
    assert!(!f.enabled_for(&u, 0.0));
    let f = flag(vec![
        Gate::Boolean(false),
        Gate::Group {
            name: "beta".into(),
            enabled: true,
        },
    ]);
    assert!(f.enabled_for(&u, 0.0));
    // Not in the group: falls through to the boolean.
    let outsider = User {
        id: 3,
        groups: vec![],
    };
    assert!(!f.enabled_for(&outsider, 0.0));
}

#[test]
fn with_an_actor_boolean_then_percentage() {
    let f = flag(vec![Gate::Boolean(true), Gate::PercentageOfActors(0.0001)]);
    assert!(f.enabled_for("anyone", 0.0));
    let f = flag(vec![Gate::PercentageOfTime(0.5)]);
    assert!(f.enabled_for("a", 0.2));
    assert!(!f.enabled_for("a", 0.8));
}

#[test]
fn percentage_of_actors_uses_the_score() {
    let name = "f";
    for i in 0..200 {
        let id = format!("user:{i}");
        let s = actor_score(&id, name);
        let f = flag(vec![Gate::PercentageOfActors(0.3)]);
        assert_eq!(f.enabled_for(id.as_str(), 0.99), s <= 0.3, "{id}");
    }
}

#[test]
fn put_replaces_by_key_and_percentages_replace_each_other() {
    let mut f = Flag::new("x");
    f.put(Gate::Boolean(true));
    f.put(Gate::Boolean(false));
    f.put(Gate::PercentageOfTime(0.2));
    f.put(Gate::PercentageOfActors(0.4));
    assert_eq!(
        f.gates,
        vec![Gate::Boolean(false), Gate::PercentageOfActors(0.4)]
    );
    f.clear(&GateKey::Percentage);
    assert_eq!(f.gates, vec![Gate::Boolean(false)]);
}

#[test]
fn names_and_ratios_are_validated() {
    assert!(validate_name("new_checkout_2").is_ok());
    for bad in ["", "a-b", "a b", "é", "a?"] {
        assert_eq!(validate_name(bad), Err(FlagError::InvalidName(bad.into())));
    }
    assert!(Gate::PercentageOfTime(0.5).validate().is_ok());
    for r in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        assert!(Gate::PercentageOfActors(r).validate().is_err(), "{r}");
    }
}

#[test]
fn decisions_name_the_reason_and_the_gate() {
    use GateKind as K;
    let d = |f: &Flag, a: Option<&User>, sample: f64| match a {
        Some(a) => f.decide_for(a, sample),
        None => f.decide(sample),
    };
    let beta = User {
        id: 7,
        groups: vec!["beta"],
    };
    type Case<'a> = (Vec<Gate>, Option<&'a User>, f64, bool, Reason, Option<K>);
    let cases: Vec<Case> = vec![
        (vec![], None, 0.0, false, Reason::NotFound, None),
        (vec![], Some(&beta), 0.0, false, Reason::NotFound, None),
        (
            vec![Gate::Boolean(true)],
            None,
            0.5,
            true,
            Reason::Static,
            Some(K::Boolean),
        ),
        (
            vec![Gate::Boolean(false)],
            Some(&beta),
            0.5,
            false,
            Reason::Static,
            Some(K::Boolean),
        ),
        (
            vec![
                Gate::Boolean(true),
                Gate::Actor {
                    id: "user:7".into(),
                    enabled: false,
                },
            ],
            Some(&beta),
            0.0,
            false,
            Reason::TargetingMatch,
            Some(K::Actor),
        ),
        (
            vec![Gate::Group {
                name: "beta".into(),
                enabled: true,
            }],
            Some(&beta),
            0.0,
            true,
            Reason::TargetingMatch,
            Some(K::Group),
        ),
        // A group gate the actor is not in: nothing applies.
        (
            vec![Gate::Group {
                name: "staff".into(),
                enabled: true,
            }],
            Some(&beta),
            0.0,
            false,
            Reason::Default,
            None,
        ),
        (
            vec![Gate::PercentageOfTime(0.5)],
            None,
            0.9,
            false,
            Reason::Split,
            Some(K::PercentageOfTime),
        ),
        (
            vec![Gate::Boolean(false), Gate::PercentageOfTime(0.5)],
            Some(&beta),
            0.1,
            true,
            Reason::Split,
            Some(K::PercentageOfTime),
        ),
        // %-of-actors without an actor: ignored.
        (
            vec![Gate::PercentageOfActors(0.99)],
            None,
            0.0,
            false,
            Reason::Default,
            None,
        ),
    ];
    for (i, (gates, actor, sample, on, reason, gate)) in cases.into_iter().enumerate() {
        let f = flag(gates);
        let got = d(&f, actor, sample);
        assert_eq!(
            (got.enabled, got.reason, got.gate),
            (on, reason, gate),
            "case {i}"
        );
        // The plain checks give the same answer.
        let plain = match actor {
            Some(a) => f.enabled_for(a, sample),
            None => f.enabled(sample),
        };
        assert_eq!(plain, on, "case {i}");
    }
    let f = flag(vec![Gate::PercentageOfActors(0.3)]);
    for i in 0..50 {
        let u = User {
            id: i,
            groups: vec![],
        };
        let got = f.decide_for(&u, 0.0);
        assert_eq!(got.reason, Reason::Split);
        assert_eq!(got.gate, Some(K::PercentageOfActors));
        assert_eq!(got.enabled, actor_score(&u.flag_id(), "f") <= 0.3);
    }
}

#[test]
fn every_decision_packs_into_a_byte_and_back() {
    let reasons = [
        Reason::Static,
        Reason::TargetingMatch,
        Reason::Split,
        Reason::Default,
        Reason::NotFound,
    ];
    let gates = [
        None,
        Some(GateKind::Boolean),
        Some(GateKind::Actor),
        Some(GateKind::Group),
        Some(GateKind::PercentageOfTime),
        Some(GateKind::PercentageOfActors),
    ];
    for enabled in [false, true] {
        for reason in reasons {
            for gate in gates {
                let d = Decision::new(enabled, reason, gate);
                assert_ne!(d.pack(), 0xFF);
                assert_eq!(Decision::unpack(d.pack()), d);
            }
        }
    }
    // Any byte unpacks to something, without a panic.
    for b in 0..=255u8 {
        let _ = Decision::unpack(b);
    }
}
