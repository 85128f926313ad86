//! The distributed supervisor that runs ranking actors: one name and one start for every node
//! process of the workload (the demo's nodes, the `node` binary, the test nodes).

use actor_cluster::supervisor::DistributedSupervisor;
use actor_cluster::Node;

use crate::actor::{ranking_kind, RankingContext, RankingEntity, RankingOptions, NAIVE_KIND};
use crate::store::PokerStore;

/// The name of the supervisor that runs ranking actors.
pub const SUPERVISOR: &str = "poker";

/// Starts the supervisor `poker` on `node` with both ranking kinds.
pub async fn start_supervisor(
    node: &Node,
    store: &PokerStore,
    options: RankingOptions,
) -> Result<DistributedSupervisor, actor_cluster::ClusterError> {
    DistributedSupervisor::builder(SUPERVISOR)
        .entity::<RankingEntity>(RankingContext {
            store: store.clone(),
            options: options.clone(),
        })
        .kind(NAIVE_KIND, ranking_kind(store.clone(), options, true))
        .start(node)
        .await
}
