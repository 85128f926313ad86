//! The membership machine's unit tests.
use std::collections::BTreeSet;

use super::*;

fn node(name: &str, inc: u64, port: u16) -> NodeIdentity {
    NodeIdentity {
        name: name.into(),
        incarnation: inc,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn emitted(actions: &[Action]) -> Vec<MemberEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn dials(actions: &[Action]) -> Vec<SocketAddr> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dial { addr, .. } => Some(*addr),
            _ => None,
        })
        .collect()
}

#[test]
fn seeds_are_dialed_and_retried_with_backoff() {
    let t0 = Instant::now();
    let mut m = Membership::new(node("a", 1, 1), Timings::default());
    let seed = node("b", 1, 2).addr;
    let acts = m.on_discovered(&[seed, m.me().addr], t0);
    assert_eq!(dials(&acts), vec![seed], "never dials itself");
    // In flight: no second dial.
    assert!(dials(&m.tick(t0 + Duration::from_millis(10), 0)).is_empty());
    m.on_dial_failed(seed, t0);
    assert!(dials(&m.tick(t0 + Duration::from_millis(50), 0)).is_empty());
    assert_eq!(
        dials(&m.tick(t0 + Duration::from_millis(100), 0)),
        vec![seed]
    );
    m.on_dial_failed(seed, t0 + Duration::from_millis(100));
    // Backoff doubled to 200 ms.
    assert!(dials(&m.tick(t0 + Duration::from_millis(250), 0)).is_empty());
    assert_eq!(
        dials(&m.tick(t0 + Duration::from_millis(300), 0)),
        vec![seed]
    );
}

#[test]
fn dials_that_keep_failing_are_reported_then_rarely_and_a_session_resets_the_count() {
    let t0 = Instant::now();
    let mut m = Membership::new(node("a", 1, 1), Timings::default());
    let b = node("b", 1, 2);
    let _ = m.on_discovered(&[b.addr], t0);
    let unreachable = |acts: &[Action]| {
        acts.iter()
            .filter(|a| matches!(a, Action::Unreachable { .. }))
            .count()
    };
    let mut said = Vec::new();
    for i in 1..=(DIAL_WARN_AFTER + DIAL_WARN_EVERY) {
        if unreachable(&m.on_dial_failed(b.addr, t0)) > 0 {
            said.push(i);
        }
    }
    assert_eq!(
        said,
        vec![DIAL_WARN_AFTER, DIAL_WARN_AFTER + DIAL_WARN_EVERY]
    );
    let _ = m.on_session_up(b.clone(), t0);
    for _ in 1..DIAL_WARN_AFTER {
        assert_eq!(unreachable(&m.on_dial_failed(b.addr, t0)), 0);
    }
    assert_eq!(unreachable(&m.on_dial_failed(b.addr, t0)), 1);
}

#[test]
fn session_up_and_down_emit_events() {
    let t0 = Instant::now();
    let mut m = Membership::new(node("a", 1, 1), Timings::default());
    let b = node("b", 1, 2);
    assert_eq!(
        emitted(&m.on_session_up(b.clone(), t0)),
        vec![MemberEvent::MemberUp(b.clone())]
    );
    // A duplicate session adds nothing; closing one of two keeps the member up.
    assert!(emitted(&m.on_session_up(b.clone(), t0)).is_empty());
    assert!(emitted(&m.on_session_down("b", t0)).is_empty());
    assert_eq!(
        emitted(&m.on_session_down("b", t0)),
        vec![MemberEvent::MemberDown {
            node: b.clone(),
            reason: DownReason::ConnectionClosed
        }]
    );
    assert_eq!(m.members()[0].state, MemberState::Down);
}

fn pings(actions: &[Action]) -> Vec<(String, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                to,
                probe: Probe::Ping { seq, .. },
            } => Some((to.clone(), *seq)),
            _ => None,
        })
        .collect()
}

fn ack(seq: u64) -> Probe {
    Probe::Ack { seq, members: 0 }
}

