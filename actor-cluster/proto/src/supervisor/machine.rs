//! The inputs of [`SupervisorCore`] and the decisions they lead to.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use actor_core_base::hlc::Hlc;
use actor_core_base::supervision::{should_restart, ExitReason, RestartWindow};

use super::*;
use crate::registry::NAME_CONFLICT;
use crate::Now;

impl SupervisorCore {
    /// The part of node `me`, which runs `kinds`.
    pub fn new(
        me: impl Into<String>,
        kinds: impl IntoIterator<Item = String>,
        placement: Arc<dyn Placement>,
        active: bool,
    ) -> Self {
        let me = me.into();
        let kinds: BTreeSet<String> = kinds.into_iter().collect();
        let lease = placement
            .lease()
            .map(|(voters, length)| LeaseCore::new(voters, length));
        let mut members = BTreeMap::new();
        members.insert(me.clone(), kinds.clone());
        Self {
            clock: Hlc::new(me.clone()),
            sync: sync::replicator(&me),
            had_quorum: false,
            quorum_lost: false,
            me,
            kinds,
            placement,
            active,
            table: ChildTable::default(),
            names: members.keys().cloned().collect(),
            members,
            pending: BTreeMap::new(),
            heard: BTreeMap::new(),
            leaving: BTreeSet::new(),
            running: BTreeMap::new(),
            hold_until: None,
            dirty: false,
            ticks: 0,
            draining: false,
            lost: BTreeMap::new(),
            min_members: 1,
            gc: gc::Collector::default(),
            lease,
        }
    }

    /// Starts nothing, and refuses starts ([`SupRefusal::TooFewMembers`]), while fewer than
    /// `n` members are eligible (this node included): a node that cannot see its peers does
    /// not run the whole cluster's children alone.
    pub fn with_min_members(mut self, n: usize) -> Self {
        self.min_members = n.max(1);
        self
    }

    fn enough_members(&self) -> Result<(), SupRefusal> {
        let have = self
            .members
            .keys()
            .filter(|n| !self.leaving.contains(*n))
            .count();
        if have < self.min_members {
            return Err(SupRefusal::TooFewMembers {
                have,
                need: self.min_members,
            });
        }
        Ok(())
    }

    /// Adds one child unless a live child has its id, and says which
    /// ([`PutOutcome::AlreadyStarted`] tells whether the arguments differ).
    pub fn start_or_get(
        &mut self,
        now: Now,
        spec: DistChildSpec,
        sample: u64,
    ) -> Result<(PutOutcome, Vec<SupEffect>), SupRefusal> {
        if let Some(row) = self
            .table
            .get(&spec.id)
            .filter(|r| r.status == ChildStatus::Live)
        {
            let args_differ = row.spec.args != spec.args || row.spec.kind != spec.kind;
            return Ok((PutOutcome::AlreadyStarted { args_differ }, Vec::new()));
        }
        let effects = self.put(now, vec![spec], sample)?;
        Ok((PutOutcome::Created, effects))
    }

    /// This node.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The replicated child table.
    pub fn table(&self) -> &ChildTable {
        &self.table
    }

