//! Typed entities: one trait ties a kind's name to its state, arguments, messages and handoff
//! state, and a typed reference sends to an entity by id wherever it runs (Akka's
//! `EntityRef`, Horde's child by name).
//!
//! ```ignore
//! impl Entity for Room {
//!     const KIND: &'static str = "chat-room";
//!     type Args = RoomArgs;
//!     type Msg = RoomMsg;          // #[derive(RemoteMessage)]
//!     type Handoff = Vec<String>;  // what a planned move carries to the next node
//!     type Context = Db;           // what every node's rooms share
//!     async fn start(ctx: &EntityContext<Self>, args: RoomArgs, handoff: Option<Vec<String>>)
//!         -> Result<Self, ActorProcessingErr> { .. }
//!     async fn handle(&mut self, ctx: &EntityContext<Self>, msg: RoomMsg)
//!         -> Result<(), ActorProcessingErr> { .. }
//!     async fn handoff(&mut self) -> Option<Vec<String>> { Some(self.log.clone()) }
//! }
//! let sup = DistributedSupervisor::builder("rooms").entity::<Room>(db).start(&node).await?;
//! let room = sup.entity::<Room>("room:42");
//! let n = room.call(|r| RoomMsg::Post("hi".into(), r), Duration::from_secs(2)).await?;
//! ```
//!
//! Calls are delivered at most once: a call is re-sent only while the entity is not placed or
//! its actor is gone before the message was handed over, never after. What went wrong is its
//! own error: [`DistSupervisorError::NotFound`] (at once, from the replicated table),
//! [`DistSupervisorError::Failed`], [`DistSupervisorError::ExitedWhileHandling`] (with the
//! handler's error, or its node going down), [`DistSupervisorError::Timeout`],
//! [`DistSupervisorError::Overloaded`], [`DistSupervisorError::Unreachable`].

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use actor_core::codec;
use ractor::concurrency::oneshot;
use ractor::{ActorProcessingErr, ActorRef, Message, RpcReplyPort};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::host::Envelope;
use super::{ChildStatus, DistChildSpec, DistSupervisorError, DistributedSupervisor, PutOutcome};
use crate::registry::{Owner, RegistryEvent};

mod exit;

/// A kind of stateful actor that the distributed supervisor runs by id, somewhere in the
/// cluster. Register it on every node that may run it with
/// [`super::DistributedSupervisorBuilder::entity`].
pub trait Entity: Sized + Send + 'static {
    /// The kind's name: the same on every node, unique per supervisor.
    const KIND: &'static str;
    /// What an entity is started with (replicated with its spec).
    type Args: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Its messages (`#[derive(RemoteMessage)]`: a variant ending in an `RpcReplyPort` is a
    /// call).
    type Msg: Message;
    /// The state it hands to its next incarnation on a planned move (drain, redistribution).
    /// `()` if it always rebuilds from its own sources.
    type Handoff: Serialize + DeserializeOwned + Send + 'static;
    /// What the entities of this kind share on one node (a database pool, settings).
    type Context: Send + Sync + 'static;

    /// Builds the entity: from `handoff` after a planned move, else from `args` and its own
    /// sources (after a crash or a node going down). Messages sent meanwhile wait. An error
    /// counts as a crash (restart rules apply).
    fn start(
        ctx: &EntityContext<Self>,
        args: Self::Args,
        handoff: Option<Self::Handoff>,
    ) -> impl Future<Output = Result<Self, ActorProcessingErr>> + Send;

    /// Handles one message. An error is reported to the caller of that message
    /// ([`DistSupervisorError::ExitedWhileHandling`]) and restarts the entity per its restart
    /// rules; the message is not delivered again.
    fn handle(
        &mut self,
        ctx: &EntityContext<Self>,
        msg: Self::Msg,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send;

    /// The state to hand over on a planned move, after the last message queued before it was
    /// handled. `None` (the default): the next incarnation starts from `args` alone.
    fn handoff(&mut self) -> impl Future<Output = Option<Self::Handoff>> + Send {
        async { None }
    }

    /// Autostart: the arguments of an entity that a message finds missing, derived from its id
    /// (Akka's sharding starts an entity on its first message). `None` (the default): a message
    /// to a missing id is [`DistSupervisorError::NotFound`].
    fn autostart(id: &str) -> Option<Self::Args> {
        let _ = id;
        None
    }
}

/// What an entity sees of where it runs.
pub struct EntityContext<E: Entity> {
    id: String,
    context: Arc<E::Context>,
    myself: ActorRef<Envelope<E>>,
}

impl<E: Entity> std::fmt::Debug for EntityContext<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityContext")
            .field("kind", &E::KIND)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<E: Entity> EntityContext<E> {
    pub(crate) fn new(id: String, context: Arc<E::Context>, myself: ActorRef<Envelope<E>>) -> Self {
        Self {
            id,
            context,
            myself,
        }
    }

    /// The entity's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the entities of this kind share on this node.
    pub fn context(&self) -> &E::Context {
        &self.context
    }

    /// Sends the entity `msg()` every `period` while it runs (timers stop with it).
    pub fn send_interval(&self, period: Duration, msg: impl Fn() -> E::Msg + Send + 'static) {
        // The timer task ends with the actor; its handle is not needed.
        drop(
            self.myself
                .send_interval(period, move || Envelope::cast(msg())),
        );
    }

    /// Sends the entity `msg` after `delay`, unless it stopped meanwhile.
    pub fn send_after(&self, delay: Duration, msg: impl FnOnce() -> E::Msg + Send + 'static) {
        drop(self.myself.send_after(delay, move || Envelope::cast(msg())));
    }
}

/// How a start went ([`DistributedSupervisor::start_entity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The node it runs on.
    pub node: String,
    /// Created now, or already running (and whether with other arguments).
    pub outcome: PutOutcome,
}

