//! How a typed [`Entity`] runs: the actor that hosts it ([`Host`]), the message that carries its
//! messages and the outcome of calls ([`Envelope`]), and the [`ChildKind`] the supervisor
//! starts it through.
//!
//! A call to an entity carries, beside the entity's own reply port, an outcome channel: when
//! the handler fails, the host sends the error there, so the caller learns "exited while
//! handling: <reason>" at once instead of waiting for its timeout. Across nodes the two travel
//! as one ractor call: the caller's side relays the answer into the typed reply port or the
//! failure into the outcome channel (ractor_cluster itself does not tell a caller that a remote
//! reply port was dropped).

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use actor_core::codec;
use futures::future::BoxFuture;
use ractor::concurrency::{oneshot, OneshotReceiver, OneshotSender};
use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, Message, RpcReplyPort, SpawnErr};
use serde::{Deserialize, Serialize};

use super::entity::{Entity, EntityContext};
use super::{ChildKind, StartContext, HANDOFF_MAGIC};
use crate::registry::Registry;

/// A remote call's answer did not come back (the caller's proxy of the actor closed, which
/// happens when the actor stops right after answering, or with its connection).
pub(crate) const LOST: &str = "the connection to its node closed before it answered";

/// Marks a wrapped call on the wire (a ractor variant name cannot start with it).
const WRAPPED: &str = "~call:";

/// Handler errors an entity survives by restarting in place, within [`IN_PLACE_WINDOW`].
const IN_PLACE_RESTARTS: usize = 3;
const IN_PLACE_WINDOW: Duration = Duration::from_secs(5);

/// How long the supervisor waits for an entity to export its state on a planned move.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the host answers a wrapped remote call with.
#[derive(Serialize, Deserialize)]
enum WireOutcome {
    /// The entity's own reply, as its reply port encoded it.
    Reply(Vec<u8>),
    /// The handler failed (or dropped the reply port) before answering.
    Exited(String),
}

/// The outcome side of a call.
pub(crate) enum Outcome {
    /// The caller's channel (a local call, or a remote one before it is serialized).
    Local(OneshotSender<String>),
    /// A remote caller: the entity's reply arrives on `reply`, and what the caller learns goes
    /// back on `wire`.
    Remote {
        reply: OneshotReceiver<Vec<u8>>,
        wire: RpcReplyPort<Vec<u8>>,
    },
}

pub(crate) enum Inner<E: Entity> {
    /// A message to the entity: a cast (`outcome: None`) or a call.
    Msg {
        msg: E::Msg,
        outcome: Option<Outcome>,
    },
    /// A planned move: export the state once the messages already queued are handled.
    Handoff(OneshotSender<()>),
}

/// The message type of an entity's actor: the entity's own messages plus what the toolkit
/// needs (call outcomes, handoff). Opaque: send through [`super::EntityRef`].
pub struct Envelope<E: Entity>(pub(crate) Inner<E>);

impl<E: Entity> std::fmt::Debug for Envelope<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Envelope<{}>", E::KIND)
    }
}

impl<E: Entity> Envelope<E> {
    pub(crate) fn cast(msg: E::Msg) -> Self {
        Self(Inner::Msg { msg, outcome: None })
    }

    pub(crate) fn call(msg: E::Msg, outcome: OneshotSender<String>) -> Self {
        Self(Inner::Msg {
            msg,
            outcome: Some(Outcome::Local(outcome)),
        })
    }
}

/// Forwards a remote call's outcome: the reply into the caller's reply port, a failure into its
/// outcome channel (before the reply port is dropped, so the caller finds the reason there).
async fn relay(
    answer: OneshotReceiver<Vec<u8>>,
    reply: RpcReplyPort<Vec<u8>>,
    outcome: OneshotSender<String>,
) {
    let reason = match answer.await {
        Ok(bytes) => match codec::decode::<WireOutcome>(&bytes) {
            Ok(WireOutcome::Reply(b)) => {
                let _ = reply.send(b);
                return;
            }
            Ok(WireOutcome::Exited(reason)) => reason,
            Err(e) => format!("undecodable answer: {e}"),
        },
        Err(_) => LOST.to_owned(),
    };
    let _ = outcome.send(reason);
    drop(reply);
}

