//! The validated model of one Citus cluster: what the inventory says, after every check.
//!
//! Every command holds a [`Topology`]; nothing in it can be wrong in a way the inventory
//! loader could have caught (duplicate names, group 0 on a worker, RW VIP == RO VIP, ...).

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::secret::SecretSource;

/// Citus group id of the coordinator.
pub const COORDINATOR_GROUP: i32 = 0;

#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    pub databases: Vec<String>,
    pub postgres: PostgresSettings,
    pub patroni: PatroniSettings,
    /// The coordinator first, then workers in inventory order.
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    Coordinator,
    Worker,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub scope: String,
    pub group_id: i32,
    pub kind: GroupKind,
    pub vip: Option<Vips>,
    pub members: Vec<Member>,
}

/// Read-write and read-only virtual addresses of a group. RW is the group's `primary` row in
/// `pg_dist_node`, RO its `secondary` row. They differ (Citus: UNIQUE (nodename, nodeport)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vips {
    pub rw: Endpoint,
    pub ro: Option<Endpoint>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub pg: Endpoint,
    /// Base URL of the member's Patroni REST API, e.g. `http://10.0.0.1:8008/`.
    pub api: Url,
}

/// A PostgreSQL address as `pg_dist_node` stores it: `(nodename, nodeport)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// libpq's `allow`: plain first, TLS only when the server insists.
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// None: libpq's rules (PGUSER, then the OS user).
    pub user: Option<String>,
    pub password: Option<SecretSource>,
    pub sslmode: Option<SslMode>,
    pub sslrootcert: Option<std::path::PathBuf>,
    /// None: $PGCONNECT_TIMEOUT, else 3 s (the inventory comes first, as the README says).
    pub connect_timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct PatroniSettings {
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub timeout: Duration,
    pub cacert: Option<std::path::PathBuf>,
    pub insecure: bool,
}

impl Topology {
    pub fn coordinator(&self) -> &Group {
        &self.groups[0]
    }

    pub fn group_by_scope(&self, scope: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.scope == scope)
    }

    /// Where a scope stands in `groups` (and in every per-group list built from them).
    pub fn index_of(&self, scope: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.scope == scope)
    }

    pub fn group_by_id(&self, id: i32) -> Option<&Group> {
        self.groups.iter().find(|g| g.group_id == id)
    }

    pub fn scopes(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.scope.as_str()).collect()
    }
}

impl Group {
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn member_at(&self, ep: &Endpoint) -> Option<&Member> {
        self.members.iter().find(|m| &m.pg == ep)
    }
}

#[cfg(test)]
impl Topology {
    /// A topology for unit tests: database `postgres`, no credentials, 1 s timeouts.
    pub fn for_tests(groups: Vec<Group>) -> Topology {
        Topology {
            name: "t".into(),
            databases: vec!["postgres".into()],
            postgres: PostgresSettings {
                user: None,
                password: None,
                sslmode: None,
                sslrootcert: None,
                connect_timeout: Some(std::time::Duration::from_secs(1)),
            },
            patroni: PatroniSettings {
                username: None,
                password: None,
                timeout: std::time::Duration::from_secs(1),
                cacert: None,
                insecure: false,
            },
            groups,
        }
    }
}
