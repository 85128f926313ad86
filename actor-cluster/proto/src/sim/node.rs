//! One simulated node: the three cores, glued together the way the shell glues them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actor_core_base::supervision::ExitReason;

use crate::membership::{Action, MemberEvent, Membership, Probe, Timings};
use crate::registry::state::Change;
use crate::registry::{RegEffect, RegPeerMsg, Replica, NAME_CONFLICT};
use crate::supervisor::{Placement, StartOutcome, SupEffect, SupPeerMsg, SupervisorCore};
use crate::{NodeIdentity, Now, Owner};

/// A message between two simulated nodes.
#[derive(Debug, Clone)]
pub(crate) enum Wire {
    /// A membership frame on the control lane, with the services' summaries.
    Probe(Probe, Vec<(u64, u64)>),
    Reg(RegPeerMsg),
    Sup(SupPeerMsg),
}

/// What a node asks of the simulated world.
#[derive(Debug)]
pub(crate) enum Out {
    /// To every peer whose endpoints this node sees.
    Broadcast(Wire),
    /// To one peer (if its endpoints are visible).
    Send(String, Wire),
    Dial(SocketAddr, Option<String>),
    Close(String),
    /// A child started here (registered): the checker looks for copies elsewhere.
    Started(String),
}

/// The service ids of the registry and the child table on probes.
const REG_SERVICE: u64 = 1;
const SUP_SERVICE: u64 = 2;

/// The kind every simulated child has.
pub(crate) const KIND: &str = "worker";

pub(crate) struct SimNode {
    pub(crate) me: NodeIdentity,
    pub(crate) membership: Membership,
    pub(crate) registry: Replica,
    pub(crate) sup: SupervisorCore,
    /// Children whose actors run here.
    pub(crate) children: BTreeSet<String>,
    /// Peers whose endpoints (pg groups) this node sees.
    pub(crate) visible: BTreeSet<String>,
    pub(crate) seeds: Vec<SocketAddr>,
    /// Starts of children that were running on another node at that moment.
    pub(crate) starts: u64,
    /// The members this node took down (or saw leave), in order.
    pub(crate) downs: Vec<String>,
}

impl SimNode {
    pub(crate) fn new(
        me: NodeIdentity,
        timings: Timings,
        placement: Arc<dyn Placement>,
        seeds: Vec<SocketAddr>,
    ) -> Self {
        Self {
            membership: Membership::new(me.clone(), timings),
            registry: Replica::new(Owner::from(&me)),
            sup: SupervisorCore::new(me.name.clone(), [KIND.to_owned()], placement, false),
            me,
            children: BTreeSet::new(),
            visible: BTreeSet::new(),
            seeds,
            starts: 0,
            downs: Vec::new(),
        }
    }

    pub(crate) fn membership_actions(&mut self, now: Now, actions: Vec<Action>) -> Vec<Out> {
        let mut out = Vec::new();
        for a in actions {
            match a {
                Action::Send { to, probe } => {
                    let services = self.summaries(&probe);
                    out.push(Out::Send(to, Wire::Probe(probe, services)));
                }
                Action::Broadcast(probe) => {
                    out.push(Out::Broadcast(Wire::Probe(probe, Vec::new())))
                }
                Action::Dial { addr, name } => out.push(Out::Dial(addr, name)),
                Action::Close(name) => out.push(Out::Close(name)),
                Action::Unreachable { .. } => {}
                Action::Emit(MemberEvent::MemberUp(n)) => {
                    let reg = self.registry.on_member_up(&n.name);
                    self.reg_effects(now, reg, &mut out);
                    let sup = self.sup.on_member_up(now, &n.name);
                    self.sup_effects(now, sup, &mut out);
                }
                Action::Emit(MemberEvent::MemberDown { node, .. })
                | Action::Emit(MemberEvent::MemberLeft(node)) => {
                    self.downs.push(node.name.clone());
                    let reg = self.registry.on_member_down(&node.name);
                    self.reg_effects(now, reg, &mut out);
                    self.sup.on_member_down(now, &node.name);
                }
            }
        }
        self.settle(now, &mut out);
        out
    }

    /// Reconciles while the supervisor asks to (the shell coalesces this into one message).
    pub(crate) fn settle(&mut self, now: Now, out: &mut Vec<Out>) {
        for _ in 0..4 {
            if !self.sup.wants_reconcile() {
                return;
            }
            let effects = self.sup.reconcile(now, &self.registry);
            self.sup_effects(now, effects, out);
        }
    }

    pub(crate) fn on_wire(&mut self, now: Now, from: &str, wire: Wire) -> Vec<Out> {
        match wire {
            Wire::Probe(probe, services) => {
                let mut out = Vec::new();
                for (id, theirs) in services {
                    if id == REG_SERVICE {
                        let effects = self.registry.on_summary(now, from, theirs);
                        self.reg_effects(now, effects, &mut out);
                    } else if id == SUP_SERVICE {
                        let effects = self.sup.on_table_summary(now, from, theirs);
                        self.sup_effects(now, effects, &mut out);
                    }
                }
                let actions = self.membership.on_probe(from, probe, now.mono);
                out.extend(self.membership_actions(now, actions));
                out
            }
            Wire::Reg(m) => {
                let effects = self.registry.on_peer(now, m);
                let mut out = Vec::new();
                self.reg_effects(now, effects, &mut out);
                self.settle(now, &mut out);
                out
            }
            Wire::Sup(m) => {
                let effects = self.sup.on_peer(now, m);
                let mut out = Vec::new();
                self.sup_effects(now, effects, &mut out);
                self.settle(now, &mut out);
                out
            }
        }
    }