impl<E: Entity> Message for Envelope<E> {
    fn serializable() -> bool {
        E::Msg::serializable()
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        match self.0 {
            Inner::Msg { msg, outcome: None } => msg.serialize(),
            Inner::Msg {
                msg,
                outcome: Some(Outcome::Local(outcome)),
            } => match msg.serialize()? {
                SerializedMessage::Call {
                    variant,
                    args,
                    reply,
                    metadata,
                } => {
                    let handle =
                        tokio::runtime::Handle::try_current().map_err(|_| BoxedDowncastErr)?;
                    let (tx, rx) = oneshot::<Vec<u8>>();
                    handle.spawn(relay(rx, reply, outcome));
                    Ok(SerializedMessage::Call {
                        variant: format!("{WRAPPED}{variant}"),
                        args,
                        reply: tx.into(),
                        metadata,
                    })
                }
                other => Ok(other),
            },
            // A received call is never sent on, nor is a handoff request.
            Inner::Msg {
                outcome: Some(Outcome::Remote { .. }),
                ..
            }
            | Inner::Handoff(_) => Err(BoxedDowncastErr),
        }
    }

    fn deserialize(m: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        match m {
            SerializedMessage::Call {
                variant,
                args,
                reply: wire,
                metadata,
            } if variant.starts_with(WRAPPED) => {
                let (tx, rx) = oneshot::<Vec<u8>>();
                let inner = SerializedMessage::Call {
                    variant: variant[WRAPPED.len()..].to_owned(),
                    args,
                    reply: tx.into(),
                    metadata,
                };
                match E::Msg::deserialize(inner) {
                    Ok(msg) => Ok(Self(Inner::Msg {
                        msg,
                        outcome: Some(Outcome::Remote { reply: rx, wire }),
                    })),
                    Err(e) => {
                        let why = format!(
                            "entity kind {:?} cannot decode the message {:?}",
                            E::KIND,
                            &variant[WRAPPED.len()..]
                        );
                        if let Ok(b) = codec::encode(&WireOutcome::Exited(why)) {
                            let _ = wire.send(b);
                        }
                        Err(e)
                    }
                }
            }
            other => Ok(Self::cast(E::Msg::deserialize(other)?)),
        }
    }
}

/// Tells the caller what became of its call, once the handler returned.
fn report(outcome: Option<Outcome>, result: &Result<(), ActorProcessingErr>) {
    let failure = result.as_ref().err().map(|e| e.to_string());
    match outcome {
        None => {}
        Some(Outcome::Local(tx)) => {
            if let Some(reason) = failure {
                let _ = tx.send(reason);
            }
        }
        Some(Outcome::Remote { mut reply, wire }) => {
            let send = move |out: WireOutcome| {
                if let Ok(b) = codec::encode(&out) {
                    let _ = wire.send(b);
                }
            };
            if let Some(reason) = failure {
                // Now, before the actor stops: its stopping may close the caller's proxy
                // before a later answer would arrive.
                send(match reply.try_recv() {
                    Ok(b) => WireOutcome::Reply(b),
                    Err(_) => WireOutcome::Exited(reason),
                });
                return;
            }
            // The entity may answer later (it can keep the reply port): wait for it here.
            tokio::spawn(async move {
                send(match reply.await {
                    Ok(b) => WireOutcome::Reply(b),
                    Err(_) => WireOutcome::Exited(
                        "the entity dropped the reply port without answering".to_owned(),
                    ),
                });
            });
        }
    }
}

/// The actor that runs one entity.
pub(crate) struct Host<E>(PhantomData<fn() -> E>);

pub(crate) struct HostArgs<E: Entity> {
    id: String,
    args: E::Args,
    /// The same, encoded (an in-place restart decodes them again).
    encoded: Vec<u8>,
    handoff: Option<E::Handoff>,
    context: Arc<E::Context>,
    registry: Registry,
    fence: super::LeaseFence,
}

pub(crate) struct HostState<E: Entity> {
    entity: Option<E>,
    start: Option<(E::Args, Option<E::Handoff>)>,
    ctx: EntityContext<E>,
    registry: Registry,
    handoff_to: Option<OneshotSender<()>>,
    /// Encoded arguments, for in-place restarts.
    args: Vec<u8>,
    /// When the last in-place restarts were.
    restarts: Vec<std::time::Instant>,
    fence: super::LeaseFence,
}

impl<E: Entity> Actor for Host<E> {
    type Msg = Envelope<E>;
    type State = HostState<E>;
    type Arguments = HostArgs<E>;

    async fn pre_start(
        &self,
        myself: ActorRef<Envelope<E>>,
        a: HostArgs<E>,
    ) -> Result<HostState<E>, ActorProcessingErr> {
        Ok(HostState {
            entity: None,
            start: Some((a.args, a.handoff)),
            ctx: EntityContext::new(a.id, a.context, myself),
            registry: a.registry,
            handoff_to: None,
            args: a.encoded,
            restarts: Vec::new(),
            fence: a.fence,
        })
    }

