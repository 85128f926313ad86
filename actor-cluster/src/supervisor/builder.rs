//! Configuring and starting a distributed supervisor on a node.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Builds a [`DistributedSupervisor`].
pub struct DistributedSupervisorBuilder {
    pub(super) name: String,
    pub(super) kinds: HashMap<String, Arc<dyn ChildKind>>,
    pub(super) placement: Arc<dyn Placement>,
    pub(super) active: bool,
    pub(super) min_members: usize,
}

impl std::fmt::Debug for DistributedSupervisorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedSupervisorBuilder")
            .field("name", &self.name)
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl DistributedSupervisorBuilder {
    /// Registers a kind of child this node can run.
    pub fn kind(mut self, name: impl Into<String>, kind: impl ChildKind) -> Self {
        self.kinds.insert(name.into(), Arc::new(kind));
        self
    }

    /// Registers the typed entity `E` on this node, with what its entities share here.
    pub fn entity<E: Entity>(self, context: E::Context) -> Self {
        let kind = host::EntityKind::<E> {
            context: Arc::new(context),
        };
        self.kind(E::KIND, kind)
    }

    /// Starts nothing, and refuses starts ([`DistSupervisorError::TooFewMembers`]), while fewer
    /// than `n` members (this node included) are eligible, e.g. a node whose cookie no peer
    /// accepts does not run the cluster's children alone. Default 1.
    pub fn min_members(mut self, n: usize) -> Self {
        self.min_members = n;
        self
    }

    /// Sets the placement (default [`Uniform`]).
    pub fn placement(mut self, p: impl Placement) -> Self {
        self.placement = Arc::new(p);
        self
    }

    /// Active redistribution: when a node joins, children whose placement moves to it are
    /// handed off (default: passive, children stay where they run).
    pub fn active_redistribution(mut self, on: bool) -> Self {
        self.active = on;
        self
    }

    /// Starts this node's part of the supervisor.
    pub async fn start(self, node: &Node) -> Result<DistributedSupervisor, crate::ClusterError> {
        let group = supervisor_group(&self.name);
        let registry = Registry::start(node, &group).await?;
        let me = node.identity().name.clone();
        let mut core =
            SupervisorCore::new(me, self.kinds.keys().cloned(), self.placement, self.active)
                .with_min_members(self.min_members);
        let now = Now {
            mono: Instant::now(),
            wall_ns: crate::registry::wall_ns(),
        };
        // Subscribe before reading the members: a member that comes up in between is then in
        // the events (maybe twice, which is harmless), never in neither. Read first, a seed that
        // came up while this started was missed for good: its kinds never asked for, it was
        // never eligible (a test saw 3 of 4 members after 20 s).
        let member_events = node.subscribe();
        for m in node.members().await.unwrap_or_default() {
            if matches!(
                m.state,
                crate::MemberState::Up | crate::MemberState::Suspect
            ) {
                // Its kinds are asked for on the first tick.
                let _ = core.on_member_up(now, &m.node.name);
            }
        }
        let st = DState {
            core,
            group: group.clone(),
            kinds: Arc::new(self.kinds),
            registry: registry.clone(),
            cells: HashMap::new(),
            by_cell: HashMap::new(),
            reconcile_pending: false,
            wake: None,
            drains: Vec::new(),
            member_waits: Vec::new(),
            last_exit: HashMap::new(),
            summaries: node.summaries().clone(),
            summary: None,
            fence: super::LeaseFence::default(),
            outbox: crate::endpoint::Outbox::default(),
        };
        let err = |e: SpawnErr| crate::ClusterError::NodeServer(e.to_string());
        let (actor, _) = Actor::spawn(None, DsupActor, st).await.map_err(err)?;
        let (endpoint, _) =
            Actor::spawn(None, Endpoint::new(DsupMsg::Wire), (group, actor.clone()))
                .await
                .map_err(err)?;
        forward_member_events(member_events, actor.clone(), DsupMsg::Member);
        let mut reg_events = registry.subscribe();
        let fwd = actor.clone();
        tokio::spawn(async move {
            loop {
                match reg_events.recv().await {
                    Ok(RegistryEvent::Unregistered { name, owner }) => {
                        if fwd.cast(DsupMsg::Lost(name, owner.node)).is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if fwd.cast(DsupMsg::Reconcile).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        let _ = actor.cast(DsupMsg::Tick);
        Ok(DistributedSupervisor {
            inner: Arc::new(Inner {
                actor,
                endpoint,
                registry,
                remote: node.remote().clone(),
            }),
        })
    }
}
