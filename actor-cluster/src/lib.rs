//! `actor-cluster`: nodes, membership and discovery, failure detection, the cluster registry and
//! the distributed dynamic supervisor.
//!
//! This crate is being built. It will hold, on top of `actor-core` and ractor_cluster:
//! * `Node`: one per OS process, from a builder (name, listen address, cookie, timings,
//!   discovery, optional TLS), with graceful leave;
//! * discovery (libcluster's strategies: static seeds, DNS A/AAAA and SRV polling, UDP gossip
//!   with a shared secret, user-defined);
//! * membership: a pure state machine (incarnations; up / suspect / down / left) driven by
//!   session events, heartbeats and gossip, kept as a full mesh with reconnection;
//! * the cluster-wide registry (a replicated CRDT, local lookups, deterministic conflict
//!   resolution after a partition heals);
//! * the distributed supervisor (children as data, placement behind a trait, failover, handoff);
//! * a test kit that drives real node processes (kill, freeze, partition, restart).
