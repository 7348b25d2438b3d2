//! Patroni REST API: the client and the documents it reads.

mod client;
mod model;

pub use client::{ApiError, PatroniClient};
pub use model::{ClusterDoc, Lag, MemberDoc, PatroniSelf, PatroniStatus, Role};
