//! The supervisor actor: wires the sans-IO core to ractor's supervision events and timers.

use std::time::Instant;

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RactorErr, SupervisionEvent,
};

use super::core::{plan_restart, should_restart, ChildView, ExitReason, Restart, RestartWindow};
use super::{
    ChildCount, ChildInfo, ChildKind, ChildSpec, Shutdown, SupervisorError, SupervisorMsg,
    SupervisorSpec, KILL_WAIT,
};

pub(crate) struct SupervisorActor;

struct Slot {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    /// Restart token this child waits on (backoff), if any.
    pending: Option<u64>,
    /// This child's own recent restarts (for the backoff exponent).
    history: RestartWindow,
}

pub(crate) struct State {
    spec: SupervisorSpec,
    dynamic: bool,
    window: RestartWindow,
    slots: Vec<Slot>,
    next_token: u64,
}

impl State {
    fn slot_of(&self, id: &ActorId) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.cell.as_ref().map(ActorCell::get_id).as_ref() == Some(id))
    }

    fn index_of(&self, child_id: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.spec.id == child_id)
    }

    fn new_slot(&self, spec: ChildSpec) -> Slot {
        Slot {
            spec,
            cell: None,
            pending: None,
            history: RestartWindow::new(self.spec.intensity),
        }
    }
}

/// Stops one child according to its shutdown rule: ask, wait, then kill.
async fn shutdown_child(cell: &ActorCell, shutdown: Shutdown, id: &str) {
    match shutdown {
        Shutdown::Brutal => {
            let _ = cell.kill_and_wait(Some(KILL_WAIT)).await;
        }
        Shutdown::Timeout(t) => {
            if let Err(RactorErr::Timeout) =
                cell.stop_and_wait(Some("shutdown".into()), Some(t)).await
            {
                tracing::warn!(child = id, timeout = ?t, "child did not stop in time; killing it");
                let _ = cell.kill_and_wait(Some(KILL_WAIT)).await;
            }
        }
        Shutdown::Infinity => {
            let _ = cell.stop_and_wait(Some("shutdown".into()), None).await;
        }
    }
}

/// Stops every running child, newest first.
async fn shutdown_all(state: &mut State) {
    for slot in state.slots.iter_mut().rev() {
        slot.pending = None;
        if let Some(cell) = slot.cell.take() {
            shutdown_child(&cell, slot.spec.shutdown, &slot.spec.id).await;
        }
    }
}

impl SupervisorActor {
    /// Handles the exit of a child that this supervisor did not stop itself.
    async fn child_exited(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut State,
        id: ActorId,
        exit: ExitReason,
    ) -> Result<(), ActorProcessingErr> {
        let Some(idx) = state.slot_of(&id) else {
            // A child we stopped ourselves, or one already replaced.
            return Ok(());
        };
        state.slots[idx].cell = None;
        let child_id = state.slots[idx].spec.id.clone();
        let restart = state.slots[idx].spec.restart;
        if !should_restart(restart, &exit) {
            tracing::debug!(child = %child_id, ?exit, ?restart, "child exited; not restarted");
            if restart == Restart::Temporary || state.dynamic {
                state.slots.remove(idx);
            }
            return Ok(());
        }
        tracing::info!(child = %child_id, ?exit, "child exited; restarting");
        let now = Instant::now();
        if !state.window.record(now) {
            return Err(self.give_up(state, child_id).await);
        }
        let views: Vec<ChildView> = state
            .slots
            .iter()
            .map(|s| ChildView {
                running: s.cell.is_some() || s.pending.is_some(),
                restart: s.spec.restart,
            })
            .collect();
        let strategy = if state.dynamic {
            super::Strategy::OneForOne
        } else {
            state.spec.strategy
        };
        let plan = plan_restart(strategy, &views, idx);
        for &i in &plan.stop {
            let slot = &mut state.slots[i];
            slot.pending = None;
            if let Some(cell) = slot.cell.take() {
                shutdown_child(&cell, slot.spec.shutdown, &slot.spec.id).await;
            }
        }
        let start: Vec<String> = plan
            .start
            .iter()
            .map(|&i| state.slots[i].spec.id.clone())
            .collect();
        let mut remove = plan.remove;
        remove.sort_unstable();
        for &i in remove.iter().rev() {
            state.slots.remove(i);
        }
        let attempt = match state.index_of(&child_id) {
            Some(i) => {
                let h = &mut state.slots[i].history;
                h.record(now);
                h.recent(now) as u32
            }
            None => 1,
        };
        self.schedule_start(myself, state, start, attempt).await
    }

    /// Starts the children now, or after the backoff delay.
    async fn schedule_start(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut State,
        ids: Vec<String>,
        attempt: u32,
    ) -> Result<(), ActorProcessingErr> {
        let delay = state
            .spec
            .backoff
            .map(|b| b.delay(attempt, rand::random::<f64>()));
        match delay {
            Some(d) if !d.is_zero() => {
                let token = state.next_token;
                state.next_token += 1;
                for id in &ids {
                    if let Some(i) = state.index_of(id) {
                        state.slots[i].pending = Some(token);
                    }
                }
                tracing::debug!(children = ?ids, delay = ?d, "restart after backoff");
                myself.send_after(d, move || SupervisorMsg::RestartDue(token));
                Ok(())
            }
            _ => self.start_now(myself, state, ids).await,
        }
    }

