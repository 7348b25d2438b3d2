//! After a group changed leader without the pause (a lost pause, a failover, a switchover that
//! Patroni ran by itself), distributed transactions that were half-way through Citus's two-phase
//! commit can be left prepared on the group's new leader (they were prepared on the old one and
//! replicated). They hold their row locks, so writes to those rows (and a later pause) wait for
//! them until Citus's maintenance daemon recovers them, up to `citus.recover_2pc_interval`
//! (60 s by default) later. Right after the rows are repaired, citusctl asks the coordinator to
//! recover them at once (`recover_prepared_transactions()`, what the daemon itself runs), so
//! clients do not wait that minute. Best effort, bounded, and skipped where the function is
//! absent (the test stand-in).

use std::time::Duration;

use crate::pg::{self, PgParams};
use crate::topology::Endpoint;

/// One database's recovery: how many prepared transactions Citus resolved, or why none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    Count(i32),
    NotCitus,
    Failed(String),
}

const LIMIT: Duration = Duration::from_secs(10);

/// `recover_prepared_transactions()` on the coordinator leader, in every database.
pub async fn prepared_transactions(
    pg: &PgParams,
    coordinator: &Endpoint,
    databases: &[String],
) -> Vec<(String, Recovered)> {
    let mut out = Vec::new();
    for db in databases {
        let r = pg::bounded(
            pg.connect_timeout + LIMIT,
            "recover_prepared_transactions()",
            async {
                let c = pg::connect(pg, coordinator, db).await?;
                pg::bound_session(&c, "citusctl recover").await?;
                pg::within(
                    LIMIT,
                    "recover_prepared_transactions()",
                    c.batch_execute(&format!("SET statement_timeout = {}", LIMIT.as_millis())),
                )
                .await?;
                let has: bool = pg::within(
                    LIMIT,
                    "recover_prepared_transactions()",
                    c.query_one(
                        "SELECT to_regprocedure('pg_catalog.recover_prepared_transactions()') IS NOT NULL",
                        &[],
                    ),
                )
                .await?
                .get(0);
                if !has {
                    return Ok(None);
                }
                let n: i32 = pg::within(
                    LIMIT,
                    "recover_prepared_transactions()",
                    c.query_one("SELECT pg_catalog.recover_prepared_transactions()", &[]),
                )
                .await?
                .get(0);
                Ok(Some(n))
            },
        )
        .await;
        out.push((
            db.clone(),
            match r {
                Ok(Some(n)) => Recovered::Count(n),
                Ok(None) => Recovered::NotCitus,
                Err(e) => Recovered::Failed(e.to_string()),
            },
        ));
    }
    out
}

/// One line for progress and logs, or None when there is nothing to say.
pub fn describe(results: &[(String, Recovered)]) -> Option<String> {
    let parts: Vec<String> = results
        .iter()
        .filter_map(|(db, r)| match r {
            Recovered::Count(0) | Recovered::NotCitus => None,
            Recovered::Count(n) => Some(format!("{db}: {n} prepared transaction(s) left by the leader change recovered")),
            Recovered::Failed(e) => Some(format!("{db}: recovering prepared transactions failed ({e}); Citus's maintenance daemon retries within citus.recover_2pc_interval")),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_happened_is_said() {
        let r = |x| vec![("postgres".to_owned(), x)];
        assert_eq!(describe(&r(Recovered::Count(0))), None);
        assert_eq!(describe(&r(Recovered::NotCitus)), None);
        assert_eq!(
            describe(&r(Recovered::Count(3))).as_deref(),
            Some("postgres: 3 prepared transaction(s) left by the leader change recovered")
        );
        assert!(
            describe(&r(Recovered::Failed("no answer".into())))
                .unwrap()
                .contains("maintenance daemon retries")
        );
    }
}
