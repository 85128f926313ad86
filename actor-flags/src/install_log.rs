//! When each flag version was installed on this node: what propagation measurements (the
//! demo's report, the flags benchmark) compare across processes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::Flags;

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// When this node installed each flag version (ns since the Unix epoch), fed by
/// [`Flags::watch`]: what propagation measurements compare across processes.
#[derive(Clone, Default)]
pub struct InstallLog(Arc<Mutex<HashMap<(String, u64), u64>>>);

impl std::fmt::Debug for InstallLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallLog")
            .field("entries", &self.0.lock().len())
            .finish()
    }
}

impl InstallLog {
    /// Starts recording the versions `flags` installs from now on.
    pub fn record(flags: &Flags) -> Self {
        let log = Self::default();
        let mut watch = flags.watch();
        let entries = log.0.clone();
        tokio::spawn(async move {
            loop {
                match watch.recv().await {
                    Ok(change) => {
                        entries
                            .lock()
                            .entry((change.name, change.version))
                            .or_insert_with(wall_ns);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        });
        log
    }

    /// When `version` of `flag` was installed here, if it was.
    pub fn installed_at(&self, flag: &str, version: u64) -> Option<u64> {
        self.0.lock().get(&(flag.to_owned(), version)).copied()
    }
}