/// A session with `peer`, whose first ping is answered.
fn connect(m: &mut Membership, peer: &NodeIdentity, now: Instant) {
    let acts = m.on_session_up(peer.clone(), now);
    let sent = pings(&acts);
    assert_eq!(sent.len(), 1, "a new session starts with a ping: {acts:?}");
    m.on_probe(&peer.name, ack(sent[0].1), now);
}

#[test]
fn each_tick_pings_one_member_and_a_round_reaches_every_member() {
    let t0 = Instant::now();
    let mut m = Membership::new(node("a", 1, 1), Timings::default());
    let peers: Vec<NodeIdentity> = (0..5).map(|i| node(&format!("p{i}"), 1, 10 + i)).collect();
    for p in &peers {
        connect(&mut m, p, t0);
    }
    let mut seen = BTreeSet::new();
    for i in 0..5u64 {
        let now = t0 + Duration::from_millis(100 * i);
        let sent = pings(&m.tick(now, 42));
        assert_eq!(sent.len(), 1, "one ping per tick: {sent:?}");
        let (to, seq) = sent[0].clone();
        seen.insert(to.clone());
        // Answered: no suspicion, and the member is not pinged twice in a round.
        assert!(emitted(&m.on_probe(&to, ack(seq), now)).is_empty());
    }
    assert_eq!(seen.len(), 5, "a round pings every member once: {seen:?}");
}

#[test]
fn an_unanswered_ping_makes_a_member_suspect_then_down_and_closes_it() {
    let t0 = Instant::now();
    // Ticks far apart on purpose: a long interval, so that no gap counts as a stall.
    let tm = Timings {
        heartbeat_interval: Duration::from_secs(10),
        ..Timings::default()
    };
    let mut m = Membership::new(node("a", 1, 1), tm);
    let b = node("b", 1, 2);
    connect(&mut m, &b, t0);
    let (_, seq) = pings(&m.tick(t0, 1))[0].clone();
    let acts = m.tick(t0 + tm.suspect_after, 1);
    assert_eq!(m.members()[0].state, MemberState::Suspect);
    assert!(
        acts.contains(&Action::Broadcast(Probe::Suspect(b.clone()))),
        "every member is asked to probe it: {acts:?}"
    );
    assert_eq!(pings(&acts), vec![("b".to_owned(), seq)], "asked again");
    // An answer clears the suspicion.
    m.on_probe("b", ack(seq), t0 + tm.suspect_after);
    assert_eq!(m.members()[0].state, MemberState::Up);
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(pings(&m.tick(t1, 1)).len(), 1);
    assert!(emitted(&m.tick(t1 + tm.down_after - Duration::from_millis(1), 1)).is_empty());
    let acts = m.tick(t1 + tm.down_after, 1);
    assert_eq!(
        emitted(&acts),
        vec![MemberEvent::MemberDown {
            node: b.clone(),
            reason: DownReason::HeartbeatTimeout
        }]
    );
    assert!(acts.contains(&Action::Close("b".into())));
    // The late session close adds no second event.
    assert!(emitted(&m.on_session_down("b", t0 + Duration::from_secs(3))).is_empty());
}

