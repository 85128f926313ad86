//! `Tally`, the typed entity of the test node: it counts the calls it handles, in memory and in
//! a file per id (one line per start and per call handled, which survives its node being
//! killed), hands its count over on a planned move, and fails its handler on request.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use actor_cluster::supervisor::{Entity, EntityContext};
use actor_core::ractor::{ActorProcessingErr, RpcReplyPort};
use actor_core::RemoteMessage;
use serde::{Deserialize, Serialize};

/// What the tally entities of one node share.
#[derive(Debug, Clone)]
pub struct TallyContext {
    /// This node's name.
    pub node: String,
    /// Where each tally appends its lines (`<dir>/<id>.log`), if anywhere.
    pub dir: Option<PathBuf>,
}

/// A tally's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TallyArgs {
    /// Any label (start-or-get compares it).
    pub label: String,
    /// Every this many ms the tally writes a `tick <ns since the Unix epoch>` line (0: never):
    /// a test reads from them when and where it did work.
    #[serde(default)]
    pub tick_ms: u64,
}

/// What a tally reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TallyInfo {
    /// Calls counted (carried across planned moves).
    pub count: u64,
    /// This incarnation began from a handed-off state.
    pub handed_off: bool,
    /// The node it runs on.
    pub node: String,
    /// Its label.
    pub label: String,
}

/// The messages of a tally.
#[derive(RemoteMessage)]
pub enum TallyMsg {
    /// Count this call: write a line, wait `hold_ms` (a test kills the node meanwhile), reply
    /// the count.
    Count(u64, RpcReplyPort<u64>),
    /// A bad request: the handler fails.
    Bad(RpcReplyPort<u64>),
    /// Its state.
    Info(RpcReplyPort<TallyInfo>),
    /// Write a tick line (sent by itself every `tick_ms`).
    Tick,
}

/// The test node's typed entity.
#[derive(Debug)]
pub struct Tally {
    count: u64,
    handed_off: bool,
    label: String,
}

fn append(ctx: &EntityContext<Tally>, line: &str) -> Result<(), ActorProcessingErr> {
    let Some(dir) = &ctx.context().dir else {
        return Ok(());
    };
    let path = dir.join(format!("{}.log", ctx.id()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{line} {}", ctx.context().node)?;
    f.sync_data()?;
    Ok(())
}

impl Entity for Tally {
    const KIND: &'static str = "tally";
    type Args = TallyArgs;
    type Msg = TallyMsg;
    type Handoff = u64;
    type Context = TallyContext;

    async fn start(
        ctx: &EntityContext<Self>,
        args: TallyArgs,
        handoff: Option<u64>,
    ) -> Result<Self, ActorProcessingErr> {
        append(ctx, "start")?;
        if args.tick_ms > 0 {
            ctx.send_interval(Duration::from_millis(args.tick_ms), || TallyMsg::Tick);
        }
        Ok(Self {
            count: handoff.unwrap_or(0),
            handed_off: handoff.is_some(),
            label: args.label,
        })
    }

    async fn handle(
        &mut self,
        ctx: &EntityContext<Self>,
        msg: TallyMsg,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TallyMsg::Count(hold_ms, reply) => {
                append(ctx, "call")?;
                self.count += 1;
                tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                let _ = reply.send(self.count);
            }
            TallyMsg::Bad(_reply) => return Err("a bad request: the tally refuses it".into()),
            TallyMsg::Tick => append(ctx, &format!("tick {}", actor_testkit::unix_ns()))?,
            TallyMsg::Info(reply) => {
                let _ = reply.send(TallyInfo {
                    count: self.count,
                    handed_off: self.handed_off,
                    node: ctx.context().node.clone(),
                    label: self.label.clone(),
                });
            }
        }
        Ok(())
    }

    async fn handoff(&mut self) -> Option<u64> {
        Some(self.count)
    }

    /// Ids under `auto:` start on their first message.
    fn autostart(id: &str) -> Option<TallyArgs> {
        id.strip_prefix("auto:").map(|_| TallyArgs {
            label: "auto".into(),
            tick_ms: 0,
        })
    }
}

/// Entity commands of the test node (`ClusterCmd::Ent`). Each call replies
/// `{"ok": <answer or null>, "err": <error text or null>, "micros": <how long the call took>}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "ent", rename_all = "snake_case")]
pub enum EntCmd {
    /// Start-or-get of a tally; `ok` is `"created"`, `"already_started"` or `"args_differ"`
    /// and the node.
    Start {
        /// Its id.
        id: String,
        /// Its label.
        label: String,
        /// `TallyArgs::tick_ms`.
        #[serde(default)]
        tick_ms: u64,
    },
    /// `TallyMsg::Count`.
    Count {
        /// Its id.
        id: String,
        /// How long the handler waits before replying.
        hold_ms: u64,
        /// The call's timeout.
        timeout_ms: u64,
    },
    /// `TallyMsg::Bad`.
    Bad {
        /// Its id.
        id: String,
    },
    /// `TallyMsg::Info`.
    Info {
        /// Its id.
        id: String,
    },
}

fn timed<T: Serialize>(
    began: std::time::Instant,
    r: Result<T, actor_cluster::DistSupervisorError>,
) -> serde_json::Value {
    let micros = began.elapsed().as_micros() as u64;
    match r {
        Ok(v) => serde_json::json!({"ok": v, "err": null, "micros": micros}),
        Err(e) => serde_json::json!({"ok": null, "err": e.to_string(), "micros": micros}),
    }
}

/// Carries out an entity command.
pub(crate) async fn run(
    dsup: &actor_cluster::DistributedSupervisor,
    cmd: EntCmd,
) -> serde_json::Value {
    use actor_cluster::supervisor::PutOutcome;
    let began = std::time::Instant::now();
    let t = Duration::from_secs(5);
    match cmd {
        EntCmd::Start { id, label, tick_ms } => {
            let r = dsup
                .start_entity::<Tally>(&id, &TallyArgs { label, tick_ms }, t)
                .await
                .map(|s| {
                    let outcome = match s.outcome {
                        PutOutcome::Created => "created",
                        PutOutcome::AlreadyStarted { args_differ: false } => "already_started",
                        PutOutcome::AlreadyStarted { args_differ: true } => "args_differ",
                    };
                    (outcome, s.node)
                });
            timed(began, r)
        }
        EntCmd::Count {
            id,
            hold_ms,
            timeout_ms,
        } => {
            let r = dsup
                .entity::<Tally>(id)
                .call(
                    |r| TallyMsg::Count(hold_ms, r),
                    Duration::from_millis(timeout_ms),
                )
                .await;
            timed(began, r)
        }
        EntCmd::Bad { id } => {
            let r = dsup.entity::<Tally>(id).call(TallyMsg::Bad, t).await;
            timed(began, r)
        }
        EntCmd::Info { id } => {
            let r = dsup.entity::<Tally>(id).call(TallyMsg::Info, t).await;
            timed(began, r)
        }
    }
}
