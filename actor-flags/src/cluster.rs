//! Propagation of flag changes to every node's cache through the cluster.
//!
//! A write goes to the store first; then the node that wrote it sends the flag's new state with
//! its version to the flag endpoint of every other node, which installs it unless it already
//! has a newer one. No node re-reads the store on a notice (FWF sends only the name and every
//! node re-reads). When a peer comes up (a node joins, or a partition heals), the cache reloads
//! from the store: changes made while the nodes could not reach each other are picked up at
//! once, not at the next periodic reload. Each node's cache digest rides on its membership
//! probes (`actor_cluster::summaries`: one ping and one ack per node per probe interval, not a
//! message to every peer); a node whose cache differs from a peer's re-reads the store (at most
//! once a second), so a change lost with a connection is repaired within about a second in a
//! small cluster, and within a few seconds in one of a hundred nodes. Deltas, digests and the rate limit on
//! reloads are the replication skeleton's (`actor_cluster_proto::replication`), shared with the
//! registry and the supervisor's child table. A jittered periodic reload is the last safety
//! net.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::endpoint::{remote_members, Endpoint};
use actor_cluster::{Node, Summaries, SummarySlot};
use actor_cluster_proto::replication::{Merged, Replicated, Replicator, SyncMsg, SyncOut, Verdict};
use actor_core::{LocalMessage, RemoteMessage};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::{Flag, FlagError, Flags};

const GROUP: &str = "actor_flags";

/// The replication skeleton's messages between flag caches: deltas carry a flag's new state
/// and version, digests the hash of a whole cache. There are no copies between caches (the
/// store is the truth): a node whose digest differs re-reads the store.
pub(crate) type FlagSyncMsg = SyncMsg<(Flag, u64), u64, ()>;

/// Between the flag caches of the nodes.
#[derive(RemoteMessage)]
pub(crate) enum FlagWire {
    /// A message of the replication skeleton.
    Sync(FlagSyncMsg),
}

#[derive(LocalMessage)]
pub(crate) enum CacheMsg {
    Wire(FlagWire),
    /// A flag written on this node, with its version: send it to every node.
    Local(Flag, u64),
    /// A peer's cache digest (from a membership probe).
    Summary(String, u64),
    /// Time to recompute this cache's digest (reloads change the cache outside this actor).
    Tick,
}

/// A node's flag cache, as the replication skeleton sees it.
struct FlagCache<'a>(&'a Flags);

impl Replicated for FlagCache<'_> {
    type Delta = (Flag, u64);
    type Digest = u64;
    type Part = ();
    type Change = String;

    fn apply_delta(&mut self, _: &str, (flag, version): (Flag, u64), _: u64) -> Merged<String> {
        let name = flag.name.clone();
        if self.0.apply(flag, version) {
            Merged::Applied(vec![name])
        } else {
            tracing::debug!(flag = %name, version, "stale flag change ignored");
            Merged::Applied(Vec::new())
        }
    }

    fn digest(&self) -> u64 {
        digest(self.0)
    }

    fn compare(&self, _: &str, theirs: &u64) -> Verdict {
        // A peer caches something else: one of us missed a change (a message lost with a
        // connection, a partition). The store knows.
        if *theirs == digest(self.0) {
            Verdict::InSync
        } else {
            Verdict::Refresh
        }
    }

    fn parts(&self) -> Vec<()> {
        Vec::new()
    }

    fn summary(&self) -> u64 {
        digest(self.0)
    }

    fn apply_part(&mut self, _: &str, _: (), _: u64) -> Vec<String> {
        Vec::new()
    }
}

/// How often a cache recomputes its digest, and the least time between two reloads after a
/// difference.
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
    sync: Replicator,
    reloading: Arc<AtomicBool>,
    summary: SummarySlot,
}