    /// Children running (or starting) on this node, sorted.
    pub fn local_children(&self) -> Vec<String> {
        self.running
            .iter()
            .filter(|(_, l)| l.state != LocalState::Stopping)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Members (this node included) that can run children: up, not leaving, kinds known.
    pub fn eligible_members(&self) -> Vec<String> {
        self.members
            .keys()
            .filter(|n| !self.leaving.contains(*n))
            .cloned()
            .collect()
    }

    /// Whether a reconciliation is due (call [`SupervisorCore::reconcile`]).
    pub fn wants_reconcile(&self) -> bool {
        self.dirty
    }

    /// When a hold ends (reconcile then).
    pub fn next_wake(&self) -> Option<Instant> {
        self.hold_until
    }

    /// Whether this node may not start children now (a hold after a member went down, or a
    /// member whose state it has not synced).
    pub fn is_holding(&self, now: Now, reg: &dyn RegistryView) -> bool {
        self.hold_until.is_some_and(|t| now.mono < t) || self.unsynced(now.mono, reg)
    }

    pub(super) fn put_row(&mut self, spec: DistChildSpec, status: ChildStatus, now: Now) -> Row {
        let row = Row {
            spec,
            status,
            stamp: self.clock.now(now.wall_ns),
            dot: self.gc.next_dot(&self.me, now.wall_ns),
        };
        self.table.merge(row.clone());
        row
    }

    /// Adds children (idempotent by id: a live id is left as it is). `sample` is one random
    /// number, from which random placement picks each child's node.
    pub fn put(
        &mut self,
        now: Now,
        specs: Vec<DistChildSpec>,
        sample: u64,
    ) -> Result<Vec<SupEffect>, SupRefusal> {
        if !self.quorum() {
            return Err(SupRefusal::QuorumNotMet);
        }
        self.enough_members()?;
        let mut fresh = Vec::new();
        for mut spec in specs {
            if self
                .table
                .get(&spec.id)
                .is_some_and(|r| r.status == ChildStatus::Live)
            {
                continue;
            }
            let cands = candidates(&self.members, &spec.kind);
            if cands.is_empty() {
                return Err(SupRefusal::NoEligibleNode(spec.kind));
            }
            if self.placement.is_random() {
                let h = placement::hash(&[&spec.id, &sample.to_string()]);
                spec.pinned = cands.get((h % cands.len() as u64) as usize).cloned();
            } else if spec.restart == RestartType::Temporary {
                // Where it starts, so that its node's death drops it even on a node that never
                // saw it registered (see `temporary_lost`).
                spec.pinned = self.placement.place(&spec, &cands);
            }
            fresh.push(spec);
        }
        let rows: Vec<Row> = fresh
            .into_iter()
            .map(|spec| self.put_row(spec, ChildStatus::Live, now))
            .collect();
        let mut out = Vec::new();
        self.rows_changed(&rows, &mut out);
        self.dirty = true;
        Ok(out)
    }

    /// Terminates a child wherever it runs and forgets it.
    pub fn terminate(&mut self, now: Now, id: &str) -> Result<Vec<SupEffect>, SupRefusal> {
        match self.table.get(id).cloned() {
            Some(row) if row.status != ChildStatus::Removed => {
                let row = self.put_row(row.spec, ChildStatus::Removed, now);
                self.dirty = true;
                let mut out = Vec::new();
                self.rows_changed(&[row], &mut out);
                Ok(out)
            }
            _ => Err(SupRefusal::NotFound(id.to_owned())),
        }
    }

    /// Graceful shutdown of this node's part: tell the others, and hand every local child to
    /// the node that runs it next (or stop it, if none can).
    pub fn drain(&mut self) -> Vec<SupEffect> {
        self.draining = true;
        let mut out = vec![SupEffect::Broadcast(SupPeerMsg::Leaving(self.me.clone()))];
        let mut members = self.members.clone();
        members.remove(&self.me);
        for l in &self.leaving {
            members.remove(l);
        }
        let ids: Vec<String> = self.local_children();
        for id in ids {
            let target = self.table.get(&id).and_then(|r| {
                let cands = candidates(&members, &r.spec.kind);
                self.placement.place(&r.spec, &cands)
            });
            if let Some(l) = self.running.get_mut(&id) {
                l.state = LocalState::Stopping;
            }
            out.push(match target {
                Some(to) => SupEffect::Move { id, to },
                None => SupEffect::Stop {
                    id,
                    reason: "drained",
                },
            });
        }
        out
    }

    /// What a reconciliation would decide now.
    pub fn decide(&self, now: Now, reg: &dyn RegistryView) -> Vec<Decision> {
        let running: BTreeSet<String> = self.local_children().into_iter().collect();
        // Copied only when some member is out (the usual case has none).
        let members = if self.leaving.is_empty() && !self.draining {
            std::borrow::Cow::Borrowed(&self.members)
        } else {
            let mut m = self.members.clone();
            for l in &self.leaving {
                m.remove(l);
            }
            if self.draining {
                m.remove(&self.me);
            }
            std::borrow::Cow::Owned(m)
        };
        let held: BTreeSet<String> = if self.is_holding(now, reg) {
            self.table.live().map(|r| r.spec.id.clone()).collect()
        } else {
            BTreeSet::new()
        };
        let view = View {
            me: &self.me,
            members: &members,
            located: reg,
            running: &running,
            held: &held,
            active: self.active && !self.draining,
            leased: self.leased(now),
        };
        reconcile(&self.table, self.placement.as_ref(), &view)
    }

    /// How many starts, stops and moves this node would make now, plus one while it holds
    /// (0: settled).
    pub fn pending_decisions(&self, now: Now, reg: &dyn RegistryView) -> usize {
        self.decide(now, reg).len() + usize::from(self.is_holding(now, reg))
    }

    /// Decides what this node starts, stops and moves now.
    pub fn reconcile(&mut self, now: Now, reg: &dyn RegistryView) -> Vec<SupEffect> {
        self.dirty = false;
        let quorum = self.quorum();
        if quorum && self.quorum_lost {
            // A majority again after none: the other side of the split may see one too for a
            // moment (a member that came up counts on both until the sides meet). Wait, as
            // after a member went down, before starting anything.
            let delay = self.placement.restart_delay();
            if !delay.is_zero() {
                self.hold_until = Some(now.mono + delay);
            }
        }
        self.quorum_lost = !quorum && (self.had_quorum || self.quorum_lost);
        self.had_quorum |= quorum;
        if self.hold_until.is_some_and(|t| now.mono >= t) {
            self.hold_until = None;
        }
        let mut out = Vec::new();
        let may_start = !self.draining && self.enough_members().is_ok();
        for d in self.decide(now, reg) {
            match d {
                Decision::Start(id) if may_start && self.temporary_lost(&id) => {
                    self.drop_temporary(now, &id, &mut out)
                }
                Decision::Start(id) if may_start => self.start(&id, &mut out),
                Decision::Start(_) => {}
                Decision::Stop(id) => {
                    if let Some(l) = self.running.get_mut(&id) {
                        l.state = LocalState::Stopping;
                    }
                    out.push(SupEffect::Stop {
                        id,
                        reason: "not placed here",
                    });
                }
                Decision::Move(id, to) => {
                    if let Some(l) = self.running.get_mut(&id) {
                        l.state = LocalState::Stopping;
                    }
                    out.push(SupEffect::Move { id, to });
                }
            }
        }
        out
    }

    fn start(&mut self, id: &str, out: &mut Vec<SupEffect>) {
        let Some(row) = self.table.get(id).cloned() else {
            return;
        };
        if !self.kinds.contains(&row.spec.kind) {
            return;
        }
        let window = self
            .running
            .remove(id)
            .map(|l| l.window)
            .unwrap_or_else(|| RestartWindow::new(row.spec.intensity_value()));
        self.running.insert(
            id.to_owned(),
            Local {
                window,
                state: LocalState::Starting,
            },
        );
        out.push(SupEffect::Start {
            id: id.to_owned(),
            spec: row.spec,
        });
    }

    /// How a [`SupEffect::Start`] ended.
    pub fn on_started(&mut self, now: Now, id: &str, outcome: StartOutcome) -> Vec<SupEffect> {
        match outcome {
            StartOutcome::Running => {
                let Some(l) = self.running.get_mut(id) else {
                    return Vec::new();
                };
                l.state = LocalState::Running;
                let failover = self
                    .lost
                    .remove(id)
                    .is_some_and(|prev| !self.members.contains_key(&prev));
                vec![SupEffect::Event(SupEvent::Started {
                    id: id.to_owned(),
                    failover,
                })]
            }
            StartOutcome::Taken => {
                self.running.remove(id);
                Vec::new()
            }
            StartOutcome::Failed(reason) => self.failed(now, id, format!("start failed: {reason}")),
        }
    }

    /// A restart was needed and failed or exceeded the intensity: the child is marked failed.
    fn failed(&mut self, now: Now, id: &str, reason: String) -> Vec<SupEffect> {
        self.running.remove(id);
        let Some(row) = self.table.get(id).cloned() else {
            return Vec::new();
        };
        let status = ChildStatus::Failed {
            node: self.me.clone(),
            reason: reason.clone(),
        };
        let row = self.put_row(row.spec, status, now);
        self.dirty = true;
        let mut out = Vec::new();
        self.rows_changed(&[row], &mut out);
        out.push(SupEffect::Event(SupEvent::Failed {
            id: id.to_owned(),
            reason,
        }));
        out
    }

    /// A local child stopped.
    pub fn on_child_exit(&mut self, now: Now, id: &str, exit: ExitReason) -> Vec<SupEffect> {
        let Some(local) = self.running.get(id) else {
            return Vec::new();
        };
        if local.state == LocalState::Stopping {
            self.running.remove(id);
            self.dirty = true;
            return Vec::new();
        }
        if matches!(&exit, ExitReason::Normal(Some(r)) if r == NAME_CONFLICT) {
            // It lost a name conflict: it runs elsewhere.
            self.running.remove(id);
            return Vec::new();
        }
        let Some(row) = self.table.get(id).cloned() else {
            self.running.remove(id);
            return Vec::new();
        };
        let mut out = vec![SupEffect::Unregister(id.to_owned())];
        if !self.leased(now) {
            // Fenced (its lease lapsed): it runs wherever the majority puts it.
            self.running.remove(id);
            self.dirty = true;
            return out;
        }
        if !should_restart(row.spec.restart.into(), &exit) {
            self.running.remove(id);
            let row = self.put_row(row.spec, ChildStatus::Removed, now);
            self.rows_changed(&[row], &mut out);
            return out;
        }
        let allowed = self
            .running
            .get_mut(id)
            .is_some_and(|l| l.window.record(now.mono));
        if !allowed {
            let reason = match exit {
                ExitReason::Failed(e) => e,
                other => format!("{other:?}"),
            };
            out.extend(self.failed(now, id, format!("over its intensity; last exit: {reason}")));
            return out;
        }
        out.push(SupEffect::Event(SupEvent::Restarted { id: id.to_owned() }));
        self.start(id, &mut out);
        out
    }

    /// Periodic work (every [`TICK_INTERVAL`]): hellos to members whose kinds are unknown,
    /// and a reconciliation every few ticks (every tick while holding). (Anti-entropy rides
    /// on the membership probes: [`SupervisorCore::table_summary`].)
    pub fn tick(&mut self, now: Now, reg: &dyn RegistryView) -> Vec<SupEffect> {
        let mut out = Vec::new();
        for peer in self.pending.keys() {
            out.push(self.hello(peer, true));
        }
        self.heard
            .retain(|_, since| now.mono.saturating_duration_since(*since) < JOIN_SYNC_GRACE);
        self.ticks += 1;
        if self.hold_until.is_some() || self.unsynced(now.mono, reg) || self.ticks % 5 == 0 {
            self.dirty = true;
        }
        if self.ticks % 4 == 0 {
            self.collect_tombstones(now, &mut out);
        }
        if let Some(l) = self.lease.as_mut() {
            l.tick(&self.me, now.mono, &mut out);
        }
        // A lease that lapsed stops what runs here (its entities already refuse messages).
        if !self.leased(now) && !self.running.is_empty() {
            self.dirty = true;
        }
        self.gc.announce(&self.me, now.mono, &mut out);
        out
    }
}
