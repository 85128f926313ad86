//! The peer side of [`SupervisorCore`]: hellos (the kinds each member runs), member events,
//! and the join synchronisation that keeps a new node from starting what runs elsewhere.

use std::time::Instant;

use super::*;
use crate::Now;

impl SupervisorCore {
    /// This node's hello, to one peer: never to every member, since each answers, and a
    /// member that comes up would cost a message per pair of nodes.
    pub(super) fn hello(&self, to: &str, ask: bool) -> SupEffect {
        SupEffect::Send(
            to.to_owned(),
            SupPeerMsg::Hello {
                node: self.me.clone(),
                kinds: self.kinds.iter().cloned().collect(),
                ask,
                members: self.names.clone(),
            },
        )
    }

    pub(super) fn quorum(&self) -> bool {
        self.placement.has_quorum(&self.names)
    }

    /// A message from another node's part.
    pub fn on_peer(&mut self, now: Now, msg: SupPeerMsg) -> Vec<SupEffect> {
        let mut out = Vec::new();
        match msg {
            SupPeerMsg::Table(m) => {
                if let crate::replication::SyncMsg::Digest { from, .. } = &m {
                    if !self.members.contains_key(from) && !self.leaving.contains(from) {
                        // A peer whose kinds we do not know: hello until it answers with its own.
                        self.pending.entry(from.clone()).or_insert(now.mono);
                        out.push(self.hello(from, true));
                    }
                }
                self.on_table(now, m, &mut out);
            }
            SupPeerMsg::Hello {
                node,
                kinds,
                ask,
                members,
            } => {
                if ask {
                    out.push(self.hello(&node, false));
                }
                self.pending.remove(&node);
                self.heard.remove(&node);
                if let Err(i) = self.names.binary_search(&node) {
                    self.names.insert(i, node.clone());
                }
                self.members.insert(node, kinds.into_iter().collect());
                // Both lists are in name order: one walk, and a lookup only for a name the
                // walk did not find (all of them, if a peer sent its list out of order).
                let mut i = 0;
                for m in members {
                    while self.names.get(i).is_some_and(|n| *n < m) {
                        i += 1;
                    }
                    let known = self.names.get(i).is_some_and(|n| *n == m)
                        || self.members.contains_key(&m)
                        || self.leaving.contains(&m);
                    if !known {
                        self.heard.entry(m).or_insert(now.mono);
                    }
                }
                self.dirty = true;
            }
            SupPeerMsg::Leaving(node) => {
                self.leaving.insert(node);
                self.dirty = true;
            }
            SupPeerMsg::LeaseAsk { from, seq } => {
                let up = self.members.contains_key(&from);
                if let Some(l) = self.lease.as_mut() {
                    out.extend(l.on_ask(&self.me, from, seq, up, now.mono));
                }
            }
            SupPeerMsg::LeaseGrant { from, seq } => {
                if let Some(l) = self.lease.as_mut() {
                    let before = l.is_valid(&self.me, now.mono);
                    l.on_grant(from, seq);
                    // A lease regained: what this node should run starts again.
                    self.dirty |= !before && l.is_valid(&self.me, now.mono);
                }
            }
            SupPeerMsg::Seen { from, seen, ask } => {
                if ask {
                    self.gc.asked_by(from.clone());
                }
                self.gc.on_seen(from, seen);
            }
        }
        out
    }

    /// A member came up (this node's membership said so).
    pub fn on_member_up(&mut self, now: Now, node: &str) -> Vec<SupEffect> {
        self.leaving.remove(node);
        self.members.remove(node);
        if let Ok(i) = self.names.binary_search_by(|n| n.as_str().cmp(node)) {
            self.names.remove(i);
        }
        self.pending.insert(node.to_owned(), now.mono);
        self.gc.member_up(node);
        let mut out = vec![self.hello(node, true)];
        self.table_to_new_peer(node, &mut out);
        out
    }

    /// A member went down or left.
    pub fn on_member_down(&mut self, now: Now, node: &str) {
        self.sync.on_peer_down(node);
        self.members.remove(node);
        if let Ok(i) = self.names.binary_search_by(|n| n.as_str().cmp(node)) {
            self.names.remove(i);
        }
        self.pending.remove(node);
        let left = self.leaving.remove(node);
        self.gc.member_down(node, left, now.mono);
        self.heard.remove(node);
        let delay = self.placement.restart_delay();
        if !delay.is_zero() {
            self.hold_until = Some(now.mono + delay);
        }
        if let Some(l) = self.lease.as_mut() {
            l.member_down(node);
            // Its children wait until the lease this node last granted it has surely lapsed.
            if let Some(t) = l.expired_for(node) {
                self.hold_until = Some(self.hold_until.map_or(t, |h| h.max(t)));
            }
        }
        self.dirty = true;
    }

    /// A child's registration went away with the node it ran on.
    pub fn on_unregistered(&mut self, id: &str, node: &str) {
        if node != self.me {
            if self.lost.len() >= MAX_LOST {
                self.lost.clear();
            }
            self.lost.insert(id.to_owned(), node.to_owned());
        }
        self.dirty = true;
    }

    /// A `Temporary` child whose registration went away with a node that is no longer a
    /// member, or that was placed on such a node (this node may not have seen it registered
    /// before its node died): OTP never restarts a temporary child, so it is not started
    /// elsewhere either.
    pub(super) fn temporary_lost(&self, id: &str) -> bool {
        let Some(r) = self.table.get(id) else {
            return false;
        };
        let gone = |node: &String| !self.members.contains_key(node);
        r.spec.restart == RestartType::Temporary
            && (self.lost.get(id).is_some_and(gone) || r.spec.pinned.as_ref().is_some_and(gone))
    }

    /// Removes a lost temporary child from the table (on every node, through the delta),
    /// where a permanent one would be started. Only the node that placement picks to run it
    /// decides, as it would for a restart.
    pub(super) fn drop_temporary(&mut self, now: Now, id: &str, out: &mut Vec<SupEffect>) {
        let Some(row) = self.table.get(id).cloned() else {
            return;
        };
        // The node it ran on, or else the one it was placed on.
        let node = self
            .lost
            .remove(id)
            .or_else(|| row.spec.pinned.clone())
            .unwrap_or_default();
        let row = self.put_row(row.spec, ChildStatus::Removed, now);
        self.rows_changed(&[row], out);
        out.push(SupEffect::Event(SupEvent::Dropped {
            id: id.to_owned(),
            node,
        }));
    }

    /// Members it knows of that this node cannot yet tell the children of.
    pub(super) fn unsynced(&self, now: Instant, reg: &dyn RegistryView) -> bool {
        let synced = |n: &str| self.members.contains_key(n) && reg.is_synced_with(n);
        // The cheap checks first: this runs on every reconcile.
        self.pending
            .values()
            .any(|since| now.saturating_duration_since(*since) < PENDING_GRACE)
            || self.heard.iter().any(|(n, since)| {
                now.saturating_duration_since(*since) < JOIN_SYNC_GRACE && !synced(n)
            })
            || !reg.synced_all(&self.names)
    }
}
