//! The test kit: what multi-process tests need beyond the launcher.
//!
//! * the launcher itself, re-exported ([`actor_cluster_launch`]): node processes
//!   ([`TestNode`]), typed commands, partitions, kill -9, freeze, restart, bounded waits;
//! * [`flood`]: a counting sink and flood commands for overload tests and the `overload` bench;
//! * [`redis`]: a Redis server of a test's own (to stop and restart under the store).

pub mod flood;
pub mod redis;

/// Errors of the test kit.
pub use actor_cluster_launch::LaunchError as TestkitError;
/// A node process driven by a test.
pub use actor_cluster_launch::NodeProcess as TestNode;
pub use actor_cluster_launch::*;
