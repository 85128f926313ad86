//! Membership: who is in the cluster, as this node sees it.
//!
//! The state machine is [`Membership`], from `actor-cluster-proto` (pure, deterministic
//! tests, simulated there; its module doc describes the probes). The actor here wires it to
//! ractor_cluster's session events, our transport (dials, cuts, probe frames on each
//! connection's control lane, ahead of queued data, with the services' summaries on pings and
//! acks) and a probe timer. Leave announcements go to the other nodes' membership endpoints
//! (found through a pg group).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core::{LocalMessage, RemoteMessage};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::{NodeServerMessage, NodeSessionMessage};
use tokio::sync::broadcast;

use crate::mux::Control;
use crate::summaries::Summaries;
use crate::transport::{label_name, ConnectError, Transport};
use actor_cluster_proto::clock::ClockSync;
pub use actor_cluster_proto::membership::{
    Action, DownReason, MemberEvent, MemberInfo, MemberState, Membership, NodeIdentity, Probe,
    Timings,
};

/// pg group of the membership endpoints.
pub(crate) const ENDPOINTS: &str = "membership";

/// Messages between nodes' membership endpoints.
#[derive(RemoteMessage)]
pub(crate) enum PeerMsg {
    /// The sender leaves the cluster; acknowledged once recorded.
    Leave(NodeIdentity, RpcReplyPort<()>),
}

/// Turns a peer message into the membership actor's message.
pub(crate) fn from_peer(msg: PeerMsg) -> MembershipMsg {
    match msg {
        PeerMsg::Leave(from, reply) => MembershipMsg::PeerLeft(from, reply),
    }
}

/// Messages of the membership actor (local).
#[derive(LocalMessage)]
pub(crate) enum MembershipMsg {
    Tick,
    Discovered(Vec<SocketAddr>),
    DialFailed(SocketAddr, ConnectError),
    /// A connection completed the identity exchange (before ractor_cluster's handshake).
    Identified {
        peer: NodeIdentity,
        dialed: Option<SocketAddr>,
    },
    SessionReady {
        name: String,
        session: ActorRef<NodeSessionMessage>,
    },
    SessionClosed {
        session: ActorId,
        label: String,
    },
    /// A probe frame from the connection's peer (by name).
    Probe(String, Probe),
    PeerLeft(NodeIdentity, RpcReplyPort<()>),
    Members(RpcReplyPort<Vec<MemberInfo>>),
    /// The last error of a failed dial, with its address (for readiness errors).
    LastDialError(RpcReplyPort<Option<(SocketAddr, String)>>),
    /// Tell every member that this node leaves; answer once they acknowledged (or timed out).
    AnnounceLeave(RpcReplyPort<()>),
}

pub(crate) struct MembershipArgs {
    pub(crate) me: NodeIdentity,
    pub(crate) timings: Timings,
    pub(crate) transport: Arc<Transport>,
    pub(crate) node_server: ActorRef<NodeServerMessage>,
    pub(crate) events: broadcast::Sender<MemberEvent>,
    pub(crate) summaries: Arc<Summaries>,
    /// Clock agreement: told when each ping leaves, so its ack bounds the peer's clock.
    pub(crate) clock: Arc<parking_lot::Mutex<ClockSync>>,
}

pub(crate) struct MembershipState {
    core: Membership,
    transport: Arc<Transport>,
    node_server: ActorRef<NodeServerMessage>,
    events: broadcast::Sender<MemberEvent>,
    /// The latest identity seen per peer name.
    identities: HashMap<String, NodeIdentity>,
    /// Dials awaiting their session, by peer name.
    dialing: HashMap<String, SocketAddr>,
    /// The last error of a failed dial, by address (for the unreachable warning).
    last_dial_error: HashMap<SocketAddr, String>,
    /// The latest failed dial of all, and its error.
    last_dial: Option<(SocketAddr, String)>,
    /// Ready sessions.
    sessions: HashMap<ActorId, (String, ActorRef<NodeSessionMessage>)>,
    summaries: Arc<Summaries>,
    clock: Arc<parking_lot::Mutex<ClockSync>>,
    leaving: bool,
}

pub(crate) struct MembershipActor;

fn endpoints() -> Vec<ActorRef<PeerMsg>> {
    crate::endpoint::remote_members(ENDPOINTS)
}

