//! Node processes: start, command, kill -9, freeze, thaw, restart, leave.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

use actor_cluster::{MemberEvent, MemberInfo, MemberState, NodeIdentity};

use crate::protocol::{Control, Output, Request};
use crate::{unix_ns, LaunchError};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// A node process started and driven by this process (a test, the demo, a bench).
pub struct NodeProcess {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    listen: String,
    child: Option<Child>,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    identity: Option<NodeIdentity>,
    pending: Pending,
    events: Arc<Mutex<Vec<(u64, MemberEvent)>>>,
    /// Woken on every new event.
    events_changed: Arc<tokio::sync::Notify>,
    next_id: AtomicU64,
    log: PathBuf,
}

impl std::fmt::Debug for NodeProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeProcess")
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

impl NodeProcess {
    /// Starts `program --name NAME --listen 127.0.0.1:0 ARGS...` and waits until it reports
    /// ready. Its stderr goes to a log file in the system's temporary directory.
    pub async fn start(
        program: impl Into<PathBuf>,
        name: &str,
        args: &[String],
    ) -> Result<Self, LaunchError> {
        Self::start_at(program, name, "127.0.0.1:0", args).await
    }

    /// Like [`NodeProcess::start`], listening on `listen` (e.g. another loopback address).
    pub async fn start_at(
        program: impl Into<PathBuf>,
        name: &str,
        listen: &str,
        args: &[String],
    ) -> Result<Self, LaunchError> {
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
            events_changed: Arc::new(tokio::sync::Notify::new()),
            next_id: AtomicU64::new(1),
            log: PathBuf::new(),
        };
        node.spawn().await?;
        Ok(node)
    }

    async fn spawn(&mut self) -> Result<(), LaunchError> {
        let dir = std::env::temp_dir().join("actor-cluster-launch");
        std::fs::create_dir_all(&dir).map_err(|e| LaunchError::Process(e.to_string()))?;
        let log = dir.join(format!(
            "{}-{}-{}.log",
            self.name,
            std::process::id(),
            unix_ns()
        ));
        let log_file =
            std::fs::File::create(&log).map_err(|e| LaunchError::Process(e.to_string()))?;
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
            .map_err(|e| LaunchError::Process(format!("{}: {e}", self.program.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LaunchError::Process("no stdout".into()))?;
        *self.stdin.get_mut() = child.stdin.take();
        self.child = Some(child);
        self.log = log;
        let (ready_tx, ready_rx) = oneshot::channel();
        let pending = self.pending.clone();
        let events = self.events.clone();
        let changed = self.events_changed.clone();
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
                        changed.notify_waiters();
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
                LaunchError::Timeout(format!(
                    "{} did not start; log: {}",
                    self.name,
                    self.log.display()
                ))
            })?
            .map_err(|_| {
                LaunchError::Process(format!(
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

    /// Waits until `cond` holds of this node's membership events so far (checked at once and
    /// on every new event), up to `timeout`; returns the events then.
    pub async fn wait_events(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&[(u64, MemberEvent)]) -> bool,
    ) -> Result<Vec<(u64, MemberEvent)>, LaunchError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.events_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let events = self.events.lock();
                if cond(&events) {
                    return Ok(events.clone());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(LaunchError::Timeout(format!(
                    "{}: {what} (after {timeout:?}); log: {}",
                    self.name,
                    self.log.display()
                )));
            }
        }
    }

    /// Sends a request and waits (bounded) for its reply.
    pub async fn request(&self, cmd: Control) -> Result<Value, LaunchError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let mut line = serde_json::to_vec(&Request { id, cmd })
            .map_err(|e| LaunchError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let mut guard = self.stdin.lock().await;
        let stdin = guard
            .as_mut()
            .ok_or_else(|| LaunchError::Process(format!("{} is not running", self.name)))?;
        stdin
            .write_all(&line)
            .await
            .map_err(|e| LaunchError::Process(e.to_string()))?;
        stdin
            .flush()
            .await
            .map_err(|e| LaunchError::Process(e.to_string()))?;
        drop(guard);
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(LaunchError::Node(e)),
            Ok(Err(_)) => Err(LaunchError::Process(format!(
                "{} stopped answering",
                self.name
            ))),
            Err(_) => {
                self.pending.lock().remove(&id);
                Err(LaunchError::Timeout(format!(
                    "{} did not answer",
                    self.name
                )))
            }
        }
    }

    /// The node's member list.
    pub async fn members(&self) -> Result<Vec<MemberInfo>, LaunchError> {
        let v = self.request(Control::Members).await?;
        serde_json::from_value(v).map_err(|e| LaunchError::Protocol(e.to_string()))
    }

    /// Names of the members this node sees up (or suspect, still connected).
    pub async fn up_members(&self) -> Result<BTreeSet<String>, LaunchError> {
        Ok(self
            .members()
            .await?
            .into_iter()
            .filter(|m| matches!(m.state, MemberState::Up | MemberState::Suspect))
            .map(|m| m.node.name)
            .collect())
    }

    /// Blocks traffic with these peers (on this node's side).
    pub async fn block(&self, peers: &[&str]) -> Result<(), LaunchError> {
        let peers = peers.iter().map(|s| s.to_string()).collect();
        self.request(Control::Block { peers }).await.map(|_| ())
    }

    /// Unblocks every peer.
    pub async fn unblock_all(&self) -> Result<(), LaunchError> {
        self.request(Control::UnblockAll).await.map(|_| ())
    }

    /// Fault injection: what the node receives from `peers` arrives `delay_ms` late plus up
    /// to `jitter_ms`, and `loss` (0 to 1) of their probe frames is dropped. Zeros restore
    /// the links.
    pub async fn slow_link(
        &self,
        peers: &[&str],
        delay_ms: u64,
        jitter_ms: u64,
        loss: f64,
    ) -> Result<(), LaunchError> {
        let peers = peers.iter().map(|s| s.to_string()).collect();
        self.request(Control::SlowLink {
            peers,
            delay_ms,
            jitter_ms,
            loss,
        })
        .await
        .map(|_| ())
    }

    /// Fault injection: the node's wall clock runs `ms` ahead of the machine's (negative:
    /// behind), as a wrong system clock would.
    pub async fn skew_clock(&self, ms: i64) -> Result<(), LaunchError> {
        self.request(Control::SkewClock { ms }).await.map(|_| ())
    }

    /// The node's clock: skew, correction, peers' offsets.
    pub async fn clock(&self) -> Result<crate::ClockReport, LaunchError> {
        let v = self.request(Control::Clock).await?;
        serde_json::from_value(v).map_err(|e| LaunchError::Protocol(e.to_string()))
    }

    /// Sends a command of the node binary's own [`crate::ControlExtension`] and waits
    /// (bounded) for its reply.
    pub async fn command<C: Serialize>(&self, cmd: &C) -> Result<Value, LaunchError> {
        let command =
            serde_json::to_value(cmd).map_err(|e| LaunchError::Protocol(e.to_string()))?;
        self.request(Control::Custom { command }).await
    }

    /// Like [`NodeProcess::command`], with the reply decoded as `R`.
    pub async fn command_as<C: Serialize, R: DeserializeOwned>(
        &self,
        cmd: &C,
    ) -> Result<R, LaunchError> {
        let v = self.command(cmd).await?;
        serde_json::from_value(v).map_err(|e| LaunchError::Protocol(e.to_string()))
    }

    fn pid(&self) -> Result<nix::unistd::Pid, LaunchError> {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .ok_or_else(|| LaunchError::Process(format!("{} is not running", self.name)))?;
        let pid = i32::try_from(pid).map_err(|e| LaunchError::Process(e.to_string()))?;
        Ok(nix::unistd::Pid::from_raw(pid))
    }

    fn signal(&self, sig: nix::sys::signal::Signal) -> Result<(), LaunchError> {
        nix::sys::signal::kill(self.pid()?, sig).map_err(|e| LaunchError::Process(e.to_string()))
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) -> Result<(), LaunchError> {
        *self.stdin.get_mut() = None;
        if let Some(mut child) = self.child.take() {
            child
                .kill()
                .await
                .map_err(|e| LaunchError::Process(e.to_string()))?;
        }
        Ok(())
    }

    /// SIGSTOP: the process freezes (its sockets stay open).
    pub fn freeze(&self) -> Result<(), LaunchError> {
        self.signal(nix::sys::signal::Signal::SIGSTOP)
    }

    /// SIGCONT: the process runs again.
    pub fn thaw(&self) -> Result<(), LaunchError> {
        self.signal(nix::sys::signal::Signal::SIGCONT)
    }

    /// Kills the process if it runs, then starts it again with the same name, arguments and
    /// listen address (a new incarnation).
    pub async fn restart(&mut self) -> Result<(), LaunchError> {
        self.kill().await?;
        self.spawn().await
    }

    /// SIGTERM (a deployment's stop: a node binary drains and leaves), and waits up to
    /// `timeout` for the process to exit; then SIGKILL and [`LaunchError::Timeout`].
    pub async fn terminate(&mut self, timeout: Duration) -> Result<(), LaunchError> {
        self.signal(nix::sys::signal::Signal::SIGTERM)?;
        // The control channel stays open until the process is gone: a node process ends when
        // it closes, and would then skip the drain that SIGTERM asks for.
        let result = match self.child.take() {
            Some(mut child) => match tokio::time::timeout(timeout, child.wait()).await {
                Ok(_) => Ok(()),
                Err(_) => {
                    let _ = child.kill().await;
                    Err(LaunchError::Timeout(format!(
                        "{} did not exit within {timeout:?} of SIGTERM",
                        self.name
                    )))
                }
            },
            None => Ok(()),
        };
        *self.stdin.get_mut() = None;
        result
    }

    /// Asks the node to leave gracefully and waits (bounded) for the process to exit.
    pub async fn leave(&mut self) -> Result<(), LaunchError> {
        self.request(Control::Leave).await?;
        *self.stdin.get_mut() = None;
        if let Some(mut child) = self.child.take() {
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill().await;
                    return Err(LaunchError::Timeout(format!("{} did not exit", self.name)));
                }
            }
        }
        Ok(())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // A frozen process dies of SIGKILL too.
            let _ = child.start_kill();
        }
    }
}