impl CacheActor {
    fn send(out: Vec<SyncOut<FlagSyncMsg>>, st: &CacheState) {
        for o in out {
            match o {
                SyncOut::Broadcast(m) => {
                    for ep in remote_members::<FlagWire>(GROUP) {
                        let _ = ep.cast(FlagWire::Sync(m.clone()));
                    }
                }
                // Flag caches send nothing to one peer: there are no copies between them.
                SyncOut::Send(..) => {}
                // Re-read the store, at most one reload at a time (the skeleton allows one per
                // digest interval).
                SyncOut::Refresh => {
                    if !st.reloading.swap(true, Ordering::AcqRel) {
                        let (flags, busy) = (st.flags.clone(), st.reloading.clone());
                        tokio::spawn(async move {
                            if let Err(e) = flags.reload().await {
                                tracing::warn!(error = %e, "flag reload after a digest mismatch failed");
                            }
                            busy.store(false, Ordering::Release);
                        });
                    }
                }
            }
        }
    }
}

impl Actor for CacheActor {
    type Msg = CacheMsg;
    type State = CacheState;
    type Arguments = (Flags, String, Arc<Summaries>);

    async fn pre_start(
        &self,
        myself: ActorRef<CacheMsg>,
        (flags, me, summaries): (Flags, String, Arc<Summaries>),
    ) -> Result<CacheState, ActorProcessingErr> {
        myself.send_interval(DIGEST_EVERY, || CacheMsg::Tick);
        let to_me = myself.clone();
        let summary = summaries.register(GROUP, move |peer, theirs| {
            let _ = to_me.cast(CacheMsg::Summary(peer.to_owned(), theirs));
        });
        summary.set(digest(&flags));
        Ok(CacheState {
            flags,
            sync: Replicator::new(me, DIGEST_EVERY),
            reloading: Arc::new(AtomicBool::new(false)),
            summary,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<CacheMsg>,
        msg: CacheMsg,
        st: &mut CacheState,
    ) -> Result<(), ActorProcessingErr> {
        let out = match msg {
            CacheMsg::Local(flag, version) => {
                vec![st.sync.delta::<FlagCache<'_>>((flag, version))]
            }
            CacheMsg::Wire(FlagWire::Sync(m)) => {
                let flags = st.flags.clone();
                st.sync
                    .on_message(&mut FlagCache(&flags), Instant::now(), 0, m)
                    .out
            }
            // A cache's digest is its summary: the peer's is taken as the digest it would
            // send, so a difference costs no message (only a reload, at most once a second).
            CacheMsg::Summary(peer, theirs) => {
                let flags = st.flags.clone();
                let digest = SyncMsg::Digest {
                    from: peer,
                    digest: theirs,
                };
                st.sync
                    .on_message(&mut FlagCache(&flags), Instant::now(), 0, digest)
                    .out
            }
            CacheMsg::Tick => Vec::new(),
        };
        Self::send(out, st);
        st.summary.set(digest(&st.flags));
        Ok(())
    }
}

/// Keeps this node's [`Flags`] in step with the other nodes, for as long as it is kept: dropping
/// it stops flag sync on this node (`let _ = ClusterFlags::start(..)` drops it at once; bind it
/// to a name that lives as long as the node).
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// # async fn f(node: actor_cluster::Node, flags: actor_flags::Flags) -> Result<(), actor_flags::FlagError> {
/// actor_flags::ClusterFlags::start(&node, flags, std::time::Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
///
/// ```no_run
/// #![deny(unused_must_use)]
/// # async fn f(node: actor_cluster::Node, flags: actor_flags::Flags) -> Result<(), actor_flags::FlagError> {
/// let _sync = actor_flags::ClusterFlags::start(&node, flags, std::time::Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "dropping ClusterFlags stops flag sync on this node"]
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
        let (actor, _) = Actor::spawn(
            None,
            CacheActor,
            (
                flags.clone(),
                node.identity().name.clone(),
                node.summaries().clone(),
            ),
        )
        .await
        .map_err(err)?;
        let (endpoint, _) = Actor::spawn(
            None,
            Endpoint::new(CacheMsg::Wire),
            (GROUP.to_owned(), actor.clone()),
        )
        .await
        .map_err(err)?;
        let to_cache = actor.clone();
        flags.on_change(move |flag, version| {
            let _ = to_cache.cast(CacheMsg::Local(flag.clone(), version));
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