    /// The entity starts here, after the supervisor registered it: messages sent meanwhile
    /// wait in the mailbox, and the supervisor is not held up by a slow start (a database read).
    async fn post_start(
        &self,
        _myself: ActorRef<Envelope<E>>,
        st: &mut HostState<E>,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((args, handoff)) = st.start.take() {
            st.entity = Some(E::start(&st.ctx, args, handoff).await?);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Envelope<E>>,
        msg: Envelope<E>,
        st: &mut HostState<E>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(entity) = st.entity.as_mut() else {
            return Err(format!("entity {:?} is not started", st.ctx.id()).into());
        };
        match msg.0 {
            Inner::Msg { outcome, .. } if !st.fence.is_open() => {
                // Not handled: the majority may run this entity elsewhere by now. A caller
                // learns so (`FENCED`), and sends its call again where the entity runs next.
                tracing::warn!(
                    entity = st.ctx.id(),
                    "lease lapsed: the entity stops unhandled"
                );
                report(outcome, &Err(super::FENCED.into()));
                myself.stop(Some(super::FENCED.to_owned()));
                Ok(())
            }
            Inner::Msg { msg, outcome } => {
                let result = entity.handle(&st.ctx, msg).await;
                report(outcome, &result);
                let Err(e) = result else {
                    return Ok(());
                };
                // A handler error restarts the entity in place: its actor, and with it its
                // registration and the answer on its way to a remote caller, stay. Past
                // `IN_PLACE_RESTARTS` within `IN_PLACE_WINDOW` the actor fails, and the
                // supervisor's restart rules take over.
                let now = std::time::Instant::now();
                st.restarts
                    .retain(|t| now.duration_since(*t) < IN_PLACE_WINDOW);
                if st.restarts.len() >= IN_PLACE_RESTARTS {
                    return Err(e);
                }
                st.restarts.push(now);
                tracing::info!(entity = st.ctx.id(), error = %e, "handler failed; restarting the entity");
                let args = codec::decode::<E::Args>(&st.args).map_err(|d| {
                    format!("entity {:?}: cannot decode its arguments: {d}", st.ctx.id())
                })?;
                st.entity = None;
                st.entity = Some(E::start(&st.ctx, args, None).await?);
                Ok(())
            }
            Inner::Handoff(done) => {
                // Messages queued before this are handled first, later ones are refused (their
                // senders find the entity on its next node); the state is exported in post_stop.
                st.handoff_to = Some(done);
                let _ = myself.drain();
                Ok(())
            }
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Envelope<E>>,
        st: &mut HostState<E>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(done) = st.handoff_to.take() else {
            return Ok(());
        };
        if let Some(entity) = st.entity.as_mut() {
            if let Some(state) = entity.handoff().await {
                // Written into the registration before the actor stops (and so before the
                // registry drops the name), so every node has it when the next start happens.
                match codec::encode(&state) {
                    Ok(bytes) => {
                        let mut meta = HANDOFF_MAGIC.to_vec();
                        meta.extend_from_slice(&bytes);
                        if let Err(e) = st.registry.update_meta(st.ctx.id(), meta).await {
                            tracing::warn!(entity = st.ctx.id(), error = %e, "cannot publish the handoff state");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(entity = st.ctx.id(), error = %e, "cannot encode the handoff state");
                    }
                }
            }
        }
        let _ = done.send(());
        Ok(())
    }
}

/// The [`ChildKind`] of entity type `E`.
pub(crate) struct EntityKind<E: Entity> {
    pub(crate) context: Arc<E::Context>,
}

impl<E: Entity> ChildKind for EntityKind<E> {
    fn start(&self, ctx: StartContext) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> {
        let context = self.context.clone();
        Box::pin(async move {
            let args = codec::decode::<E::Args>(&ctx.args).map_err(|e| {
                SpawnErr::StartupFailed(
                    format!("entity {:?}: cannot decode its arguments: {e}", ctx.id).into(),
                )
            })?;
            let handoff = ctx
                .handoff
                .and_then(|b| match codec::decode::<E::Handoff>(&b) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        // It starts as after a crash: from its own sources, not from nothing.
                        tracing::warn!(entity = %ctx.id, error = %e, "cannot decode the handed-off state; starting without it");
                        None
                    }
                });
            let args = HostArgs {
                id: ctx.id,
                args,
                encoded: ctx.args,
                handoff,
                context,
                registry: ctx.registry,
                fence: ctx.fence,
            };
            let (actor, _) =
                Actor::spawn_linked(None, Host::<E>(PhantomData), args, ctx.supervisor).await?;
            Ok(actor.get_cell())
        })
    }

    fn export(&self, child: ActorCell) -> BoxFuture<'static, Option<Vec<u8>>> {
        Box::pin(async move {
            let actor: ActorRef<Envelope<E>> = child.into();
            let (tx, rx) = oneshot();
            if actor.cast(Envelope(Inner::Handoff(tx))).is_ok() {
                // The host publishes the state itself (see `Host::post_stop`).
                let _ = tokio::time::timeout(EXPORT_TIMEOUT, rx).await;
            }
            None
        })
    }
}