#[test]
fn a_rumor_is_checked_with_an_own_ping_never_believed() {
    let t0 = Instant::now();
    // Ticks far apart on purpose: a long interval, so that no gap counts as a stall.
    let tm = Timings {
        heartbeat_interval: Duration::from_secs(10),
        ..Timings::default()
    };
    let mut m = Membership::new(node("a", 1, 1), tm);
    let (b, c) = (node("b", 1, 2), node("c", 1, 3));
    connect(&mut m, &b, t0);
    connect(&mut m, &c, t0);
    // c could not reach b: a pings b at once.
    let acts = m.on_probe("c", Probe::Suspect(b.clone()), t0);
    let sent = pings(&acts);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "b");
    // b answers a: b stays up here, whatever c concluded.
    m.on_probe("b", ack(sent[0].1), t0 + Duration::from_millis(5));
    let window = tm.down_after - tm.suspect_after;
    let later = t0 + window * 2;
    let acts = m.tick(later, 7);
    assert!(emitted(&acts).is_empty());
    assert!(m.up_members().contains(&b));
    for (to, seq) in pings(&acts) {
        m.on_probe(&to, ack(seq), later);
    }
    // Another rumor, and b stays silent: down for a too, once what is left of `down_after`
    // has passed.
    let t1 = t0 + Duration::from_secs(5);
    assert_eq!(
        pings(&m.on_probe("c", Probe::Suspect(b.clone()), t1)).len(),
        1
    );
    assert!(emitted(&m.tick(t1 + window - Duration::from_millis(1), 7))
        .iter()
        .all(|e| !matches!(e, MemberEvent::MemberDown { .. })));
    assert!(
        emitted(&m.tick(t1 + window, 7)).contains(&MemberEvent::MemberDown {
            node: b.clone(),
            reason: DownReason::HeartbeatTimeout
        })
    );
    // A rumor about this node itself, or about another incarnation, is ignored.
    assert!(pings(&m.on_probe("c", Probe::Suspect(node("a", 1, 1)), t1)).is_empty());
    assert!(pings(&m.on_probe("c", Probe::Suspect(node("c", 9, 3)), t1)).is_empty());
}