impl MembershipActor {
    fn apply(
        &self,
        myself: &ActorRef<MembershipMsg>,
        st: &mut MembershipState,
        actions: Vec<Action>,
    ) {
        for action in actions {
            match action {
                Action::Send { to, probe } => {
                    if st.leaving {
                        continue;
                    }
                    let services = match probe {
                        Probe::Ping { .. } | Probe::Ack { .. } => st.summaries.snapshot(),
                        _ => Vec::new(),
                    };
                    if let Probe::Ping { seq, .. } = probe {
                        let sent = actor_core::wallclock::system_ns();
                        st.clock.lock().on_ping_sent(&to, seq, sent);
                    }
                    st.transport.send_control(
                        &to,
                        &Control::Probe {
                            probe,
                            services,
                            wall_ns: actor_core::wallclock::wall_ns(),
                        },
                    );
                }
                Action::Broadcast(probe) => {
                    if !st.leaving {
                        st.transport.broadcast_control(&Control::Probe {
                            probe,
                            services: Vec::new(),
                            wall_ns: actor_core::wallclock::wall_ns(),
                        });
                    }
                }
                Action::Dial { addr, name } => {
                    let transport = st.transport.clone();
                    let server = st.node_server.clone();
                    let me = myself.clone();
                    tokio::spawn(async move {
                        match transport.dial(addr, name.as_deref()).await {
                            Ok((stream, peer)) => {
                                let _ = me.cast(MembershipMsg::Identified {
                                    peer,
                                    dialed: Some(addr),
                                });
                                if let Err(e) =
                                    ractor_cluster::client_connect_external(&server, stream).await
                                {
                                    let _ = me.cast(MembershipMsg::DialFailed(
                                        addr,
                                        ConnectError::NodeServer(e.to_string()),
                                    ));
                                }
                            }
                            Err(e) => {
                                let _ = me.cast(MembershipMsg::DialFailed(addr, e));
                            }
                        }
                    });
                }
                Action::Unreachable {
                    addr,
                    name,
                    failures,
                } => {
                    let error = st.last_dial_error.get(&addr).cloned().unwrap_or_default();
                    tracing::warn!(
                        %addr,
                        expected = name.as_deref().unwrap_or("?"),
                        failures,
                        %error,
                        "cannot reach this address: is a node listening there, with this cluster's cookie?"
                    );
                }
                Action::Close(name) => {
                    st.transport.close_peer(&name);
                    let ids: Vec<ActorId> = st
                        .sessions
                        .iter()
                        .filter(|(_, (n, _))| *n == name)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in ids {
                        if let Some((_, session)) = st.sessions.remove(&id) {
                            session.kill();
                        }
                    }
                }
                Action::Emit(event) => {
                    // Whatever a member's change, its next summaries are news (a new
                    // incarnation's replicas start out unsynced).
                    let (MemberEvent::MemberUp(n)
                    | MemberEvent::MemberDown { node: n, .. }
                    | MemberEvent::MemberLeft(n)) = &event;
                    st.summaries.forget(&n.name);
                    match &event {
                        MemberEvent::MemberUp(n) => {
                            tracing::info!(member = %n.name, addr = %n.addr, incarnation = n.incarnation, "member up")
                        }
                        MemberEvent::MemberDown { node, reason } => {
                            metrics::counter!("cluster_member_down_total").increment(1);
                            tracing::warn!(member = %node.name, ?reason, "member down")
                        }
                        MemberEvent::MemberLeft(n) => {
                            tracing::info!(member = %n.name, "member left")
                        }
                    }
                    let _ = st.events.send(event);
                }
            }
        }
    }
}

