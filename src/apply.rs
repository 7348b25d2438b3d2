//! Apply: run a database's planned Citus calls in one transaction on the coordinator leader.
//!
//! Every value is a bind parameter; nothing from the inventory or Patroni is spliced into SQL.

use std::time::Duration;

use crate::pg::{self, PgError, PgParams};
use crate::plan::{DatabasePlan, Step};
use crate::topology::Endpoint;

/// How `citus_update_node` treats transactions that hold the group's locks.
#[derive(Debug, Clone, Copy)]
pub struct UpdateOptions {
    /// Cancel blocking transactions after `lock_cooldown_ms` (Citus `force => true`).
    pub force: bool,
    pub lock_cooldown_ms: i32,
    /// Give up (and roll back) when one call waits longer than this.
    pub statement_timeout_ms: u64,
    /// When another citusctl holds the writer lock: wait for it (up to the statement timeout),
    /// or skip (the controller: another instance, or a switchover, is at work).
    pub when_busy: WhenBusy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    Wait,
    Skip,
}

/// The one lock of every citusctl transaction that writes `pg_dist_node` or holds a pause:
/// a transaction-level advisory lock on the coordinator leader, per database. Two citusctl
/// processes (controllers, a switchover, a resync) never write at once.
pub const WRITER_LOCK: (i32, i32) = (1_667_855_477, 1_935_897_708); // "citu", "sctl"

/// SQLSTATE-like code of "another citusctl holds the writer lock" (nothing changed).
pub const BUSY: &str = "citusctl-busy";

/// SQLSTATE-like code of "pg_dist_node is not what the plan was made from" (nothing changed).
pub const FENCED: &str = "citusctl-fenced";

/// The rows a plan was made from must still be as they were when it is applied (a prompt can
/// last as long as the operator likes; someone may have run psql meanwhile). They are read
/// `FOR UPDATE` inside the writing transaction, so nobody changes them until COMMIT; a row
/// that moved, or disappeared, stops the transaction before anything is written.
async fn fence<C: tokio_postgres::GenericClient>(
    c: &C,
    plan: &DatabasePlan,
) -> Result<(), PgError> {
    fence_rows(c, &planned_rows(plan)).await
}

/// The rows a plan was made from: (nodeid, `name:port` as it was seen).
pub fn planned_rows(plan: &DatabasePlan) -> Vec<(i32, String)> {
    plan.changes
        .iter()
        .filter_map(|ch| Some((ch.nodeid?, ch.now.clone()?)))
        .collect()
}

/// Read `planned` rows `FOR UPDATE` in the caller's transaction; stop (FENCED) when one is
/// gone or names another address than the plan saw.
pub async fn fence_rows<C: tokio_postgres::GenericClient>(
    c: &C,
    planned: &[(i32, String)],
) -> Result<(), PgError> {
    if planned.is_empty() {
        return Ok(());
    }
    let ids: Vec<i32> = planned.iter().map(|(id, _)| *id).collect();
    let rows = c
        .query(
            "SELECT nodeid, nodename || ':' || nodeport FROM pg_catalog.pg_dist_node \
              WHERE nodeid = ANY ($1) FOR UPDATE",
            &[&ids],
        )
        .await
        .map_err(|e| PgError::from_query(&e))?;
    for (id, was) in planned {
        let (id, was) = (*id, was.as_str());
        let now: Option<String> = rows
            .iter()
            .find(|r| r.get::<_, i32>(0) == id)
            .map(|r| r.get(1));
        let differs = match &now {
            None => Some(format!("row {id} is gone")),
            Some(n) if n != was => Some(format!("row {id} is now {n}")),
            Some(_) => None,
        };
        if let Some(d) = differs {
            return Err(PgError::Query {
                code: Some(FENCED.into()),
                message: format!(
                    "pg_dist_node changed since the plan ({d}; the plan saw {was}): nothing written; look again"
                ),
            });
        }
    }
    Ok(())
}

