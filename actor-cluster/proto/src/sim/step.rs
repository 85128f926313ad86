//! One step of the simulation: an event delivered to its node (or parked while the node is
//! frozen), and the checks made on every child start.

use super::{check, name, Class, Ev, Queued, Sim, Violation, QUIET};

impl Sim {
    pub(super) fn handle(&mut self, q: Queued) -> Result<(), Violation> {
        if let Ev::Fault(f) = q.ev {
            return self.fault(f);
        }
        let target = match &q.ev {
            Ev::Deliver { to, .. } => *to,
            Ev::SessionUp { node, .. }
            | Ev::SessionDown { node, .. }
            | Ev::PeerVisible { node, .. }
            | Ev::DialFailed { node, .. } => *node,
            Ev::MembershipTick(n) | Ev::ServiceTick(n) | Ev::Discover(n) => *n,
            Ev::Fault(_) => return Ok(()),
        };
        if q.inc != self.inc(target) || !self.alive(target) {
            return Ok(());
        }
        if self.slots.get(target).is_some_and(|s| s.frozen) {
            if let Some(s) = self.slots.get_mut(target) {
                s.parked.push(q);
            }
            return Ok(());
        }
        let now = self.at(target);
        let inc = q.inc;
        let Some(mut node) = self.slots.get_mut(target).and_then(|s| s.node.take()) else {
            return Ok(());
        };
        let out = match q.ev {
            Ev::Deliver {
                from, conn, wire, ..
            } => {
                if self.conns.get(&conn).is_some_and(|c| c.open) {
                    node.on_wire(now, &from, wire)
                } else {
                    Vec::new()
                }
            }
            Ev::SessionUp { peer, conn, .. } => {
                let open = self.conns.get(&conn).is_some_and(|c| c.open);
                match self.slots.get(peer).and_then(|s| s.node.as_ref()) {
                    Some(p) if open => {
                        let ident = p.me.clone();
                        let name = ident.name.clone();
                        // ractor_cluster syncs the process groups before the session is
                        // ready: the peer's endpoints are visible when membership hears of it.
                        node.visible.insert(name.clone());
                        let d = self.delay();
                        self.push(
                            d,
                            inc,
                            Ev::PeerVisible {
                                node: target,
                                peer: name,
                                conn,
                            },
                        );
                        let actions = node.membership.on_session_up(ident, now.mono);
                        node.membership_actions(now, actions)
                    }
                    _ => Vec::new(),
                }
            }
            Ev::SessionDown { peer, .. } => {
                let open = super::net::index(&peer, self.slots.len())
                    .is_some_and(|p| self.open_between(target, p).next().is_some());
                if !open {
                    node.visible.remove(&peer);
                }
                let actions = node.membership.on_session_down(&peer, now.mono);
                node.membership_actions(now, actions)
            }
            Ev::PeerVisible { peer, conn, .. } => {
                if self.conns.get(&conn).is_some_and(|c| c.open) {
                    node.visible.insert(peer.clone());
                    let mut out = Vec::new();
                    let effects = node.registry.on_peer_joined(&peer);
                    node.reg_effects(now, effects, &mut out);
                    out
                } else {
                    Vec::new()
                }
            }
            Ev::DialFailed { addr, .. } => {
                let actions = node.membership.on_dial_failed(addr, now.mono);
                node.membership_actions(now, actions)
            }
            Ev::MembershipTick(_) => {
                let t = self.timings.heartbeat_interval;
                self.push(t, inc, Ev::MembershipTick(target));
                let sample = self.rng.next_u64();
                node.tick_membership(now, sample)
            }
            Ev::ServiceTick(_) => {
                self.push(
                    crate::supervisor::TICK_INTERVAL,
                    inc,
                    Ev::ServiceTick(target),
                );
                let before: Vec<String> = node.sup.table().tombstones().cloned().collect();
                let out = node.tick_services(now);
                let table = node.sup.table();
                self.collected_ids
                    .extend(before.into_iter().filter(|id| table.get(id).is_none()));
                out
            }
            Ev::Discover(_) => {
                let t = self.timings.discovery_interval;
                self.push(t, inc, Ev::Discover(target));
                let actions = node.discovered(now.mono);
                node.membership_actions(now, actions)
            }
            Ev::Fault(_) => Vec::new(),
        };
        if let Some(s) = self.slots.get_mut(target) {
            s.node = Some(node);
        }
        self.outputs(target, out)
    }

    pub(super) fn started(&mut self, on: usize, id: &str) -> Result<(), Violation> {
        // A child whose node's lease has lapsed handles nothing (the shell refuses its
        // messages): it does not count as running, even while its node is frozen.
        let elsewhere: Vec<usize> = (0..self.slots.len())
            .filter(|&i| i != on)
            .filter(|&i| {
                let now = self.at(i);
                self.slots
                    .get(i)
                    .and_then(|s| s.node.as_ref())
                    .is_some_and(|n| {
                        n.children.contains(id) && n.sup.fence(now).is_none_or(|t| t > now.mono)
                    })
            })
            .collect();
        if elsewhere.is_empty() {
            return Ok(());
        }
        self.duplicate_starts += 1;
        let on_names: Vec<String> = elsewhere.iter().map(|&i| name(i)).collect();
        if self.scenario.class == Class::Join {
            return Err(self.violation(format!(
                "{} started {id} while it ran on {on_names:?} (a joining node must sync first)",
                name(on)
            )));
        }
        if self.scenario.class == Class::Quorum {
            return Err(self.violation(format!(
                "quorum: {} started {id} while it ran on {on_names:?}",
                name(on)
            )));
        }
        if self.now.saturating_sub(self.last_fault) >= QUIET && check::met_everyone(self, on) {
            return Err(self.violation(format!(
                "{} had met every member, yet started {id} while it ran on {on_names:?}",
                name(on)
            )));
        }
        Ok(())
    }
}
