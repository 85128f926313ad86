//! Runnable examples of the actor toolkit. The programs are the binaries in `src/bin`:
//!
//! * `supervision_tree`: a supervision tree that restarts crashed children and prints what
//!   happens (`cargo run -p examples --bin supervision_tree`).

pub mod app;
