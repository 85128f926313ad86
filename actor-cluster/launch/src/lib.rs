//! Launches and drives local node processes of the actor toolkit: the one-command demo, the
//! chaos and soak runs, the benchmarks, and (through `actor-testkit`) the multi-process tests.
//!
//! A launcher starts N processes of a node binary (one that calls [`serve`]) on 127.0.0.1 with
//! ports the OS picks. Each process speaks a line-based JSON control protocol on its stdin and
//! stdout ([`protocol`]): the launcher reads its membership, blocks and unblocks peers
//! (partitions), sends the binary's own typed commands ([`ControlExtension`],
//! [`NodeProcess::command`]), and receives every membership event with a wall-clock timestamp.
//! It also kills (SIGKILL), freezes and thaws (SIGSTOP/SIGCONT) and restarts processes. Every
//! wait has a deadline; every child process is killed when its [`NodeProcess`] is dropped
//! (also during a panic), and a node process exits by itself when its stdin closes (the
//! launcher is gone).

pub mod process;
pub mod protocol;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use process::NodeProcess;
pub use protocol::{
    serve, ClockReport, Control, ControlExtension, Never, NoCommands, Output, Request,
};

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

/// Errors of launching and driving node processes.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
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

/// Checks `cond` every 10 ms until it returns `Ok(true)` or `timeout` passes: for conditions
/// only a node process can answer (its replies), where no event reaches this process.
pub async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    mut cond: F,
) -> Result<Duration, LaunchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, LaunchError>>,
{
    let began = Instant::now();
    loop {
        match cond().await {
            Ok(true) => return Ok(began.elapsed()),
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "condition check failed; retrying"),
        }
        if began.elapsed() > timeout {
            return Err(LaunchError::Timeout(format!("{what} (after {timeout:?})")));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