    /// Starts the listed children in order. A child that fails to start counts as a restart and
    /// is tried again (with the rest of the list), until the intensity is exceeded.
    async fn start_now(
        &self,
        myself: &ActorRef<SupervisorMsg>,
        state: &mut State,
        ids: Vec<String>,
    ) -> Result<(), ActorProcessingErr> {
        for (n, id) in ids.iter().enumerate() {
            let Some(i) = state.index_of(id) else {
                continue;
            };
            state.slots[i].pending = None;
            if state.slots[i].cell.is_some() {
                continue;
            }
            let factory = state.slots[i].spec.factory.clone();
            match factory.start(myself.get_cell()).await {
                Ok(cell) => state.slots[i].cell = Some(cell),
                Err(e) => {
                    tracing::warn!(child = %id, error = %e, "child failed to restart");
                    let now = Instant::now();
                    if !state.window.record(now) {
                        return Err(self.give_up(state, id.clone()).await);
                    }
                    let rest = ids[n..].to_vec();
                    let attempt = {
                        let h = &mut state.slots[i].history;
                        h.record(now);
                        h.recent(now) as u32
                    };
                    return Box::pin(self.schedule_start(myself, state, rest, attempt)).await;
                }
            }
        }
        Ok(())
    }

    /// Intensity exceeded: stop every child, newest first, and fail (the parent sees it).
    async fn give_up(&self, state: &mut State, child: String) -> ActorProcessingErr {
        let intensity = state.window.intensity();
        let err = SupervisorError::MaxRestartsExceeded {
            max_restarts: intensity.max_restarts,
            period: intensity.period,
            child,
        };
        tracing::error!(error = %err, "supervisor giving up");
        shutdown_all(state).await;
        Box::new(err)
    }
}

impl Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = State;
    type Arguments = (SupervisorSpec, bool);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (mut spec, dynamic): (SupervisorSpec, bool),
    ) -> Result<Self::State, ActorProcessingErr> {
        let children = std::mem::take(&mut spec.children);
        let mut state = State {
            window: RestartWindow::new(spec.intensity),
            spec,
            dynamic,
            slots: Vec::with_capacity(children.len()),
            next_token: 0,
        };
        for child in children {
            if state.index_of(&child.id).is_some() {
                shutdown_all(&mut state).await;
                return Err(Box::new(SupervisorError::AlreadyStarted { id: child.id }));
            }
            let mut slot = state.new_slot(child);
            match slot.spec.factory.start(myself.get_cell()).await {
                Ok(cell) => {
                    slot.cell = Some(cell);
                    state.slots.push(slot);
                }
                Err(e) => {
                    let err = SupervisorError::StartFailed {
                        id: slot.spec.id.clone(),
                        reason: e.to_string(),
                    };
                    tracing::error!(error = %err, "supervisor start failed");
                    shutdown_all(&mut state).await;
                    return Err(Box::new(err));
                }
            }
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        shutdown_all(state).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::StartChild(spec, reply) => {
                if let Some(max) = state.spec.max_children {
                    if state.slots.len() >= max {
                        let _ = reply.send(Err(SupervisorError::MaxChildren(max)));
                        return Ok(());
                    }
                }
                if state.index_of(&spec.id).is_some() {
                    let _ = reply.send(Err(SupervisorError::AlreadyStarted { id: spec.id }));
                    return Ok(());
                }
                let mut slot = state.new_slot(spec);
                let result = match slot.spec.factory.start(myself.get_cell()).await {
                    Ok(cell) => {
                        slot.cell = Some(cell.clone());
                        state.slots.push(slot);
                        Ok(cell)
                    }
                    Err(e) => Err(SupervisorError::StartFailed {
                        id: slot.spec.id.clone(),
                        reason: e.to_string(),
                    }),
                };
                let _ = reply.send(result);
            }
            SupervisorMsg::TerminateChild(id, reply) => {
                let result = match state.index_of(&id) {
                    Some(i) => {
                        let slot = state.slots.remove(i);
                        if let Some(cell) = slot.cell {
                            shutdown_child(&cell, slot.spec.shutdown, &slot.spec.id).await;
                        }
                        Ok(())
                    }
                    None => Err(SupervisorError::NotFound { id }),
                };
                let _ = reply.send(result);
            }
            SupervisorMsg::WhichChildren(reply) => {
                let list = state
                    .slots
                    .iter()
                    .map(|s| ChildInfo {
                        id: s.spec.id.clone(),
                        cell: s.cell.clone(),
                        kind: s.spec.kind,
                        restart: s.spec.restart,
                    })
                    .collect();
                let _ = reply.send(list);
            }
            SupervisorMsg::CountChildren(reply) => {
                let mut c = ChildCount {
                    specs: state.slots.len(),
                    ..ChildCount::default()
                };
                for s in &state.slots {
                    if s.cell.is_some() {
                        c.active += 1;
                    }
                    match s.spec.kind {
                        ChildKind::Supervisor => c.supervisors += 1,
                        ChildKind::Worker => c.workers += 1,
                    }
                }
                let _ = reply.send(c);
            }
            SupervisorMsg::RestartDue(token) => {
                let ids: Vec<String> = state
                    .slots
                    .iter()
                    .filter(|s| s.pending == Some(token))
                    .map(|s| s.spec.id.clone())
                    .collect();
                self.start_now(&myself, state, ids).await?;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                self.child_exited(
                    &myself,
                    state,
                    cell.get_id(),
                    ExitReason::from_terminated(reason),
                )
                .await
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                self.child_exited(
                    &myself,
                    state,
                    cell.get_id(),
                    ExitReason::Failed(err.to_string()),
                )
                .await
            }
            _ => Ok(()),
        }
    }
}
