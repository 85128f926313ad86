//! Propagation of flag changes to every node's cache through the cluster.
//!
//! A write goes to the store first; then the node that wrote it sends the flag's new state with
//! its version to the flag endpoint of every other node, which installs it unless it already
//! has a newer one. No node re-reads the store on a notice (FWF sends only the name and every
//! node re-reads). When a peer comes up (a node joins, or a partition heals), the cache reloads
//! from the store: changes made while the nodes could not reach each other are picked up at
//! once, not at the next periodic reload. Every second each node sends the others a digest of
//! its cache; a node whose cache differs from a peer's re-reads the store, so a change lost with
//! a connection is repaired within about two seconds. A jittered periodic reload is the last
//! safety net.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    /// A digest of the sender's whole cache (anti-entropy): a node whose digest differs
    /// re-reads the store.
    Digest(u64),
}

#[derive(LocalMessage)]
pub(crate) enum CacheMsg {
    Wire(FlagWire),
}

/// How often each node sends its digest.
const DIGEST_EVERY: Duration = Duration::from_secs(1);

/// A digest of a cache's content (flags and gates, not versions), the same on every node that
/// caches the same flags.
pub(crate) fn digest(flags: &Flags) -> u64 {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for f in flags.all_flags() {
        h.update(f.name.as_bytes());
        let mut gates: Vec<Vec<u8>> = f
            .gates
            .iter()
            .filter_map(|g| actor_core::codec::encode(g).ok())
            .collect();
        gates.sort();
        for g in gates {
            h.update((g.len() as u64).to_be_bytes());
            h.update(&g);
        }
        h.update([0xff]);
    }
    let out = h.finalize();
    u64::from_be_bytes([
        out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7],
    ])
}

struct CacheActor;

struct CacheState {
    flags: Flags,
    reloading: Arc<AtomicBool>,
}

impl Actor for CacheActor {
    type Msg = CacheMsg;
    type State = CacheState;
    type Arguments = Flags;

    async fn pre_start(
        &self,
        _: ActorRef<CacheMsg>,
        flags: Flags,
    ) -> Result<CacheState, ActorProcessingErr> {
        Ok(CacheState {
            flags,
            reloading: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn handle(
        &self,
        _: ActorRef<CacheMsg>,
        msg: CacheMsg,
        st: &mut CacheState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CacheMsg::Wire(FlagWire::Changed(flag, version)) => {
                let name = flag.name.clone();
                if !st.flags.apply(flag, version) {
                    tracing::debug!(flag = %name, version, "stale flag change ignored");
                }
            }
            CacheMsg::Wire(FlagWire::Digest(theirs)) => {
                // A peer caches something else: one of us missed a change (a message lost
                // with a connection, a partition). Re-read the store, at most one at a time.
                if theirs != digest(&st.flags) && !st.reloading.swap(true, Ordering::AcqRel) {
                    let (flags, busy) = (st.flags.clone(), st.reloading.clone());
                    tokio::spawn(async move {
                        if let Err(e) = flags.reload().await {
                            tracing::warn!(error = %e, "flag reload after a digest mismatch failed");
                        }
                        tokio::time::sleep(DIGEST_EVERY).await;
                        busy.store(false, Ordering::Release);
                    });
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
    digests: tokio::task::JoinHandle<()>,
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
        // Anti-entropy: every node tells the others what its cache holds, once a second.
        let f = flags.clone();
        let digests = tokio::spawn(async move {
            loop {
                tokio::time::sleep(DIGEST_EVERY).await;
                let d = digest(&f);
                for ep in remote_members::<FlagWire>(GROUP) {
                    let _ = ep.cast(FlagWire::Digest(d));
                }
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
            digests,
            actor,
            endpoint,
        })
    }
}

impl Drop for ClusterFlags {
    fn drop(&mut self) {
        self.reload.abort();
        self.digests.abort();
        self.endpoint.stop(None);
        self.actor.stop(None);
    }
}