#[test]
fn digests_that_differ_exchange_member_lists_at_a_bounded_rate() {
    let t0 = Instant::now();
    let mut a = Membership::new(node("a", 1, 1), Timings::default());
    let mut b = Membership::new(node("b", 1, 2), Timings::default());
    let c = node("c", 1, 3);
    a.on_session_up(node("b", 1, 2), t0);
    b.on_session_up(node("a", 1, 1), t0);
    assert_eq!(a.digest(), b.digest(), "a formed pair agrees");
    a.on_session_up(c.clone(), t0);
    assert_ne!(a.digest(), b.digest());
    let members = |acts: &[Action]| {
        acts.iter()
            .filter_map(|x| match x {
                Action::Send {
                    probe: Probe::Members(l),
                    ..
                } => Some(l.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Not while a's own set has just changed.
    let early = Probe::Ping {
        seq: 1,
        members: b.digest(),
    };
    assert!(members(&a.on_probe("b", early, t0)).is_empty());
    let later = t0 + MEMBERS_EVERY.max(MEMBERS_STABLE);
    let ping = Probe::Ping {
        seq: 1,
        members: b.digest(),
    };
    let acts = a.on_probe("b", ping.clone(), later);
    let lists = members(&acts);
    assert_eq!(lists.len(), 1, "{acts:?}");
    assert!(
        members(&a.on_probe("b", ping, later)).is_empty(),
        "rate-limited"
    );
    // b learns of c from the list and dials it ("c" sorts after "b": after the courtesy wait).
    let list = lists[0].clone();
    b.on_probe("a", Probe::Members(list), later);
    let dialed = dials(&b.tick(later + Timings::default().reconnect_max, 0));
    assert_eq!(dialed, vec![c.addr]);
}

#[test]
fn gossip_leads_to_dials_with_the_later_name_first() {
    let t0 = Instant::now();
    let mut m = Membership::new(node("b", 1, 2), Timings::default());
    let a = node("a", 1, 1);
    let c = node("c", 1, 3);
    let d = node("d", 1, 4);
    m.on_session_up(c.clone(), t0);
    let acts = m.on_probe(
        "c",
        Probe::Members(vec![c.clone(), a.clone(), d.clone()]),
        t0,
    );
    // "b" > "a": b dials a at once; "d" > "b": d is expected to dial b.
    assert_eq!(dials(&acts), vec![a.addr]);
    // If d has not dialed after the grace period, b dials it.
    let later = t0 + Timings::default().reconnect_max;
    assert_eq!(dials(&m.tick(later, 0)), vec![d.addr]);
}

#[test]
fn a_member_with_a_session_is_not_dialed_and_is_redialed_when_it_closes_or_goes_silent() {
    let t0 = Instant::now();
    let timings = Timings::default();
    let mut m = Membership::new(node("b", 1, 2), timings);
    let a = node("a", 1, 1);
    let _ = m.on_discovered(&[a.addr], t0);
    m.on_session_up(a.clone(), t0);
    // Within the first ping's deadline (the peer has not had to answer yet).
    let idle = t0 + timings.heartbeat_interval;
    assert!(dials(&m.tick(idle, 0)).is_empty(), "connected: no dial");
    // The session closes: "b" > "a", so b redials at once (no courtesy wait).
    let acts = m.on_session_down("a", idle);
    assert!(dials(&acts).is_empty());
    assert_eq!(dials(&m.tick(idle, 0)), vec![a.addr]);
    // Connected again, then silent until the ping deadline: down, closed, and redialed.
    let t1 = idle + Duration::from_millis(10);
    m.on_session_up(a.clone(), t1);
    let mut t = t1;
    let mut redialed = false;
    while t < t1 + timings.down_after * 4 && !redialed {
        t += timings.heartbeat_interval;
        redialed = !dials(&m.tick(t, 0)).is_empty();
    }
    assert!(redialed, "a member gone silent is redialed");
    assert_eq!(m.member_state("a"), Some(MemberState::Down));
}

#[test]
fn a_new_incarnation_replaces_the_old_one() {
    let t0 = Instant::now();
    let mut m = Membership::new(node("a", 1, 1), Timings::default());
    let b1 = node("b", 1, 2);
    let b2 = node("b", 2, 2);
    m.on_session_up(b1.clone(), t0);
    let acts = m.on_session_up(b2.clone(), t0);
    assert_eq!(
        emitted(&acts),
        vec![
            MemberEvent::MemberDown {
                node: b1.clone(),
                reason: DownReason::Restarted
            },
            MemberEvent::MemberUp(b2.clone())
        ]
    );
    // A stale incarnation is refused.
    let acts = m.on_session_up(b1, t0);
    assert_eq!(acts, vec![Action::Close("b".into())]);
    assert_eq!(m.members()[0].node, b2);
}

#[test]
fn a_member_that_left_is_not_redialed() {
    let t0 = Instant::now();
    let mut m = Membership::new(node("z", 1, 9), Timings::default());
    let b = node("b", 1, 2);
    m.on_session_up(b.clone(), t0);
    assert_eq!(
        emitted(&m.on_leave(&b)),
        vec![MemberEvent::MemberLeft(b.clone())]
    );
    assert!(emitted(&m.on_session_down("b", t0)).is_empty());
    assert!(dials(&m.tick(t0 + Duration::from_secs(10), 0)).is_empty());
    // Gossip about the same incarnation does not bring it back.
    let c = node("c", 1, 3);
    m.on_session_up(c.clone(), t0);
    assert!(dials(&m.on_probe(
        "c",
        Probe::Members(vec![b.clone()]),
        t0 + Duration::from_secs(11)
    ))
    .is_empty());
}

#[test]
fn a_stalled_node_does_not_blame_its_members_for_its_own_pause() {
    let t0 = Instant::now();
    let tm = Timings::default();
    let mut m = Membership::new(node("a", 1, 1), tm);
    let b = node("b", 1, 2);
    connect(&mut m, &b, t0);
    let _ = m.tick(t0, 3);
    // This node pauses for 2 s (ticks stop): the ping's deadline moves with the pause.
    let resumed = t0 + Duration::from_secs(2);
    assert!(emitted(&m.tick(resumed, 3)).is_empty());
    // Ticking on time again, an unanswered ping still takes the member down.
    let mut t = resumed;
    let mut downs = Vec::new();
    while t < resumed + tm.down_after * 2 {
        t += tm.heartbeat_interval;
        downs.extend(emitted(&m.tick(t, 3)));
    }
    assert_eq!(
        downs,
        vec![MemberEvent::MemberDown {
            node: b,
            reason: DownReason::HeartbeatTimeout
        }]
    );
}