/// Take the writer lock in the caller's transaction, or say who has it.
pub async fn lock_writers<C: tokio_postgres::GenericClient>(
    c: &C,
    when_busy: WhenBusy,
) -> Result<(), PgError> {
    let q = |e: tokio_postgres::Error| PgError::from_query(&e);
    let got: bool = match when_busy {
        WhenBusy::Skip => c
            .query_one(
                "SELECT pg_catalog.pg_try_advisory_xact_lock($1, $2)",
                &[&WRITER_LOCK.0, &WRITER_LOCK.1],
            )
            .await
            .map_err(q)?
            .get(0),
        // Under a savepoint, so that the holder can still be named after a timeout.
        WhenBusy::Wait => {
            c.batch_execute("SAVEPOINT citusctl_writer_lock")
                .await
                .map_err(q)?;
            match c
                .execute(
                    "SELECT pg_catalog.pg_advisory_xact_lock($1, $2)",
                    &[&WRITER_LOCK.0, &WRITER_LOCK.1],
                )
                .await
            {
                Ok(_) => {
                    c.batch_execute("RELEASE SAVEPOINT citusctl_writer_lock")
                        .await
                        .map_err(q)?;
                    true
                }
                Err(e) if matches!(e.code().map(|c| c.code()), Some("57014" | "55P03")) => {
                    c.batch_execute("ROLLBACK TO SAVEPOINT citusctl_writer_lock")
                        .await
                        .map_err(q)?;
                    false
                }
                Err(e) => return Err(q(e)),
            }
        }
    };
    if got {
        return Ok(());
    }
    let holder = c
        .query_opt(
            "SELECT a.pid, a.application_name, host(a.client_addr) FROM pg_catalog.pg_locks l \
               JOIN pg_catalog.pg_stat_activity a USING (pid) \
              WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid \
                AND l.objid = $2::oid AND l.objsubid = 2 AND l.database = \
                    (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
            &[&i64::from(WRITER_LOCK.0), &i64::from(WRITER_LOCK.1)],
        )
        .await
        .ok()
        .flatten()
        .map(|r| {
            format!(
                " (pid {}, {}{})",
                r.get::<_, i32>(0),
                r.get::<_, Option<String>>(1).unwrap_or_default(),
                r.get::<_, Option<String>>(2)
                    .map(|h| format!(" from {h}"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    Err(PgError::Query {
        code: Some(BUSY.into()),
        message: format!("another citusctl is writing pg_dist_node{holder}; nothing changed"),
    })
}

/// How long a node change waits for Citus to resync metadata workers first.
const METADATA_SYNC_WAIT: Duration = Duration::from_secs(30);

/// Tries of one database's transaction when it loses a lock race that leaves nothing changed.
const APPLY_TRIES: u32 = 3;

/// The server ends a writing transaction whose client went quiet for this long past the
/// statement limit (`idle_in_transaction_session_timeout`): a frozen citusctl never leaves
/// `pg_dist_node` locked.
const IDLE_SLACK_MS: u64 = 5_000;

/// Run the plan's steps in one transaction; a deadlock, or Citus 11.3's "lock ... is already
/// held" (raised by PostgreSQL's lock manager while concurrent writers' fast-path locks on
/// `pg_dist_node` are transferred; the transaction rolls back, nothing changes), is tried again
/// on a new session, at most [`APPLY_TRIES`] times.
pub async fn apply_database(
    params: &PgParams,
    coordinator: &Endpoint,
    plan: &DatabasePlan,
    opts: UpdateOptions,
) -> Result<(), PgError> {
    if plan.steps.is_empty() {
        return Ok(());
    }
    // The client's own bound on one try: connect, the metadata-sync wait, the statements
    // (each bounded by the server's statement_timeout) and COMMIT.
    let limit = params.connect_timeout
        + METADATA_SYNC_WAIT
        + Duration::from_millis(opts.statement_timeout_ms.saturating_mul(2))
        + Duration::from_secs(5);
    let what = format!("writing pg_dist_node on {coordinator}");
    let mut tries = 0;
    loop {
        tries += 1;
        match pg::bounded(limit, &what, apply_once(params, coordinator, plan, opts)).await {
            Err(e) if tries < APPLY_TRIES && is_lost_race(&e) => {
                tracing::info!("{}: {e}: trying again", plan.database);
                tokio::time::sleep(Duration::from_millis(50 * u64::from(tries))).await;
            }
            r => return r,
        }
    }
}

/// A lock race that rolled the whole transaction back: deadlock victim, or 11.3's lock glitch.
pub fn is_lost_race(e: &PgError) -> bool {
    match e.sqlstate() {
        Some("40P01") => true,
        Some("XX000") => e.to_string().contains(" is already held"),
        _ => false,
    }
}

async fn apply_once(
    params: &PgParams,
    coordinator: &Endpoint,
    plan: &DatabasePlan,
    opts: UpdateOptions,
) -> Result<(), PgError> {
    let mut client = pg::connect(params, coordinator, &plan.database).await?;
    pg::bound_session(&client, "citusctl apply").await?;
    if plan
        .steps
        .iter()
        .any(|s| !matches!(s, Step::UpdateNode { .. }))
    {
        wait_metadata_synced(&client, METADATA_SYNC_WAIT).await?;
    }
    let tx = client
        .transaction()
        .await
        .map_err(|e| PgError::from_query(&e))?;
    // The leader may have been demoted since we looked: refuse rather than fail half-way.
    let in_recovery: bool = tx
        .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])
        .await
        .map_err(|e| PgError::from_query(&e))?
        .get(0);
    if in_recovery {
        return Err(PgError::Query {
            code: None,
            message: format!("{coordinator} is in recovery: not the coordinator leader any more"),
        });
    }
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}; SET LOCAL idle_in_transaction_session_timeout = {}",
        opts.statement_timeout_ms,
        opts.statement_timeout_ms + IDLE_SLACK_MS
    ))
    .await
    .map_err(|e| PgError::from_query(&e))?;
    lock_writers(&tx, opts.when_busy).await?;
    fence(&tx, plan).await?;
    for step in &plan.steps {
        run_step(&tx, step, &opts).await?;
    }
    tx.commit().await.map_err(|e| PgError::from_query(&e))?;
    Ok(())
}

