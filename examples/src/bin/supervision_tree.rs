//! A supervision tree that restarts crashed children and prints what happens.
//!
//! ```text
//! root (one_for_one)
//! ├── cache            worker, permanent
//! ├── sessions         supervisor (one_for_all)
//! │   ├── store        worker
//! │   └── notifier     worker
//! └── jobs             dynamic supervisor (max 3 children)
//! ```
//!
//! Run: `cargo run -p examples --bin supervision_tree`
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core::ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use actor_core::supervisor::{
    ChildSpec, DynamicSupervisor, DynamicSupervisorRef, Restart, Strategy, Supervisor,
    SupervisorError, SupervisorMsg, SupervisorSpec,
};
use actor_core::LocalMessage;

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn say(text: &str) {
    let t = EPOCH.get_or_init(Instant::now).elapsed();
    println!("[{:>8.3} ms] {text}", t.as_secs_f64() * 1e3);
}

/// A worker that counts its incarnations and crashes on request.
#[derive(Clone)]
struct Worker {
    name: &'static str,
    incarnations: Arc<AtomicU32>,
}

#[derive(LocalMessage)]
enum WorkerMsg {
    Crash,
    Hello(RpcReplyPort<String>),
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = u32;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<WorkerMsg>, _: ()) -> Result<u32, ActorProcessingErr> {
        let n = self.incarnations.fetch_add(1, Ordering::SeqCst) + 1;
        say(&format!("  {} started (incarnation {n})", self.name));
        Ok(n)
    }

    async fn post_stop(
        &self,
        _: ActorRef<WorkerMsg>,
        n: &mut u32,
    ) -> Result<(), ActorProcessingErr> {
        say(&format!("  {} stopped (incarnation {n})", self.name));
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        n: &mut u32,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Crash => Err(format!("{} crashed", self.name).into()),
            WorkerMsg::Hello(reply) => {
                let _ = reply.send(format!("{} (incarnation {n}) says hello", self.name));
                Ok(())
            }
        }
    }
}

fn worker(name: &'static str) -> ChildSpec {
    let w = Worker {
        name,
        incarnations: Arc::new(AtomicU32::new(0)),
    };
    ChildSpec::actor(name, Some(name.to_string()), w, ())
}

async fn hello(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    // Wait (bounded) for the name to be registered again after a restart.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(r) = ActorRef::<WorkerMsg>::where_is(name) {
            if let Ok(text) = actor_core::ractor::call_t!(r, WorkerMsg::Hello, 1000) {
                return Ok(text);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{name} did not come back").into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn crash(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let r = ActorRef::<WorkerMsg>::where_is(name).ok_or("no such worker")?;
    r.cast(WorkerMsg::Crash)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    EPOCH.get_or_init(Instant::now);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "actor_core=info".into()),
        )
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .compact()
        .init();
    say("starting the tree: root(one_for_one) -> cache, sessions(one_for_all: store, notifier), jobs(dynamic)");
    let sessions = SupervisorSpec::new(Strategy::OneForAll)
        .child(worker("store"))
        .child(worker("notifier"));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("cache"))
        .child(ChildSpec::supervisor("sessions", None, sessions))
        .child(DynamicSupervisor::child_spec(
            "jobs",
            Some("jobs".into()),
            SupervisorSpec::default().max_children(3),
        ));
    let (root, _handle) = Supervisor::spawn(Some("root".into()), spec).await?;

    say("1. cache crashes: one_for_one restarts only cache");
    crash("cache")?;
    say(&format!("  -> {}", hello("cache").await?));

    say("2. store crashes: its one_for_all supervisor restarts store AND notifier, in order");
    crash("store")?;
    say(&format!("  -> {}", hello("store").await?));
    say(&format!("  -> {}", hello("notifier").await?));

    say("3. jobs: start children at run time, up to max_children = 3");
    let jobs = DynamicSupervisorRef(
        ActorRef::<SupervisorMsg>::where_is("jobs").ok_or("jobs supervisor missing")?,
    );
    for name in ["job-1", "job-2", "job-3"] {
        jobs.start_child(worker(name).restart(Restart::Transient))
            .await?;
    }
    match jobs.start_child(worker("job-4")).await {
        Err(SupervisorError::MaxChildren(n)) => {
            say(&format!("  job-4 refused: at max_children ({n})"))
        }
        other => say(&format!("  unexpected: {other:?}")),
    }
    crash("job-2")?;
    say(&format!("  -> {}", hello("job-2").await?));
    jobs.terminate_child("job-1").await?;
    let count = jobs.count_children().await?;
    say(&format!(
        "  jobs now runs {} of {} children",
        count.active, count.specs
    ));

    say("4. notifier crash-loops: more than 3 restarts in 5 s and sessions gives up, stops its children and fails; root (one_for_one) restarts the sessions subtree");
    let sessions_id = |children: &[actor_core::supervisor::ChildInfo]| {
        children
            .iter()
            .find(|c| c.id == "sessions")
            .and_then(|c| c.cell.as_ref().map(|c| c.get_id().to_string()))
    };
    let before = sessions_id(&root.which_children().await?);
    let mut crashes = 0;
    loop {
        crash("notifier")?;
        crashes += 1;
        hello("notifier").await?;
        let now = sessions_id(&root.which_children().await?);
        if now.is_some() && now != before {
            say(&format!("  sessions supervisor escalated after {crashes} notifier crashes; root restarted it (actor {} -> {})", before.as_deref().unwrap_or("?"), now.as_deref().unwrap_or("?")));
            break;
        }
        if crashes > 10 {
            return Err("sessions never escalated".into());
        }
    }
    say(&format!("  -> {}", hello("store").await?));

    let children = root.which_children().await?;
    let names: Vec<String> = children
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c.id,
                if c.cell.is_some() {
                    "running"
                } else {
                    "stopped"
                }
            )
        })
        .collect();
    say(&format!("root children: {}", names.join(", ")));

    say("5. shutdown: children stop in reverse start order");
    root.shutdown(Some(Duration::from_secs(10))).await?;
    say("done");
    Ok(())
}
