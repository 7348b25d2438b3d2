//! Waiting for a new leader, and a group's state in one line.

use std::time::Duration;

use crate::member_sql::landing;
use crate::patroni::{PatroniClient, Role};
use crate::pg::{self, PgParams};
use crate::topology::{Endpoint, Group};

/// Poll until the candidate answers `pg_is_in_recovery() = false` (and, in VIP mode, the RW VIP
/// lands on a writable server). Every 10 ms on a kept connection (a promotion keeps sessions),
/// so the pause ends as soon as it can.
pub async fn wait_writable(
    pg: &PgParams,
    db: &str,
    candidate: &Endpoint,
    rw_vip: Option<Endpoint>,
) {
    let mut quick = pg.clone();
    quick.connect_timeout = Duration::from_millis(500);
    let mut conn: Option<tokio_postgres::Client> = None;
    loop {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            conn = pg::connect(&quick, candidate, db).await.ok();
        }
        let writable = match &conn {
            Some(c) => match c
                .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])
                .await
            {
                Ok(row) => !row.get::<_, bool>(0),
                Err(_) => {
                    conn = None;
                    false
                }
            },
            None => false,
        };
        let ok = writable
            && match &rw_vip {
                None => true,
                Some(v) => matches!(landing(&quick, v, db).await, Ok(l) if !l.in_recovery),
            };
        if ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(if conn.is_some() { 10 } else { 50 })).await;
    }
}

pub async fn group_state(client: &PatroniClient, g: &Group) -> String {
    for m in &g.members {
        if let Ok(doc) = client.cluster(&m.api).await {
            return doc
                .members
                .iter()
                .map(|x| {
                    format!(
                        "{} {} {}",
                        x.name,
                        Role::parse(&x.role).title().to_lowercase(),
                        x.state
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
    "no member answers".into()
}