/// A typed reference to the entity of kind `E` with one id, wherever it runs. Cheap to clone;
/// making one does no I/O.
pub struct EntityRef<E: Entity> {
    sup: DistributedSupervisor,
    id: String,
    _kind: PhantomData<fn() -> E>,
}

impl<E: Entity> Clone for EntityRef<E> {
    fn clone(&self) -> Self {
        Self {
            sup: self.sup.clone(),
            id: self.id.clone(),
            _kind: PhantomData,
        }
    }
}

impl<E: Entity> std::fmt::Debug for EntityRef<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityRef")
            .field("kind", &E::KIND)
            .field("id", &self.id)
            .finish()
    }
}

/// After the actor a call went to stopped: how long its answer (or the handler's error) may
/// still be on its way.
const GONE_GRACE: Duration = Duration::from_millis(250);

/// After a remote call's answer was lost with the actor's proxy: how long the registration of
/// its restarted incarnation (which carries why it failed) may take to arrive.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// One registered incarnation of an entity.
struct Target<E: Entity> {
    actor: ActorRef<Envelope<E>>,
    owner: Owner,
}

impl<E: Entity> EntityRef<E> {
    pub(crate) fn new(sup: DistributedSupervisor, id: String) -> Self {
        Self {
            sup,
            id,
            _kind: PhantomData,
        }
    }

    /// The entity's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The node it runs on now, as this node sees it (a local read).
    pub fn node(&self) -> Option<String> {
        self.sup.registry().entry(&self.id).map(|e| e.owner.node)
    }

    /// Starts the entity with `args` unless it exists (start-or-get), and waits (at most
    /// `timeout`) until it runs.
    pub async fn start(
        &self,
        args: &E::Args,
        timeout: Duration,
    ) -> Result<Started, DistSupervisorError> {
        self.sup.start_entity::<E>(&self.id, args, timeout).await
    }

    fn current(&self) -> Option<Target<E>> {
        let e = self.sup.registry().entry(&self.id)?;
        let cell = e.cell?;
        if cell.is_message_type_of::<Envelope<E>>() == Some(false) {
            return None;
        }
        Some(Target {
            actor: cell.into(),
            owner: e.owner,
        })
    }

    /// Waits for the entity to be registered: `NotFound`, `Failed` and a wrong kind are
    /// answered at once; a missing id of an autostart kind is started.
    async fn resolve(
        &self,
        events: &mut broadcast::Receiver<RegistryEvent>,
        deadline: Instant,
        started: &mut bool,
    ) -> Result<Target<E>, DistSupervisorError> {
        loop {
            if let Some(t) = self.current() {
                return Ok(t);
            }
            match self.sup.status(&self.id).await? {
                Some((ChildStatus::Live, kind)) if kind != E::KIND => {
                    return Err(DistSupervisorError::WrongKind {
                        id: self.id.clone(),
                        kind,
                        expected: E::KIND.to_owned(),
                    })
                }
                Some((ChildStatus::Live, _)) => {}
                Some((ChildStatus::Failed { node, reason }, _)) => {
                    return Err(DistSupervisorError::Failed {
                        id: self.id.clone(),
                        node,
                        reason,
                    })
                }
                None | Some((ChildStatus::Removed, _)) => match E::autostart(&self.id) {
                    Some(args) if !*started => {
                        *started = true;
                        let spec = entity_spec::<E>(&self.id, &args)?;
                        self.sup.start_or_get(spec).await?;
                    }
                    _ => return Err(DistSupervisorError::NotFound(self.id.clone())),
                },
            }
            if !self.changed(events, deadline).await {
                return Err(DistSupervisorError::Unreachable {
                    id: self.id.clone(),
                    reason: "it did not run anywhere reachable in time (starting, moving, or its node is unreachable)".into(),
                });
            }
        }
    }

    /// Waits for a registry event about this id (or lost events); `false` at the deadline.
    async fn changed(
        &self,
        events: &mut broadcast::Receiver<RegistryEvent>,
        deadline: Instant,
    ) -> bool {
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(RegistryEvent::Registered { name, .. })
                    | Ok(RegistryEvent::Unregistered { name, .. })
                        if name == self.id =>
                    {
                        return true
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
        };
        // A registration whose actor is not reachable yet (its pg membership is on the way)
        // changes without an event: look again soon.
        let bound = if self.sup.registry().contains(&self.id) {
            deadline.min(Instant::now() + Duration::from_millis(10))
        } else {
            deadline
        };
        match tokio::time::timeout_at(bound, wait).await {
            Ok(open) => open,
            Err(_) => Instant::now() < deadline,
        }
    }

