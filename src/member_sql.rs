//! What a PostgreSQL server says about itself: is it writable, and which cluster is it
//! (`system_identifier`, shared by a primary and its physical replicas, distinct per group).

use crate::pg::{self, PgError, PgParams};
use crate::topology::Endpoint;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    pub in_recovery: bool,
    pub system_identifier: String,
    /// `inet_server_addr()`: the member a proxy VIP forwarded to (the VIP itself for an IP VIP).
    pub server_addr: Option<String>,
}

pub async fn landing(params: &PgParams, ep: &Endpoint, dbname: &str) -> Result<Landing, PgError> {
    let c = pg::connect(params, ep, dbname).await?;
    let row = pg::within(
        pg::READ_LIMIT,
        &format!("PostgreSQL at {ep}"),
        c.query_one(
            "SELECT pg_catalog.pg_is_in_recovery(), \
                    (SELECT system_identifier::text FROM pg_catalog.pg_control_system()), \
                    host(inet_server_addr())",
            &[],
        ),
    )
    .await?;
    Ok(Landing {
        in_recovery: row.get(0),
        system_identifier: row.get(1),
        server_addr: row.get(2),
    })
}

/// `pg_is_in_recovery()` of a member (to make sure a new primary row points at a writable one).
pub async fn is_writable(params: &PgParams, ep: &Endpoint, dbname: &str) -> Result<bool, PgError> {
    Ok(!landing(params, ep, dbname).await?.in_recovery)
}
