//! The sans-IO core of supervision: restart decisions, restart intensity and backoff.
//!
//! Nothing here touches an actor, a clock or a random number generator of its own: the
//! supervisor actor passes in the current instant and a random sample, and carries out the
//! returned plan. That keeps every rule testable deterministically.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Which siblings restart when a child is restarted (OTP's restart strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the child that exited is restarted.
    #[default]
    OneForOne,
    /// Every other child is stopped (in reverse start order), then all are started again in order.
    OneForAll,
    /// The children started after the one that exited are stopped (in reverse order), then it and
    /// they are started again in order.
    RestForOne,
}

/// When a child is restarted (OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always restarted, whatever the exit reason.
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit (a failure or a kill), never after a normal stop.
    Transient,
    /// Never restarted; removed from the supervisor when it exits.
    Temporary,
}

/// Why a child exited, as its supervisor classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The child stopped itself or was stopped (`stop`), with an optional reason. Normal exit.
    Normal(Option<String>),
    /// The child was killed (`kill`, or its task was cancelled). Abnormal exit.
    Killed,
    /// The child failed: its handler returned an error or panicked. Abnormal exit.
    Failed(String),
}

impl ExitReason {
    /// Classifies a ractor termination reason (`ActorTerminated`'s reason string).
    pub fn from_terminated(reason: Option<String>) -> Self {
        match reason.as_deref() {
            Some("killed") | Some("actor_task_cancelled") => Self::Killed,
            _ => Self::Normal(reason),
        }
    }

    /// Whether the exit counts as abnormal (OTP: anything but `normal` or `shutdown`).
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, Self::Normal(_))
    }
}

/// Whether a child of this restart type is restarted after this exit.
pub fn should_restart(restart: Restart, exit: &ExitReason) -> bool {
    match restart {
        Restart::Permanent => true,
        Restart::Transient => exit.is_abnormal(),
        Restart::Temporary => false,
    }
}

/// Restart intensity: more than `max_restarts` restarts within `period` makes the supervisor give
/// up, stop its children and fail (escalating to its own supervisor). OTP's default is 3 in 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts allowed within `period`.
    pub max_restarts: u32,
    /// The sliding window.
    pub period: Duration,
}

impl Default for Intensity {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            period: Duration::from_secs(5),
        }
    }
}

/// A sliding window of restart instants, checked against an [`Intensity`].
#[derive(Debug, Clone)]
pub struct RestartWindow {
    intensity: Intensity,
    stamps: VecDeque<Instant>,
}

impl RestartWindow {
    /// An empty window.
    pub fn new(intensity: Intensity) -> Self {
        Self {
            intensity,
            stamps: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(first) = self.stamps.front() {
            if now.saturating_duration_since(*first) >= self.intensity.period {
                self.stamps.pop_front();
            } else {
                break;
            }
        }
    }

    /// Records a restart at `now`. Returns `false` when this restart exceeds the intensity
    /// (the supervisor must give up instead of restarting).
    pub fn record(&mut self, now: Instant) -> bool {
        self.expire(now);
        self.stamps.push_back(now);
        self.stamps.len() <= self.intensity.max_restarts as usize
    }

    /// Restarts recorded within the period before `now`.
    pub fn recent(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.stamps.len()
    }

    /// The intensity checked.
    pub fn intensity(&self) -> Intensity {
        self.intensity
    }
}

/// Exponential backoff with jitter between restarts of the same child.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first restart within a restart period.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// Jitter as a fraction of the delay, in `[0, 1]`: the delay is scaled by a factor drawn
    /// uniformly from `[1 - jitter, 1 + jitter]` (and capped at `max`).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(5),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before restart number `attempt` (1-based: the first restart in the window is
    /// attempt 1 and waits about `initial`, each further one doubles). `unit_random` is a sample
    /// from `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit_random: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << exp).min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let r = if unit_random.is_finite() {
            unit_random.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let factor = 1.0 - jitter + 2.0 * jitter * r;
        base.mul_f64(factor).min(self.max)
    }
}

/// What the supervisor does after a child exits and is to be restarted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestartPlan {
    /// Running siblings to stop, in this order (reverse start order).
    pub stop: Vec<usize>,
    /// Children to start, in this order (start order).
    pub start: Vec<usize>,
    /// Temporary siblings stopped by the plan: they are removed, not restarted.
    pub remove: Vec<usize>,
}

/// A child as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildView {
    /// Whether the child is running now.
    pub running: bool,
    /// Its restart type.
    pub restart: Restart,
}

