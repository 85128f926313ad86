//! A test kit that drives real node processes.
//!
//! A test starts N node processes of a test binary (see `cluster-testnode` in this crate, or a
//! binary of your own that calls [`serve`]) on 127.0.0.1 with ports the OS picks. Each process
//! speaks a line-based JSON control protocol on its stdin and stdout: the parent reads its
//! membership, blocks and unblocks peers (partitions), calls custom commands, and receives every
//! membership event with a wall-clock timestamp. The parent also kills (SIGKILL), freezes and
//! thaws (SIGSTOP/SIGCONT) and restarts processes. Every wait has a deadline; every child
//! process is killed when its [`TestNode`] is dropped (also during a panic), and a node process
//! exits by itself when its stdin closes (the parent is gone).

pub mod flood;
pub mod redis;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

use actor_cluster::Node;
use actor_cluster::{MemberEvent, MemberInfo, MemberState, NodeIdentity};

/// A request from the parent to a node process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Correlates the reply.
    pub id: u64,
    /// What to do.
    pub cmd: Control,
}

/// Commands of the control protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Control {
    /// Reply with the member list.
    Members,
    /// Block traffic with these peers.
    Block {
        /// Peer node names.
        peers: Vec<String>,
    },
    /// Unblock these peers.
    Unblock {
        /// Peer node names.
        peers: Vec<String>,
    },
    /// Unblock every peer.
    UnblockAll,
    /// Leave the cluster gracefully, then exit.
    Leave,
    /// A command of the test binary's own [`ControlExtension`].
    Custom {
        /// Command name.
        name: String,
        /// Arguments.
        args: Value,
    },
}

/// What a node process writes on its stdout, one JSON object per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// The node has started.
    Ready {
        /// Its identity.
        identity: NodeIdentity,
    },
    /// A membership event, with the wall-clock time it was seen.
    Event {
        /// Nanoseconds since the Unix epoch.
        at_unix_ns: u64,
        /// The event.
        event: MemberEvent,
    },
    /// The answer to a request.
    Reply {
        /// The request's id.
        id: u64,
        /// The result value.
        ok: Option<Value>,
        /// The error text.
        err: Option<String>,
    },
}

/// Wall-clock nanoseconds since the Unix epoch (comparable across processes of one machine).
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Logging for a node process: to stderr (stdout carries the control protocol), filtered by
/// `RUST_LOG`, or by `default_filter` when it is unset.
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Custom commands a test binary adds to the control protocol.
pub trait ControlExtension: Send + Sync + 'static {
    /// Handles the custom command `name`.
    fn handle(
        &self,
        node: &Node,
        name: &str,
        args: Value,
    ) -> BoxFuture<'static, Result<Value, String>>;
}

/// Node side: serves the control protocol on stdin/stdout until stdin closes or a `leave`
/// command has been carried out.
pub async fn serve(node: Node, ext: Option<Arc<dyn ControlExtension>>) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Output>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(o) = out_rx.recv().await {
            let Ok(mut line) = serde_json::to_vec(&o) else {
                continue;
            };
            line.push(b'\n');
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
        }
    });
    let _ = out_tx.send(Output::Ready {
        identity: node.identity().clone(),
    });
    let mut events = node.subscribe();
    let ev_tx = out_tx.clone();
    let forward = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let _ = ev_tx.send(Output::Event {
                        at_unix_ns: unix_ns(),
                        event,
                    });
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "control protocol missed membership events");
                }
                Err(_) => return,
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "bad control request");
                continue;
            }
        };
        if matches!(req.cmd, Control::Leave) {
            let _ = node.clone().leave().await;
            let _ = out_tx.send(Output::Reply {
                id: req.id,
                ok: Some(Value::Null),
                err: None,
            });
            break;
        }
        let node = node.clone();
        let tx = out_tx.clone();
        let ext = ext.clone();
        tokio::spawn(async move {
            let result = handle(&node, ext.as_deref(), req.cmd).await;
            let (ok, err) = match result {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e)),
            };
            let _ = tx.send(Output::Reply {
                id: req.id,
                ok,
                err,
            });
        });
    }
    forward.abort();
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

async fn handle(
    node: &Node,
    ext: Option<&dyn ControlExtension>,
    cmd: Control,
) -> Result<Value, String> {
    match cmd {
        Control::Members => {
            let m = node.members().await.map_err(|e| e.to_string())?;
            serde_json::to_value(m).map_err(|e| e.to_string())
        }
        Control::Block { peers } => {
            node.faults().block(peers);
            Ok(Value::Null)
        }
        Control::Unblock { peers } => {
            node.faults().unblock(peers);
            Ok(Value::Null)
        }
        Control::UnblockAll => {
            node.faults().unblock_all();
            Ok(Value::Null)
        }
        Control::Leave => Ok(Value::Null),
        Control::Custom { name, args } => match ext {
            Some(ext) => ext.handle(node, &name, args).await,
            None => Err(format!("unknown command {name:?}")),
        },
    }
}

