//! `actor-core`: OTP-style supervision trees, the wire codec and shared building blocks for the
//! actor toolkit, built on [ractor](https://docs.rs/ractor).
//!
//! * [`supervisor`]: [`Supervisor`](supervisor::Supervisor) (static ordered children;
//!   one-for-one, one-for-all, rest-for-one; permanent, transient, temporary children; restart
//!   intensity with escalation; backoff; ordered start and reverse-order shutdown) and
//!   [`DynamicSupervisor`](supervisor::DynamicSupervisor).
//! * [`codec`]: serde messages encoded with rmp-serde in a versioned envelope, with typed errors
//!   and a frame size limit.
//! * [`wallclock`]: the wall clock every stamp reads (with the cluster's correction and a
//!   skew-injection hook).
//! * [`RemoteMessage`] / [`LocalMessage`]: one derive makes a type a ractor `Message`, remote
//!   (casts and calls alike) or local-only. ractor's `cluster` feature, which this workspace
//!   enables, removes ractor's blanket `Message` impl for the whole build.
//!
//! ```
//! use actor_core::{LocalMessage, RemoteMessage};
//! use actor_core::ractor::RpcReplyPort;
//!
//! /// Crosses nodes: every field is serde, a trailing reply port makes a call.
//! #[derive(RemoteMessage)]
//! enum CounterMsg {
//!     Add(i64),
//!     Get(RpcReplyPort<i64>),
//! }
//!
//! /// Stays on this node: any type.
//! #[derive(LocalMessage)]
//! struct Tick;
//! ```

extern crate self as actor_core;

pub mod codec;
#[doc(hidden)]
pub mod fuzzing;
pub mod supervisor;
pub mod wallclock;

pub use actor_core_base::hlc;
pub use actor_core_macros::{LocalMessage, RemoteMessage};
pub use codec::{Codec, CodecError};
pub use ractor;
