//! Propagation of flag changes to every node's cache through the cluster.
//!
//! A write goes to the store first; then the node that wrote it sends the flag's new state with
//! its version to the flag endpoint of every other node, which installs it unless it already
//! has a newer one. No node re-reads the store on a notice (FWF sends only the name and every
//! node re-reads). When a peer comes up (a node joins, or a partition heals), the cache reloads
//! from the store: changes made while the nodes could not reach each other are picked up at
//! once, not at the next periodic reload. A jittered periodic reload is the safety net.

use std::time::Duration;

use actor_cluster::endpoint::{remote_members, Endpoint};
use actor_cluster::Node;
use actor_core::{LocalMessage, RemoteMessage};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::{Flag, FlagError, Flags};

const GROUP: &str = "actor_flags";

/// Between the flag caches of the nodes.
#[derive(RemoteMessage)]
pub(crate) enum FlagWire {
    /// A flag's new state and its version.
    Changed(Flag, u64),
}

#[derive(LocalMessage)]
pub(crate) enum CacheMsg {
    Wire(FlagWire),
}

struct CacheActor;

impl Actor for CacheActor {
    type Msg = CacheMsg;
    type State = Flags;
    type Arguments = Flags;

    async fn pre_start(
        &self,
        _: ActorRef<CacheMsg>,
        flags: Flags,
    ) -> Result<Flags, ActorProcessingErr> {
        Ok(flags)
    }

    async fn handle(
        &self,
        _: ActorRef<CacheMsg>,
        msg: CacheMsg,
        flags: &mut Flags,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CacheMsg::Wire(FlagWire::Changed(flag, version)) => {
                let name = flag.name.clone();
                if !flags.apply(flag, version) {
                    tracing::debug!(flag = %name, version, "stale flag change ignored");
                }
            }
        }
        Ok(())
    }
}

/// Keeps this node's [`Flags`] in step with the other nodes.
#[derive(Debug)]
pub struct ClusterFlags {
    reload: tokio::task::JoinHandle<()>,
    actor: ActorRef<CacheMsg>,
    endpoint: ActorRef<FlagWire>,
}

impl ClusterFlags {
    /// Joins `flags` to the cluster: changes written here go to every node, changes written
    /// elsewhere are installed here, and every `reload_every` (±20 %) the cache is reloaded from
    /// the store.
    pub async fn start(
        node: &Node,
        flags: Flags,
        reload_every: Duration,
    ) -> Result<Self, FlagError> {
        let err = |e: ractor::SpawnErr| {
            FlagError::Store(format!("cannot start the flag cache actor: {e}"))
        };
        let (actor, _) = Actor::spawn(None, CacheActor, flags.clone())
            .await
            .map_err(err)?;
        let (endpoint, _) = Actor::spawn(
            None,
            Endpoint::new(CacheMsg::Wire),
            (GROUP.to_owned(), actor.clone()),
        )
        .await
        .map_err(err)?;
        flags.on_change(|flag, version| {
            for ep in remote_members::<FlagWire>(GROUP) {
                let _ = ep.cast(FlagWire::Changed(flag.clone(), version));
            }
        });
        let f = flags.clone();
        let mut events = node.subscribe();
        let reload = tokio::spawn(async move {
            loop {
                let jitter = 0.8 + 0.4 * rand::random::<f64>();
                let periodic = tokio::time::sleep(reload_every.mul_f64(jitter));
                tokio::select! {
                    _ = periodic => {}
                    ev = events.recv() => match ev {
                        Ok(actor_cluster::MemberEvent::MemberUp(_))
                        | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Ok(_) => continue,
                        Err(_) => return,
                    },
                }
                if let Err(e) = f.reload().await {
                    tracing::warn!(error = %e, "flag reload failed; serving the cached flags");
                }
            }
        });
        Ok(Self {
            reload,
            actor,
            endpoint,
        })
    }
}

impl Drop for ClusterFlags {
    fn drop(&mut self) {
        self.reload.abort();
        self.endpoint.stop(None);
        self.actor.stop(None);
    }
}