    /// Sends a cast, waiting (at most `timeout`) while the entity is not placed or moves, and
    /// for room in the outbound queue to its node (backpressure). Delivered at most once.
    pub async fn cast(&self, msg: E::Msg, timeout: Duration) -> Result<(), DistSupervisorError> {
        let deadline = Instant::now() + timeout;
        let mut msg = Some(msg);
        // The common case: it runs and is reachable.
        if let Some(t) = self.current() {
            match self.send(&t, &mut msg, deadline).await {
                Ok(()) => return Ok(()),
                Err(Some(e)) => return Err(e),
                Err(None) => {}
            }
        }
        let mut events = self.sup.registry().subscribe();
        let mut started = false;
        loop {
            let t = self.resolve(&mut events, deadline, &mut started).await?;
            match self.send(&t, &mut msg, deadline).await {
                Ok(()) => return Ok(()),
                Err(Some(e)) => return Err(e),
                Err(None) => {
                    if !self.changed(&mut events, deadline).await {
                        return Err(self.unreachable());
                    }
                }
            }
        }
    }

    fn unreachable(&self) -> DistSupervisorError {
        DistSupervisorError::Unreachable {
            id: self.id.clone(),
            reason: "its actor stopped each time before the message reached it".into(),
        }
    }

    /// `Err(None)`: not handed over (the actor is gone), the message is kept for a retry.
    async fn send(
        &self,
        t: &Target<E>,
        msg: &mut Option<E::Msg>,
        deadline: Instant,
    ) -> Result<(), Option<DistSupervisorError>> {
        let Some(m) = msg.take() else {
            return Err(Some(self.unreachable()));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = self.sup.remote().reserve(&t.actor, left).await {
            *msg = Some(m);
            return match e {
                crate::remote::SendError::Overloaded { .. } => Err(Some(
                    DistSupervisorError::Overloaded(format!("entity {:?}: {e}", self.id)),
                )),
                _ => Err(None),
            };
        }
        match t.actor.cast(Envelope::cast(m)) {
            Ok(()) => Ok(()),
            Err(ractor::MessagingErr::SendErr(Envelope(super::host::Inner::Msg {
                msg: m,
                ..
            }))) => {
                *msg = Some(m);
                Err(None)
            }
            Err(e) => Err(Some(DistSupervisorError::Unreachable {
                id: self.id.clone(),
                reason: e.to_string(),
            })),
        }
    }

    /// Calls the entity and waits (at most `timeout`) for its answer. The message is built by
    /// `msg` for each attempt, and an attempt is made only while no earlier one was handed to
    /// the entity: the entity handles the call at most once.
    pub async fn call<R: Send + 'static>(
        &self,
        mut msg: impl FnMut(RpcReplyPort<R>) -> E::Msg,
        timeout: Duration,
    ) -> Result<R, DistSupervisorError> {
        let deadline = Instant::now() + timeout;
        let mut events = self.sup.registry().subscribe();
        let mut started = false;
        loop {
            let t = self.resolve(&mut events, deadline, &mut started).await?;
            if let Err(e) = self.sup.remote().admit(&t.actor) {
                if let crate::remote::SendError::Overloaded { .. } = e {
                    return Err(DistSupervisorError::Overloaded(format!(
                        "entity {:?}: {e}",
                        self.id
                    )));
                }
                if !self.changed(&mut events, deadline).await {
                    return Err(self.unreachable());
                }
                continue;
            }
            let (tx, rx) = oneshot::<R>();
            let (otx, orx) = oneshot::<String>();
            if t.actor.cast(Envelope::call(msg(tx.into()), otx)).is_err() {
                // Its actor stopped before the message reached it: not delivered.
                if !self.changed(&mut events, deadline).await {
                    return Err(self.unreachable());
                }
                continue;
            }
            match self
                .answer(rx, orx, &t, &mut events, deadline, timeout)
                .await
            {
                // Refused unhandled by a node whose lease lapsed: sent again where it runs next.
                Err(DistSupervisorError::ExitedWhileHandling { reason, .. })
                    if reason == super::FENCED =>
                {
                    if !self.changed(&mut events, deadline).await {
                        return Err(self.unreachable());
                    }
                }
                other => return other,
            }
        }
    }
}

/// The child spec of entity `id` of kind `E` (for restart type and intensity, then
/// [`DistributedSupervisor::start_or_get`]).
pub fn entity_spec<E: Entity>(
    id: &str,
    args: &E::Args,
) -> Result<DistChildSpec, DistSupervisorError> {
    let bytes = codec::encode(args).map_err(|e| DistSupervisorError::BadArgs {
        id: id.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(DistChildSpec::new(id, E::KIND, bytes))
}
