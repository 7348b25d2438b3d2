//! The layer below the commands (cargo's `ops`): the steps several commands share, each with
//! its own options and an outcome value. Nothing here sees clap's `Args` or a command's report,
//! and nothing prints but progress lines (stderr, through a callback or `ui::say`).
//!
//! - `observe`: the live state a write may be based on (one writable coordinator leader).
//! - `plan`: the metadata plan checked against live servers, and `citus.use_secondary_nodes`.
//! - `wait`: until a new leader is writable; a group's state in one line.
//! - `confirm`: the one prompt before a change.
//! - `recover`: Citus's 2PC recovery right after a leader change without the pause.
//! - `dynamic_config`: each scope's Patroni dynamic configuration (`show-config`).
//! - `doctor`: what `check` and `version` read from every member, each VIP and Citus.
//! - `rebalance`: Citus's background rebalance and the drain of a group, with a progress bar.
//! - `switchover`: a switchover of one group, with the Citus pause (`crate::pause`) around it.

pub mod confirm;
pub mod doctor;
pub mod dynamic_config;
pub mod observe;
pub mod plan;
pub mod rebalance;
pub mod recover;
pub mod switchover;
pub mod wait;