/// Errors of the test kit.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The process could not be started or signalled.
    #[error("process: {0}")]
    Process(String),
    /// The node did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The node answered with an error.
    #[error("node error: {0}")]
    Node(String),
    /// The node's output did not parse.
    #[error("protocol: {0}")]
    Protocol(String),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// A node process driven by a test.
pub struct TestNode {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    listen: String,
    child: Option<Child>,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    identity: Option<NodeIdentity>,
    pending: Pending,
    events: Arc<Mutex<Vec<(u64, MemberEvent)>>>,
    next_id: AtomicU64,
    log: PathBuf,
}

impl std::fmt::Debug for TestNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNode")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// How long a node process may take to report that it started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a control request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl TestNode {
    /// Starts `program --name NAME --listen 127.0.0.1:0 ARGS...` and waits until it reports
    /// ready. Its stderr goes to a log file in the system's temporary directory.
    pub async fn start(
        program: impl Into<PathBuf>,
        name: &str,
        args: &[String],
    ) -> Result<Self, TestkitError> {
        Self::start_at(program, name, "127.0.0.1:0", args).await
    }

    /// Like [`TestNode::start`], listening on `listen` (e.g. another loopback address).
    pub async fn start_at(
        program: impl Into<PathBuf>,
        name: &str,
        listen: &str,
        args: &[String],
    ) -> Result<Self, TestkitError> {
        let mut node = Self {
            name: name.to_owned(),
            program: program.into(),
            args: args.to_vec(),
            listen: listen.to_owned(),
            child: None,
            stdin: tokio::sync::Mutex::new(None),
            identity: None,
            pending: Arc::new(Mutex::new(HashMap::new())),
            events: Arc::new(Mutex::new(Vec::new())),
            next_id: AtomicU64::new(1),
            log: PathBuf::new(),
        };
        node.spawn().await?;
        Ok(node)
    }

    async fn spawn(&mut self) -> Result<(), TestkitError> {
        let dir = std::env::temp_dir().join("actor-testkit");
        std::fs::create_dir_all(&dir).map_err(|e| TestkitError::Process(e.to_string()))?;
        let log = dir.join(format!(
            "{}-{}-{}.log",
            self.name,
            std::process::id(),
            unix_ns()
        ));
        let log_file =
            std::fs::File::create(&log).map_err(|e| TestkitError::Process(e.to_string()))?;
        let mut child = Command::new(&self.program)
            .arg("--name")
            .arg(&self.name)
            .arg("--listen")
            .arg(&self.listen)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::Process(format!("{}: {e}", self.program.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| TestkitError::Process("no stdout".into()))?;
        *self.stdin.get_mut() = child.stdin.take();
        self.child = Some(child);
        self.log = log;
        let (ready_tx, ready_rx) = oneshot::channel();
        let pending = self.pending.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Output>(&line) {
                    Ok(Output::Ready { identity }) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(identity);
                        }
                    }
                    Ok(Output::Event { at_unix_ns, event }) => {
                        events.lock().push((at_unix_ns, event));
                    }
                    Ok(Output::Reply { id, ok, err }) => {
                        if let Some(tx) = pending.lock().remove(&id) {
                            let _ = tx.send(match (ok, err) {
                                (_, Some(e)) => Err(e),
                                (Some(v), None) => Ok(v),
                                (None, None) => Ok(Value::Null),
                            });
                        }
                    }
                    Err(_) => {}
                }
            }
        });
        let identity = tokio::time::timeout(START_TIMEOUT, ready_rx)
            .await
            .map_err(|_| {
                TestkitError::Timeout(format!(
                    "{} did not start; log: {}",
                    self.name,
                    self.log.display()
                ))
            })?
            .map_err(|_| {
                TestkitError::Process(format!(
                    "{} exited at start; log: {}",
                    self.name,
                    self.log.display()
                ))
            })?;
        self.listen = identity.addr.to_string();
        self.identity = Some(identity);
        Ok(())
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's identity as it reported it at its (latest) start.
    pub fn identity(&self) -> Option<&NodeIdentity> {
        self.identity.as_ref()
    }

    /// `host:port` other nodes dial.
    pub fn addr(&self) -> String {
        self.listen.clone()
    }

    /// The process id of the running node process (`None` once it was killed or exited).
    pub fn process_id(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The path of this node's log file.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// Membership events seen so far, with their wall-clock time (ns since the Unix epoch).
    pub fn events(&self) -> Vec<(u64, MemberEvent)> {
        self.events.lock().clone()
    }

    /// Sends a request and waits (bounded) for its reply.
    pub async fn request(&self, cmd: Control) -> Result<Value, TestkitError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let mut line = serde_json::to_vec(&Request { id, cmd })
            .map_err(|e| TestkitError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let mut guard = self.stdin.lock().await;
        let stdin = guard
            .as_mut()
            .ok_or_else(|| TestkitError::Process(format!("{} is not running", self.name)))?;
        stdin
            .write_all(&line)
            .await
            .map_err(|e| TestkitError::Process(e.to_string()))?;
        stdin
            .flush()
            .await
            .map_err(|e| TestkitError::Process(e.to_string()))?;
        drop(guard);
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(TestkitError::Node(e)),
            Ok(Err(_)) => Err(TestkitError::Process(format!(
                "{} stopped answering",
                self.name
            ))),
            Err(_) => {
                self.pending.lock().remove(&id);
                Err(TestkitError::Timeout(format!(
                    "{} did not answer",
                    self.name
                )))
            }
        }
    }

    /// The node's member list.
    pub async fn members(&self) -> Result<Vec<MemberInfo>, TestkitError> {
        let v = self.request(Control::Members).await?;
        serde_json::from_value(v).map_err(|e| TestkitError::Protocol(e.to_string()))
    }

    /// Names of the members this node sees up (or suspect, still connected).
    pub async fn up_members(&self) -> Result<BTreeSet<String>, TestkitError> {
        Ok(self
            .members()
            .await?
            .into_iter()
            .filter(|m| matches!(m.state, MemberState::Up | MemberState::Suspect))
            .map(|m| m.node.name)
            .collect())
    }

    /// Blocks traffic with these peers (on this node's side).
    pub async fn block(&self, peers: &[&str]) -> Result<(), TestkitError> {
        let peers = peers.iter().map(|s| s.to_string()).collect();
        self.request(Control::Block { peers }).await.map(|_| ())
    }

    /// Unblocks every peer.
    pub async fn unblock_all(&self) -> Result<(), TestkitError> {
        self.request(Control::UnblockAll).await.map(|_| ())
    }

    /// Calls a custom command of the test binary.
    pub async fn custom(&self, name: &str, args: Value) -> Result<Value, TestkitError> {
        self.request(Control::Custom {
            name: name.into(),
            args,
        })
        .await
    }

    fn pid(&self) -> Result<nix::unistd::Pid, TestkitError> {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .ok_or_else(|| TestkitError::Process(format!("{} is not running", self.name)))?;
        let pid = i32::try_from(pid).map_err(|e| TestkitError::Process(e.to_string()))?;
        Ok(nix::unistd::Pid::from_raw(pid))
    }

    fn signal(&self, sig: nix::sys::signal::Signal) -> Result<(), TestkitError> {
        nix::sys::signal::kill(self.pid()?, sig).map_err(|e| TestkitError::Process(e.to_string()))
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) -> Result<(), TestkitError> {
        *self.stdin.get_mut() = None;
        if let Some(mut child) = self.child.take() {
            child
                .kill()
                .await
                .map_err(|e| TestkitError::Process(e.to_string()))?;
        }
        Ok(())
    }

    /// SIGSTOP: the process freezes (its sockets stay open).
    pub fn freeze(&self) -> Result<(), TestkitError> {
        self.signal(nix::sys::signal::Signal::SIGSTOP)
    }

    /// SIGCONT: the process runs again.
    pub fn thaw(&self) -> Result<(), TestkitError> {
        self.signal(nix::sys::signal::Signal::SIGCONT)
    }

    /// Kills the process if it runs, then starts it again with the same name, arguments and
    /// listen address (a new incarnation).
    pub async fn restart(&mut self) -> Result<(), TestkitError> {
        self.kill().await?;
        self.spawn().await
    }

    /// Asks the node to leave gracefully and waits (bounded) for the process to exit.
    pub async fn leave(&mut self) -> Result<(), TestkitError> {
        self.request(Control::Leave).await?;
        *self.stdin.get_mut() = None;
        if let Some(mut child) = self.child.take() {
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill().await;
                    return Err(TestkitError::Timeout(format!("{} did not exit", self.name)));
                }
            }
        }
        Ok(())
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // A frozen process dies of SIGKILL too.
            let _ = child.start_kill();
        }
    }
}

/// Polls `cond` until it returns `Ok(true)` or `timeout` passes.
pub async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    mut cond: F,
) -> Result<Duration, TestkitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, TestkitError>>,
{
    let began = Instant::now();
    loop {
        match cond().await {
            Ok(true) => return Ok(began.elapsed()),
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "condition check failed; retrying"),
        }
        if began.elapsed() > timeout {
            return Err(TestkitError::Timeout(format!("{what} (after {timeout:?})")));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
