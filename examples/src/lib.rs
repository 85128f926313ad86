//! Runnable examples of the actor toolkit. The programs are the binaries in `src/bin`:
//!
//! * `supervision_tree`: a supervision tree that restarts crashed children and prints what
//!   happens (`cargo run -p examples --bin supervision_tree`).

pub mod app;

/// The book's chapters (`docs/src`), included so that `cargo test` compiles every Rust block in
/// them as a doc test: the tutorial's code cannot rot. (Blocks that include a whole example
/// program are compiled as that example.)
pub mod book {
    #[doc = include_str!("../../docs/src/getting-started.md")]
    pub mod getting_started {}
    #[doc = include_str!("../../docs/src/supervision-trees.md")]
    pub mod supervision_trees {}
    #[doc = include_str!("../../docs/src/starting-a-cluster.md")]
    pub mod starting_a_cluster {}
    #[doc = include_str!("../../docs/src/distributed-supervision.md")]
    pub mod distributed_supervision {}
    #[doc = include_str!("../../docs/src/feature-flags.md")]
    pub mod feature_flags {}
    #[doc = include_str!("../../docs/src/poker-tournament.md")]
    pub mod poker_tournament {}
    #[doc = include_str!("../../docs/src/deploying.md")]
    pub mod deploying {}
}
