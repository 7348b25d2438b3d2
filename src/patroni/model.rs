//! What Patroni's REST API returns, read tolerantly across 3.x and 4.x.
//!
//! Role names differ between versions (`master` vs `primary` in `/patroni`; `quorum_standby`
//! only in 4.x; replica state `running` in 3.0.x, `streaming` from 3.0.4/4.x); `lag` may be the
//! string `"unknown"`. Unknown keys are ignored so that newer Patroni versions keep working.

use serde::{Deserialize, Serialize};

/// `GET /cluster`: the view of one Patroni cluster (one Citus group) from one member.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ClusterDoc {
    #[serde(default)]
    pub members: Vec<MemberDoc>,
    /// Added in Patroni 3.2.0.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub pause: bool,
    #[serde(default)]
    pub scheduled_switchover: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct MemberDoc {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub timeline: Option<u64>,
    #[serde(default)]
    pub lag: Option<Lag>,
    #[serde(default)]
    pub pending_restart: bool,
    #[serde(default)]
    pub tags: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `GET /patroni`: what one member says about itself (only the keys citusctl reads).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct PatroniStatus {
    #[serde(default)]
    pub state: Option<String>,
    /// `master` (3.x) or `primary` (4.x), `replica`, `standby_leader`, ...
    #[serde(default)]
    pub role: Option<String>,
    /// PostgreSQL's `server_version_num` (absent while PostgreSQL is down).
    #[serde(default)]
    pub server_version: Option<u32>,
    #[serde(default)]
    pub timeline: Option<u64>,
    #[serde(default)]
    pub patroni: Option<PatroniSelf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct PatroniSelf {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// Replication lag in bytes, or Patroni's `"unknown"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Lag {
    Bytes(u64),
    Other(String),
}

/// A member's role, normalised over Patroni versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    StandbyLeader,
    SyncStandby,
    QuorumStandby,
    Replica,
    Unknown,
}

impl Role {
    pub fn parse(s: &str) -> Role {
        match s {
            "leader" | "master" | "primary" => Role::Leader,
            "standby_leader" => Role::StandbyLeader,
            "sync_standby" => Role::SyncStandby,
            "quorum_standby" => Role::QuorumStandby,
            "replica" => Role::Replica,
            _ => Role::Unknown,
        }
    }

    /// Holds the leader lock (a standby leader leads a standby cluster: not writable).
    pub fn is_leader(self) -> bool {
        matches!(self, Role::Leader | Role::StandbyLeader)
    }

    pub fn is_replica(self) -> bool {
        matches!(
            self,
            Role::SyncStandby | Role::QuorumStandby | Role::Replica
        )
    }

    /// As patronictl prints it.
    pub fn title(self) -> &'static str {
        match self {
            Role::Leader => "Leader",
            Role::StandbyLeader => "Standby Leader",
            Role::SyncStandby => "Sync Standby",
            Role::QuorumStandby => "Quorum Standby",
            Role::Replica => "Replica",
            Role::Unknown => "Unknown",
        }
    }
}

impl MemberDoc {
    pub fn role(&self) -> Role {
        Role::parse(&self.role)
    }

    /// A leader that runs, or a replica that streams (or runs, as Patroni 3.0.x says).
    pub fn is_healthy(&self) -> bool {
        match self.role() {
            Role::Leader | Role::StandbyLeader => self.state == "running",
            r if r.is_replica() => matches!(self.state.as_str(), "streaming" | "running"),
            _ => false,
        }
    }

    pub fn lag_bytes(&self) -> Option<u64> {
        match self.lag {
            Some(Lag::Bytes(b)) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_patroni3_cluster() {
        let doc: ClusterDoc = serde_json::from_str(
            r#"{"members": [
              {"name": "pg3", "role": "leader", "state": "running", "api_url": "http://127.0.1.3:8008/patroni",
               "host": "127.0.1.3", "port": 5432, "timeline": 3},
              {"name": "pg4", "role": "replica", "state": "running", "api_url": "http://127.0.1.4:8008/patroni",
               "host": "127.0.1.4", "port": 5432, "timeline": 3, "lag": 0}]}"#,
        )
        .unwrap();
        assert_eq!(doc.members[0].role(), Role::Leader);
        assert!(doc.members[1].is_healthy());
        assert_eq!(doc.members[1].lag_bytes(), Some(0));
        assert_eq!(doc.scope, None);
    }

    #[test]
    fn parses_patroni4_cluster_with_unknown_lag_and_new_keys() {
        let doc: ClusterDoc = serde_json::from_str(
            r#"{"scope": "wk1", "pause": true, "members": [
              {"name": "a", "role": "quorum_standby", "state": "streaming", "lag": "unknown",
               "lsn": "0/3000000", "receive_lag": "unknown", "tags": {"nofailover": true}},
              {"name": "b", "role": "sync_standby", "state": "stopped"}]}"#,
        )
        .unwrap();
        assert!(doc.pause);
        assert_eq!(doc.members[0].role(), Role::QuorumStandby);
        assert!(doc.members[0].is_healthy());
        assert_eq!(doc.members[0].lag, Some(Lag::Other("unknown".into())));
        assert!(!doc.members[1].is_healthy());
    }

    #[test]
    fn role_names_of_both_versions() {
        assert_eq!(Role::parse("master"), Role::Leader);
        assert_eq!(Role::parse("primary"), Role::Leader);
        assert!(Role::parse("standby_leader").is_leader());
        assert_eq!(Role::parse("demoted"), Role::Unknown);
    }
}
