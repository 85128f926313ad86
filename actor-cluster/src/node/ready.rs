//! Readiness: waiting for the cluster to form.

use std::time::Duration;

use tokio::sync::broadcast;

use super::Node;
use crate::membership::{MemberState, MembershipMsg, NodeIdentity};
use crate::ClusterError;

impl Node {
    /// Waits until at least `n` other members are up (driven by membership events, not
    /// polling), and returns them. After `timeout` it fails with [`ClusterError::NotFormed`],
    /// which names the latest connection problem (a seed nobody listens on, another cookie).
    pub async fn wait_for_members(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<NodeIdentity>, ClusterError> {
        let began = tokio::time::Instant::now();
        let deadline = began + timeout;
        let mut events = self.subscribe();
        loop {
            let up: Vec<NodeIdentity> = self
                .members()
                .await?
                .into_iter()
                .filter(|m| matches!(m.state, MemberState::Up | MemberState::Suspect))
                .map(|m| m.node)
                .collect();
            if up.len() >= n {
                return Ok(up);
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(ClusterError::Unavailable("the node stopped".into()))
                }
                Err(_) => {
                    let last_problem = match self
                        .inner
                        .membership
                        .call(MembershipMsg::LastDialError, Some(Duration::from_secs(2)))
                        .await
                    {
                        Ok(ractor::rpc::CallResult::Success(p)) => {
                            p.map(|(addr, why)| format!("{addr}: {why}"))
                        }
                        _ => None,
                    };
                    return Err(ClusterError::NotFormed {
                        wanted: n,
                        up: up.len(),
                        waited: began.elapsed(),
                        last_problem,
                    });
                }
            }
        }
    }
}
