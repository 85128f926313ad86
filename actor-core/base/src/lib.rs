//! `actor-core-base`: the parts of actor-core that need neither tokio nor ractor, so that the
//! cluster's protocol cores (`actor-cluster-proto`) can build on them and stay pure.
//!
//! * [`supervision`]: OTP's restart rules (strategies, restart types, intensity windows,
//!   backoff) as functions of `now` and a random sample. actor-core's supervisor actors carry
//!   out its plans; it is re-exported there as `actor_core::supervisor::core`.
//! * [`codec`]: the wire codec (serde values in a versioned MessagePack envelope, size and
//!   nesting limits, typed errors); re-exported by actor-core, which adds the support code of
//!   `#[derive(RemoteMessage)]`.
//! * [`hlc`]: the hybrid logical clock: the one "newer wins" order of the toolkit (registry
//!   conflicts, the distributed supervisor's child table, flag versions).

pub mod codec;
pub mod hlc;
pub mod supervision;

pub use hlc::{Hlc, Stamp};