/// Run one Citus call inside the caller's transaction (a plan's, or a switchover's pause).
pub async fn run_step<C: tokio_postgres::GenericClient>(
    c: &C,
    step: &Step,
    opts: &UpdateOptions,
) -> Result<(), PgError> {
    let r = match step {
        Step::UpdateNode { nodeid, host, port } => {
            c.execute(
                "SELECT pg_catalog.citus_update_node($1::int, $2::text, $3::int, $4::bool, $5::int)",
                &[nodeid, host, &i32::from(*port), &opts.force, &opts.lock_cooldown_ms],
            )
            .await
        }
        Step::AddNode { host, port, groupid, noderole } => {
            c.execute(
                "SELECT pg_catalog.citus_add_node($1::text, $2::int, $3::int, $4::text::noderole)",
                &[host, &i32::from(*port), groupid, noderole],
            )
            .await
        }
        Step::SetCoordinatorHost { host, port } => {
            c.execute("SELECT pg_catalog.citus_set_coordinator_host($1::text, $2::int)", &[host, &i32::from(*port)])
                .await
        }
        Step::ActivateNode { host, port } => {
            c.execute("SELECT pg_catalog.citus_activate_node($1::text, $2::int)", &[host, &i32::from(*port)])
                .await
        }
    };
    r.map(|_| ()).map_err(|e| {
        let pe = PgError::from_query(&e);
        PgError::Query {
            code: pe.sqlstate().map(str::to_owned),
            message: format!("{}: {pe}", step.describe()),
        }
    })
}