    pub(crate) fn reg_effects(&mut self, now: Now, effects: Vec<RegEffect>, out: &mut Vec<Out>) {
        for e in effects {
            match e {
                RegEffect::Broadcast(m) => out.push(Out::Broadcast(Wire::Reg(m))),
                RegEffect::Send(n, m) => out.push(Out::Send(n, Wire::Reg(m))),
                RegEffect::Publish(changes) => self.published(changes),
                RegEffect::StopLost { name, .. } => {
                    if self.children.remove(&name) {
                        let exit = ExitReason::Normal(Some(NAME_CONFLICT.to_owned()));
                        let effects = self.sup.on_child_exit(now, &name, exit);
                        self.sup_effects(now, effects, out);
                    }
                }
            }
        }
    }

    fn published(&mut self, changes: Vec<Change>) {
        for ch in changes {
            let before = ch.before.as_ref().map(|h| &h.owner);
            if let Some(b) = before {
                if Some(b) != ch.after.as_ref().map(|h| &h.owner) {
                    self.sup.on_unregistered(&ch.name, &b.node);
                }
            }
        }
    }

    pub(crate) fn sup_effects(&mut self, now: Now, effects: Vec<SupEffect>, out: &mut Vec<Out>) {
        for e in effects {
            match e {
                SupEffect::Broadcast(m) => out.push(Out::Broadcast(Wire::Sup(m))),
                SupEffect::Send(n, m) => out.push(Out::Send(n, Wire::Sup(m))),
                SupEffect::Start { id, .. } => {
                    let outcome = match self.registry.register(&id, Vec::new(), now.wall_ns) {
                        Ok(reg) => {
                            self.children.insert(id.clone());
                            self.starts += 1;
                            out.push(Out::Started(id.clone()));
                            self.reg_effects(now, reg, out);
                            StartOutcome::Running
                        }
                        Err(_) => StartOutcome::Taken,
                    };
                    let effects = self.sup.on_started(now, &id, outcome);
                    self.sup_effects(now, effects, out);
                }
                SupEffect::Stop { id, .. } | SupEffect::Move { id, .. } => {
                    self.stop_child(now, &id, ExitReason::Normal(None), out);
                }
                SupEffect::Unregister(id) => {
                    if let Some(reg) = self.registry.unregister(&id) {
                        self.reg_effects(now, reg, out);
                    }
                }
                SupEffect::Event(_) | SupEffect::Collected(_) => {}
            }
        }
    }

    /// The child's actor stops: the registry (which monitors it) unregisters it, and the
    /// supervisor hears of its exit.
    pub(crate) fn stop_child(&mut self, now: Now, id: &str, exit: ExitReason, out: &mut Vec<Out>) {
        if !self.children.remove(id) {
            return;
        }
        if let Some(reg) = self.registry.unregister(id) {
            self.reg_effects(now, reg, out);
        }
        let effects = self.sup.on_child_exit(now, id, exit);
        self.sup_effects(now, effects, out);
    }

    pub(crate) fn tick_membership(&mut self, now: Now, sample: u64) -> Vec<Out> {
        let actions = self.membership.tick(now.mono, sample);
        self.membership_actions(now, actions)
    }

    /// The summaries a ping or an ack carries (as the shell's control handler attaches them).
    fn summaries(&mut self, probe: &Probe) -> Vec<(u64, u64)> {
        match probe {
            Probe::Ping { .. } | Probe::Ack { .. } => vec![
                (REG_SERVICE, self.registry.summary()),
                (SUP_SERVICE, self.sup.table_summary()),
            ],
            _ => Vec::new(),
        }
    }

    pub(crate) fn tick_services(&mut self, now: Now) -> Vec<Out> {
        let mut out = Vec::new();
        let sup = self.sup.tick(now, &self.registry);
        self.sup_effects(now, sup, &mut out);
        self.settle(now, &mut out);
        out
    }

    /// Names of the members this node sees up.
    pub(crate) fn up(&self) -> BTreeSet<String> {
        self.membership
            .up_members()
            .into_iter()
            .map(|n| n.name)
            .collect()
    }

    /// The registry's winners: name -> node.
    pub(crate) fn located(&self) -> BTreeMap<String, String> {
        self.registry
            .state()
            .winners()
            .into_iter()
            .map(|(n, h)| (n, h.owner.node))
            .collect()
    }

    pub(crate) fn discovered(&mut self, now: Instant) -> Vec<Action> {
        let seeds = self.seeds.clone();
        self.membership.on_discovered(&seeds, now)
    }
}