/// Plans the restart of child `exited` (which has already exited and is to be restarted) among
/// `children` (in start order) under `strategy`.
pub fn plan_restart(strategy: Strategy, children: &[ChildView], exited: usize) -> RestartPlan {
    let affected: Vec<usize> = match strategy {
        Strategy::OneForOne => Vec::new(),
        Strategy::OneForAll => (0..children.len()).filter(|&i| i != exited).collect(),
        Strategy::RestForOne => (exited + 1..children.len()).collect(),
    };
    let mut plan = RestartPlan::default();
    for &i in affected.iter().rev() {
        if children[i].running {
            plan.stop.push(i);
        }
    }
    let mut start: Vec<usize> = affected
        .into_iter()
        .filter(|&i| children[i].running)
        .collect();
    start.push(exited);
    start.sort_unstable();
    for i in start {
        if i != exited && children[i].restart == Restart::Temporary {
            plan.remove.push(i);
        } else {
            plan.start.push(i);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(restart: Restart) -> ChildView {
        ChildView {
            running: true,
            restart,
        }
    }

    #[test]
    fn restart_types() {
        let normal = ExitReason::Normal(None);
        let failed = ExitReason::Failed("x".into());
        assert!(should_restart(Restart::Permanent, &normal));
        assert!(should_restart(Restart::Permanent, &failed));
        assert!(!should_restart(Restart::Transient, &normal));
        assert!(should_restart(Restart::Transient, &failed));
        assert!(should_restart(Restart::Transient, &ExitReason::Killed));
        assert!(!should_restart(Restart::Temporary, &failed));
        assert_eq!(
            ExitReason::from_terminated(Some("killed".into())),
            ExitReason::Killed
        );
        assert_eq!(
            ExitReason::from_terminated(Some("done".into())),
            ExitReason::Normal(Some("done".into()))
        );
    }

    #[test]
    fn one_for_one_touches_nobody_else() {
        let kids = [up(Restart::Permanent); 3];
        let p = plan_restart(Strategy::OneForOne, &kids, 1);
        assert_eq!(p.stop, Vec::<usize>::new());
        assert_eq!(p.start, vec![1]);
    }

    #[test]
    fn one_for_all_stops_in_reverse_and_starts_in_order() {
        let mut kids = [up(Restart::Permanent); 4];
        kids[1].running = false; // the exited one
        kids[3].restart = Restart::Temporary;
        let p = plan_restart(Strategy::OneForAll, &kids, 1);
        assert_eq!(p.stop, vec![3, 2, 0]);
        assert_eq!(p.start, vec![0, 1, 2]);
        assert_eq!(p.remove, vec![3]);
    }

    #[test]
    fn rest_for_one_affects_only_later_children() {
        let mut kids = [up(Restart::Permanent); 4];
        kids[1].running = false;
        let p = plan_restart(Strategy::RestForOne, &kids, 1);
        assert_eq!(p.stop, vec![3, 2]);
        assert_eq!(p.start, vec![1, 2, 3]);
        let p = plan_restart(Strategy::RestForOne, &kids, 3);
        assert!(p.stop.is_empty());
        assert_eq!(p.start, vec![3]);
    }

    #[test]
    fn stopped_siblings_stay_stopped() {
        let mut kids = [up(Restart::Transient); 3];
        kids[0].running = false; // exited normally earlier
        kids[2].running = false; // the exited one
        let p = plan_restart(Strategy::OneForAll, &kids, 2);
        assert_eq!(p.stop, vec![1]);
        assert_eq!(p.start, vec![1, 2]);
    }

    #[test]
    fn intensity_window_slides() {
        let t0 = Instant::now();
        let mut w = RestartWindow::new(Intensity {
            max_restarts: 3,
            period: Duration::from_secs(5),
        });
        assert!(w.record(t0));
        assert!(w.record(t0 + Duration::from_secs(1)));
        assert!(w.record(t0 + Duration::from_secs(2)));
        // The 4th restart within 5 s exceeds 3.
        assert!(!w.clone().record(t0 + Duration::from_secs(3)));
        // At t0+5 s the first stamp has left the window.
        assert!(w.record(t0 + Duration::from_secs(5)));
        assert_eq!(w.recent(t0 + Duration::from_secs(5)), 3);
        assert_eq!(w.recent(t0 + Duration::from_secs(20)), 0);
    }

    #[test]
    fn zero_restarts_allowed_gives_up_at_once() {
        let mut w = RestartWindow::new(Intensity {
            max_restarts: 0,
            period: Duration::from_secs(1),
        });
        assert!(!w.record(Instant::now()));
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.5,
        };
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(100));
        assert_eq!(b.delay(2, 0.5), Duration::from_millis(200));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(400));
        assert_eq!(b.delay(10, 0.5), Duration::from_secs(1));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(150));
        assert_eq!(b.delay(u32::MAX, f64::NAN), Duration::from_secs(1));
    }
}
