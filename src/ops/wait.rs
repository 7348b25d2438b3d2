//! Waiting for a new leader, and a group's state in one line.

use std::time::Duration;

use crate::member_sql::landing;
use crate::patroni::{PatroniClient, Role};
use crate::pg::{self, PgParams};
use crate::topology::{Endpoint, Group};

/// Poll until the candidate answers `pg_is_in_recovery() = false` (and, in VIP mode, the RW VIP
/// lands on a writable server). Every 10 ms on a kept connection (a promotion keeps sessions),
/// so the pause ends as soon as it can. The VIP needs a new connection per look (a kept one
/// stays on the server it reached), so it is looked at only once the candidate is writable,
/// and then every 50 ms. Every query has its own time limit; the caller bounds the whole wait.
pub async fn wait_writable(
    pg: &PgParams,
    db: &str,
    candidate: &Endpoint,
    rw_vip: Option<Endpoint>,
) {
    let mut quick = pg.clone();
    quick.connect_timeout = Duration::from_millis(500);
    let mut conn: Option<tokio_postgres::Client> = None;
    let mut next_vip_look = tokio::time::Instant::now();
    loop {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            conn = pg::connect(&quick, candidate, db).await.ok();
        }
        let writable = match &conn {
            Some(c) => match tokio::time::timeout(
                QUERY_LIMIT,
                c.query_one("SELECT pg_catalog.pg_is_in_recovery()", &[]),
            )
            .await
            {
                Ok(Ok(row)) => !row.get::<_, bool>(0),
                _ => {
                    conn = None;
                    false
                }
            },
            None => false,
        };
        let ok = writable
            && match &rw_vip {
                None => true,
                Some(_) if tokio::time::Instant::now() < next_vip_look => false,
                Some(v) => {
                    next_vip_look = tokio::time::Instant::now() + VIP_LOOK_EVERY;
                    matches!(
                        tokio::time::timeout(QUERY_LIMIT, landing(&quick, v, db)).await,
                        Ok(Ok(l)) if !l.in_recovery
                    )
                }
            };
        if ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(if conn.is_some() { 10 } else { 50 })).await;
    }
}

/// One look at the candidate or the VIP.
const QUERY_LIMIT: Duration = Duration::from_millis(1000);
/// How often a new connection goes through the RW VIP.
const VIP_LOOK_EVERY: Duration = Duration::from_millis(50);

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
