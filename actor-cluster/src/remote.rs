//! Typed remote refs.
//!
//! ractor_cluster makes a remote actor known only through pg groups, and converting such a
//! member to a typed `ActorRef<M>` is unchecked: if the actor's real message type differs, every
//! message is silently dropped on the far side. Here an actor is registered under a group *and*
//! its message type (the group's pg scope carries `std::any::type_name::<M>()`), so a lookup for
//! another type finds nothing instead of a ref that silently drops everything. Local members are
//! checked with ractor's own type check as well.
//!
//! The type name is what the compiler prints for the path of the type: nodes must run builds in
//! which the message type has the same path (the same crate and module), which is the case for
//! one application deployed on every node. Use [`register_as`] / [`lookup_as`] to name a
//! protocol explicitly instead.

use std::time::{Duration, Instant};

use ractor::{ActorRef, Message};

fn scope_of(protocol: &str) -> String {
    format!("actor_cluster.typed:{protocol}")
}

/// Registers `actor` under `group` for message type `M`, visible from every connected node.
pub fn register<M: Message>(group: &str, actor: &ActorRef<M>) {
    register_as(std::any::type_name::<M>(), group, actor);
}

/// Registers `actor` under `group` for an explicitly named protocol.
pub fn register_as<M: Message>(protocol: &str, group: &str, actor: &ActorRef<M>) {
    ractor::pg::join_scoped(scope_of(protocol), group.to_owned(), vec![actor.get_cell()]);
}

/// Every actor registered under `group` for message type `M`, on any connected node (local
/// ones first).
pub fn lookup<M: Message>(group: &str) -> Vec<ActorRef<M>> {
    lookup_as(std::any::type_name::<M>(), group)
}

/// Like [`lookup`], for an explicitly named protocol.
pub fn lookup_as<M: Message>(protocol: &str, group: &str) -> Vec<ActorRef<M>> {
    let mut members = ractor::pg::get_scoped_members(&scope_of(protocol), &group.to_owned());
    members.sort_by_key(|c| !c.get_id().is_local());
    members
        .into_iter()
        .filter(|c| c.is_message_type_of::<M>() != Some(false))
        .map(ActorRef::from)
        .collect()
}

/// The actors registered under `group` for `M` on other nodes.
pub fn lookup_remote<M: Message>(group: &str) -> Vec<ActorRef<M>> {
    lookup::<M>(group)
        .into_iter()
        .filter(|r| !r.get_id().is_local())
        .collect()
}

/// Waits (polling, bounded by `timeout`) until an actor is registered under `group` for `M` on
/// another node, and returns it.
pub async fn wait_remote<M: Message>(group: &str, timeout: Duration) -> Option<ActorRef<M>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = lookup_remote::<M>(group).into_iter().next() {
            return Some(r);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