/// Citus refuses to add, remove or activate nodes while a metadata worker is out of sync; its
/// maintenance daemon resyncs within a second or two of a change. Wait for it (bounded).
pub async fn wait_metadata_synced(
    client: &tokio_postgres::Client,
    limit: Duration,
) -> Result<(), PgError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let rows = client
            .query(
                "SELECT nodename || ':' || nodeport FROM pg_catalog.pg_dist_node \
                  WHERE hasmetadata AND NOT coalesce(metadatasynced, false) AND isactive AND groupid <> 0",
                &[],
            )
            .await
            .map_err(|e| PgError::from_query(&e))?;
        if rows.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            let nodes: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            return Err(PgError::Query {
                code: None,
                message: format!(
                    "Citus metadata is still out of sync on {} after {:?}",
                    nodes.join(", "),
                    limit
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::UpdateNode { nodeid, host, port } => {
                format!("citus_update_node({nodeid}, '{host}', {port})")
            }
            Step::AddNode {
                host,
                port,
                groupid,
                noderole,
            } => {
                format!("citus_add_node('{host}', {port}, {groupid}, '{noderole}')")
            }
            Step::SetCoordinatorHost { host, port } => {
                format!("citus_set_coordinator_host('{host}', {port})")
            }
            Step::ActivateNode { host, port } => format!("citus_activate_node('{host}', {port})"),
        }
    }
}

/// Set `citus.use_secondary_nodes` on one coordinator member (ALTER SYSTEM works on a hot
/// standby: it writes postgresql.auto.conf) and reload. Only new sessions see the new value;
/// `terminate_sessions` ends the other client sessions so that they reconnect with it.
pub async fn apply_setting(
    params: &PgParams,
    change: &crate::plan::SettingChange,
    dbname: &str,
    terminate_sessions: bool,
) -> Result<u64, PgError> {
    let value = match change.wanted.as_str() {
        "always" => "always",
        _ => "never",
    };
    pg::bounded(
        params.connect_timeout + pg::READ_LIMIT,
        &format!("setting citus.use_secondary_nodes on {}", change.endpoint),
        set_and_reload(params, change, dbname, value, terminate_sessions),
    )
    .await
}

async fn set_and_reload(
    params: &PgParams,
    change: &crate::plan::SettingChange,
    dbname: &str,
    value: &str,
    terminate_sessions: bool,
) -> Result<u64, PgError> {
    let c = pg::connect(params, &change.endpoint, dbname).await?;
    // A constant from the match above: nothing from outside reaches this statement.
    c.batch_execute(&format!(
        "ALTER SYSTEM SET citus.use_secondary_nodes = '{value}'"
    ))
    .await
    .map_err(|e| PgError::from_query(&e))?;
    c.execute("SELECT pg_catalog.pg_reload_conf()", &[])
        .await
        .map_err(|e| PgError::from_query(&e))?;
    if !terminate_sessions {
        return Ok(0);
    }
    let n = c
        .execute(
            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
              WHERE backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| PgError::from_query(&e))?;
    Ok(n)
}

/// `citus.use_secondary_nodes` as a member runs it now.
pub async fn read_setting(
    params: &PgParams,
    ep: &Endpoint,
    dbname: &str,
) -> Result<String, String> {
    let c = pg::connect(params, ep, dbname)
        .await
        .map_err(|e| e.to_string())?;
    let row = pg::within(
        pg::READ_LIMIT,
        &format!("PostgreSQL at {ep}"),
        c.query_one(
            "SELECT pg_catalog.current_setting('citus.use_secondary_nodes', true)",
            &[],
        ),
    )
    .await
    .map_err(|e| e.to_string())?;
    row.get::<_, Option<String>>(0)
        .ok_or_else(|| "unknown setting (is Citus loaded?)".to_owned())
}