impl Actor for MembershipActor {
    type Msg = MembershipMsg;
    type State = MembershipState;
    type Arguments = MembershipArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MembershipMsg>,
        args: MembershipArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(args.timings.heartbeat_interval, || MembershipMsg::Tick);
        Ok(MembershipState {
            core: Membership::new(args.me, args.timings),
            transport: args.transport,
            node_server: args.node_server,
            events: args.events,
            identities: HashMap::new(),
            dialing: HashMap::new(),
            last_dial_error: HashMap::new(),
            last_dial: None,
            sessions: HashMap::new(),
            summaries: args.summaries,
            clock: args.clock,
            leaving: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<MembershipMsg>,
        msg: MembershipMsg,
        st: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        let actions = match msg {
            MembershipMsg::Tick => st.core.tick(now, rand::random()),
            MembershipMsg::Discovered(addrs) => st.core.on_discovered(&addrs, now),
            MembershipMsg::DialFailed(addr, err) => {
                st.dialing.retain(|_, a| *a != addr);
                match err {
                    ConnectError::SelfDial => {
                        st.core.on_dialed_self(addr);
                        Vec::new()
                    }
                    err => {
                        tracing::debug!(%addr, error = %err, "dial failed");
                        if st.last_dial_error.len() > 1024 {
                            st.last_dial_error.clear();
                        }
                        st.last_dial_error.insert(addr, err.to_string());
                        st.last_dial = Some((addr, err.to_string()));
                        st.core.on_dial_failed(addr, now)
                    }
                }
            }
            MembershipMsg::Identified { peer, dialed } => {
                if let Some(addr) = dialed {
                    st.dialing.insert(peer.name.clone(), addr);
                }
                st.identities.insert(peer.name.clone(), peer);
                Vec::new()
            }
            MembershipMsg::SessionReady { name, session } => {
                st.dialing.remove(&name);
                match st.identities.get(&name) {
                    Some(peer) => {
                        st.sessions.insert(session.get_id(), (name, session));
                        st.core.on_session_up(peer.clone(), now)
                    }
                    None => {
                        tracing::warn!(peer = %name, "a session became ready without our identity exchange; closing it");
                        session.kill();
                        Vec::new()
                    }
                }
            }
            MembershipMsg::SessionClosed { session, label } => match st.sessions.remove(&session) {
                Some((name, _)) => st.core.on_session_down(&name, now),
                None => {
                    if let Some(addr) = st.dialing.remove(&label) {
                        let why = "session closed before it was ready: authentication failed (cookie mismatch?) or the peer refused it";
                        // Warned once per address; repeats are the core's `Unreachable`
                        // warnings (after 5 in a row, then every 50), with this reason.
                        if st.last_dial_error.get(&addr).map(String::as_str) == Some(why) {
                            tracing::debug!(peer = %label, "{why}");
                        } else {
                            tracing::warn!(peer = %label, "{why}");
                        }
                        st.last_dial_error.insert(addr, why.to_owned());
                        st.last_dial = Some((addr, why.to_owned()));
                        st.core.on_dial_failed(addr, now)
                    } else {
                        Vec::new()
                    }
                }
            },
            MembershipMsg::Probe(from, probe) => st.core.on_probe(&from, probe, now),
            MembershipMsg::PeerLeft(from, reply) => {
                let actions = st.core.on_leave(&from);
                let _ = reply.send(());
                actions
            }
            MembershipMsg::Members(reply) => {
                let _ = reply.send(st.core.members());
                Vec::new()
            }
            MembershipMsg::LastDialError(reply) => {
                let _ = reply.send(st.last_dial.clone());
                Vec::new()
            }
            MembershipMsg::AnnounceLeave(reply) => {
                st.leaving = true;
                let me = st.core.me().clone();
                let calls: Vec<_> = endpoints()
                    .into_iter()
                    .map(move |ep| {
                        let me = me.clone();
                        async move {
                            let _ = ep
                                .call(|r| PeerMsg::Leave(me, r), Some(Duration::from_millis(500)))
                                .await;
                        }
                    })
                    .collect();
                tokio::spawn(async move {
                    futures::future::join_all(calls).await;
                    let _ = reply.send(());
                });
                Vec::new()
            }
        };
        self.apply(&myself, st, actions);
        Ok(())
    }
}

/// Forwards ractor_cluster's node events to the membership actor and the transport.
pub(crate) struct SessionEvents(
    pub(crate) ActorRef<MembershipMsg>,
    pub(crate) Arc<Transport>,
);

/// Our node name from ractor_cluster's `name@host`.
fn node_name(ractor_name: &str) -> String {
    ractor_name
        .split_once('@')
        .map(|(n, _)| n)
        .unwrap_or(ractor_name)
        .to_owned()
}

impl ractor_cluster::NodeEventSubscription for SessionEvents {
    fn node_session_opened(&self, _ses: ractor_cluster::node::NodeServerSessionInformation) {}

    fn node_session_authenticated(&self, _ses: ractor_cluster::node::NodeServerSessionInformation) {
    }

    fn node_session_ready(&self, ses: ractor_cluster::node::NodeServerSessionInformation) {
        self.1.session_ready(&ses.peer_addr, ses.node_id);
        let name = ses
            .peer_name
            .as_ref()
            .map(|n| node_name(&n.name))
            .unwrap_or_else(|| label_name(&ses.peer_addr).to_owned());
        let _ = self.0.cast(MembershipMsg::SessionReady {
            name,
            session: ses.actor,
        });
    }

    fn node_session_disconnected(&self, ses: ractor_cluster::node::NodeServerSessionInformation) {
        self.1.session_closed(ses.node_id);
        let _ = self.0.cast(MembershipMsg::SessionClosed {
            session: ses.actor.get_id(),
            label: ses
                .peer_name
                .as_ref()
                .map(|n| node_name(&n.name))
                .unwrap_or_else(|| label_name(&ses.peer_addr).to_owned()),
        });
    }
}
