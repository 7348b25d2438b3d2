//! Citus metadata on the coordinator: reading `pg_dist_node`.
//!
//! Columns are selected by name (Citus 13.2 added two); the role and cluster are read as text
//! so the code does not depend on Citus' enum types. Works the same on real Citus and on the
//! test stand-in: nothing here asks which one it is.

use serde::Serialize;

use crate::pg::PgError;
use crate::topology::Endpoint;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistNode {
    pub nodeid: i32,
    pub groupid: i32,
    pub nodename: String,
    pub nodeport: i32,
    pub noderole: String,
    pub nodecluster: String,
    pub isactive: bool,
    pub hasmetadata: bool,
    pub metadatasynced: bool,
    pub shouldhaveshards: bool,
    /// The inventory's spelling of the address this row names otherwise (a host name that
    /// resolves to the member's IP address, or the other way round): see `crate::addresses`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
}

impl DistNode {
    /// The address this row stands for, in the inventory's spelling when it has another.
    pub fn endpoint(&self) -> Option<Endpoint> {
        u16::try_from(self.nodeport).ok().map(|p| {
            Endpoint::new(
                self.same_as
                    .clone()
                    .unwrap_or_else(|| self.nodename.clone()),
                p,
            )
        })
    }
    pub fn is_primary(&self) -> bool {
        self.noderole == "primary"
    }
    pub fn is_secondary(&self) -> bool {
        self.noderole == "secondary"
    }
}

/// One database's metadata as the coordinator leader holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// `pg_is_in_recovery()` of the server we read from: true means it is not the primary.
    pub in_recovery: bool,
    pub nodes: Vec<DistNode>,
}

#[derive(Debug, thiserror::Error)]
pub enum CitusError {
    #[error("Citus is not installed in database {0} (no pg_catalog.pg_dist_node)")]
    NotInstalled(String),
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("unexpected pg_dist_node value: {0}")]
    Decode(String),
}

const READ_SQL: &str = "SELECT pg_catalog.pg_is_in_recovery()::text; \
    SELECT nodeid, groupid, nodename, nodeport, noderole::text, nodecluster::text, \
           isactive, hasmetadata, coalesce(metadatasynced, false), shouldhaveshards \
      FROM pg_catalog.pg_dist_node ORDER BY groupid, noderole, nodeid";

/// Read recovery state and `pg_dist_node` in one round trip.
pub async fn read_metadata(
    client: &tokio_postgres::Client,
    dbname: &str,
) -> Result<Metadata, CitusError> {
    use tokio_postgres::SimpleQueryMessage as M;
    let msgs = client.simple_query(READ_SQL).await.map_err(|e| {
        let pe = PgError::from_query(&e);
        if pe.sqlstate() == Some("42P01") {
            CitusError::NotInstalled(dbname.to_owned())
        } else {
            CitusError::Pg(pe)
        }
    })?;
    let mut in_recovery = None;
    let mut nodes = Vec::new();
    for m in msgs {
        let M::Row(row) = m else { continue };
        if row.len() == 1 {
            in_recovery = Some(row.get(0) == Some("true"));
            continue;
        }
        let text = |i: usize| row.get(i).unwrap_or_default().to_owned();
        let int = |i: usize| {
            text(i)
                .parse::<i32>()
                .map_err(|_| CitusError::Decode(format!("column {i}: {:?}", row.get(i))))
        };
        let boolean = |i: usize| row.get(i) == Some("t");
        nodes.push(DistNode {
            nodeid: int(0)?,
            groupid: int(1)?,
            nodename: text(2),
            nodeport: int(3)?,
            noderole: text(4),
            nodecluster: text(5),
            isactive: boolean(6),
            hasmetadata: boolean(7),
            metadatasynced: boolean(8),
            shouldhaveshards: boolean(9),
            same_as: None,
        });
    }
    Ok(Metadata {
        in_recovery: in_recovery.ok_or_else(|| CitusError::Decode("no recovery state".into()))?,
        nodes,
    })
}

/// A healthy row for unit tests (shards everywhere but on the coordinator).
#[cfg(test)]
pub(crate) fn test_row(nodeid: i32, groupid: i32, host: &str, role: &str) -> DistNode {
    DistNode {
        nodeid,
        groupid,
        nodename: host.into(),
        nodeport: 5432,
        noderole: role.into(),
        nodecluster: "default".into(),
        isactive: true,
        hasmetadata: true,
        metadatasynced: true,
        shouldhaveshards: groupid != 0,
        same_as: None,
    }
}
