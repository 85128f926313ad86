//! The toolkit's multi-process tests (in `tests/`) and the node processes they drive: the
//! `cluster-testnode`, `flags-testnode` and `poker-testnode` binaries, and the flags benchmark
//! (`examples/flags_bench.rs`). Not published: nothing here is a library's API.

pub mod cluster_node;
pub mod flags_node;
pub mod poker_node;
