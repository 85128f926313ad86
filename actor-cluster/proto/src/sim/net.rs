//! The simulated network: per-link FIFO delivery with random delay and loss, dials, closes,
//! and what a node's outputs become.

use std::net::SocketAddr;
use std::time::Duration;

use super::node::{Out, Wire};
use super::{name, Conn, Ev, Sim, Violation};

impl Sim {
    pub(super) fn send(&mut self, from: usize, to: &str, wire: Wire) {
        let heartbeat = matches!(wire, Wire::Probe(..));
        let visible = self
            .slots
            .get(from)
            .and_then(|s| s.node.as_ref())
            .is_some_and(|n| n.visible.contains(to));
        // Probes go on every connection (the control lane); services need the peer's
        // endpoints.
        let Some(peer) = index(to, self.slots.len()) else {
            return;
        };
        let Some(id) = self.open_between(from, peer).next() else {
            return;
        };
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        if !heartbeat && !visible {
            return;
        }
        let dir = if conn.a == from { 0 } else { 1 };
        let last = conn.last[dir];
        self.traffic.count(&wire);
        if self.cut(from, peer) || (self.loss > 0.0 && self.rng.chance(self.loss)) {
            return;
        }
        let d = self.delay();
        let at = (self.now + d).max(last);
        if let Some(c) = self.conns.get_mut(&id) {
            c.last[dir] = at;
        }
        let inc = self.inc(peer);
        let after = at.saturating_sub(self.now);
        self.push(
            after,
            inc,
            Ev::Deliver {
                to: peer,
                from: name(from),
                conn: id,
                wire,
            },
        );
    }

    /// The open connections between two nodes, oldest first.
    pub(super) fn open_between(&self, a: usize, b: usize) -> impl Iterator<Item = u64> + '_ {
        self.open
            .get(&(a.min(b), a.max(b)))
            .into_iter()
            .flat_map(|ids| ids.iter().copied())
    }

    pub(super) fn dial(&mut self, from: usize, to: SocketAddr, expect: Option<String>) {
        let target = node_at(to, self.slots.len());
        let inc = self.inc(from);
        let refused = Duration::from_millis(self.rng.range(1, 5));
        let Some(t) = target.filter(|&t| self.alive(t)) else {
            self.push(
                refused,
                inc,
                Ev::DialFailed {
                    node: from,
                    addr: to,
                },
            );
            return;
        };
        if expect.as_deref().is_some_and(|e| e != name(t)) {
            self.push(
                refused,
                inc,
                Ev::DialFailed {
                    node: from,
                    addr: to,
                },
            );
            return;
        }
        if self.cut(from, t) || self.slots.get(t).is_some_and(|s| s.frozen) {
            let timeout = self.timings.dial_timeout;
            self.push(
                timeout,
                inc,
                Ev::DialFailed {
                    node: from,
                    addr: to,
                },
            );
            return;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                a: from,
                b: t,
                open: true,
                last: [Duration::ZERO; 2],
            },
        );
        self.open
            .entry((from.min(t), from.max(t)))
            .or_default()
            .insert(id);
        let d1 = self.delay() * 2;
        let d2 = self.delay() * 2;
        let tinc = self.inc(t);
        self.push(
            d1,
            inc,
            Ev::SessionUp {
                node: from,
                peer: t,
                conn: id,
            },
        );
        self.push(
            d2,
            tinc,
            Ev::SessionUp {
                node: t,
                peer: from,
                conn: id,
            },
        );
    }

    pub(super) fn close(&mut self, from: usize, peer: &str) {
        let Some(p) = index(peer, self.slots.len()) else {
            return;
        };
        let ids: Vec<u64> = self.open_between(from, p).collect();
        for id in ids {
            self.close_conn(id);
        }
    }

    pub(super) fn close_conn(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if !c.open {
            return;
        }
        c.open = false;
        let (a, b) = (c.a, c.b);
        let key = (a.min(b), a.max(b));
        if let Some(ids) = self.open.get_mut(&key) {
            ids.remove(&id);
            if ids.is_empty() {
                self.open.remove(&key);
            }
        }
        for (node, other) in [(a, b), (b, a)] {
            let d = self.delay();
            let inc = self.inc(node);
            self.push(
                d,
                inc,
                Ev::SessionDown {
                    node,
                    peer: name(other),
                },
            );
        }
    }

    pub(super) fn outputs(&mut self, from: usize, out: Vec<Out>) -> Result<(), Violation> {
        for o in out {
            match o {
                Out::Broadcast(wire) => {
                    let peers: Vec<String> = self
                        .slots
                        .get(from)
                        .and_then(|s| s.node.as_ref())
                        .map(|n| n.visible.iter().cloned().collect())
                        .unwrap_or_default();
                    for p in peers {
                        self.send(from, &p, wire.clone());
                    }
                }
                Out::Send(to, wire) => self.send(from, &to, wire),
                Out::Dial(addr, expect) => self.dial(from, addr, expect),
                Out::Close(peer) => self.close(from, &peer),
                Out::Started(id) => self.started(from, &id)?,
            }
        }
        Ok(())
    }
}

/// The index of the node named `name` (`n{i}`), if there is such a slot.
pub(super) fn index(name: &str, slots: usize) -> Option<usize> {
    name.strip_prefix('n')
        .and_then(|i| i.parse::<usize>().ok())
        .filter(|&i| i < slots)
}

/// The index of the node listening on `to`, if there is such a slot.
fn node_at(to: SocketAddr, slots: usize) -> Option<usize> {
    let i = to.port().checked_sub(7000)? as usize;
    (i < slots && super::addr(i) == to).then_some(i)
}
