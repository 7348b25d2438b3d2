//! The Citus pause of one worker group: a resource that owns its method, its lock timeout and
//! its ending.
//!
//! Writes through the coordinator to a worker group wait (instead of failing) while a transaction
//! on the coordinator leader holds the group's shard locks. Two ways to take them:
//! - [`PauseMethod::Function`]: `citus_pause_node_within_txn(nodeid, force, lock_cooldown)`
//!   (Citus 12.1 and later). It changes nothing in `pg_dist_node`.
//! - [`PauseMethod::Rename`]: Citus before 12.1 has no such function; Patroni's trick renames the
//!   primary row to `<host>-demoted` with `citus_update_node` inside the transaction, which takes
//!   the same locks. COMMIT would make the rename permanent and cut the group off, so the pause
//!   owns its ending: [`GroupPause::release`] always rolls back, and [`GroupPause::commit`] runs
//!   the caller's steps and, when none of them rewrites the renamed row, puts its name back first.
//!
//! Taking the locks: Citus locks the group's shard placements one after the other, so a client
//! transaction that already wrote one of them and goes on to another forms a cycle with the pause
//! (PostgreSQL's deadlock detector then kills one side), and `force => true` terminates every
//! client in the way. The pause is therefore taken the way online schema tools take a lock:
//! `force => false` under a short `lock_timeout` (below the server's `deadlock_timeout`, so the
//! detector never fires), ROLLBACK and retry with jitter, within an overall budget. A pause that
//! cannot get every lock lets go of the ones it has and the clients go on. Terminating the
//! clients in the way is the operator's explicit choice ([`PauseOptions::terminate_after`]).
//!
//! Holding reads too ([`PauseOptions::hold_reads`], `--hold-reads`): Citus takes no lock for a
//! SELECT on a worker's shards, so the pause does not hold reads. A query through the coordinator
//! does lock the distributed table's shell relation there, though (`AccessShareLock` at parse
//! time, before routing). So each try first takes, after the writer lock and BEFORE the pause
//! (the order Citus writers take them: table, then shard locks; the other order deadlocks with
//! them), `LOCK TABLE ... IN ACCESS EXCLUSIVE MODE` on the distributed tables with a shard placed
//! in the group and not also on the coordinator, with `citus.enable_ddl_propagation` off for that
//! statement so that Citus does not send the LOCK to the workers (`AcquireDistributedLockOnRelations`
//! skips it then; checked on Citus 13.0.5: nothing is locked on the workers). Reference tables
//! with a placement on the coordinator are left out: Citus reads them there. The price: while
//! held, every query through the coordinator on those tables waits, other groups' shards
//! included; queries started on worker nodes directly are not held. The lock lives in the pause
//! transaction: same short tries, same bounds, same ending.
//!
//! Bounds: every statement has a client-side time limit; on the server the transaction carries
//! `statement_timeout` and `idle_in_transaction_session_timeout` just above the hold limit, and
//! the connection TCP keepalives and `tcp_user_timeout`, so a client that freezes or vanishes
//! never leaves the group held for longer than the hold limit. Dropping a [`GroupPause`] closes
//! its connections, which the server answers with a rollback.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;

use crate::apply::{UpdateOptions, WRITER_LOCK, run_step};
use crate::citus::DistNode;
use crate::pg::{self, PgError, PgParams, within};
use crate::plan::{DatabasePlan, Step};
use crate::topology::Endpoint;

/// How the pause takes the group's locks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseMethod {
    /// `citus_pause_node_within_txn` (Citus 12.1+): nothing in `pg_dist_node` changes.
    #[default]
    Function,
    /// Citus before 12.1: the primary row renamed to `<host>-demoted` inside the transaction.
    Rename,
}

/// The primary row a pause holds, in one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseTarget {
    pub database: String,
    pub nodeid: i32,
    pub host: String,
    pub port: u16,
}

impl PauseTarget {
    /// The group's primary row in each database: what a pause of the group holds.
    pub fn of_group(tables: &[(String, Vec<DistNode>)], groupid: i32) -> Vec<PauseTarget> {
        tables
            .iter()
            .filter_map(|(db, rows)| {
                rows.iter()
                    .find(|r| r.groupid == groupid && r.is_primary())
                    .map(|r| PauseTarget {
                        database: db.clone(),
                        nodeid: r.nodeid,
                        host: r.nodename.clone(),
                        port: u16::try_from(r.nodeport).unwrap_or(5432),
                    })
            })
            .collect()
    }

    pub fn demoted_name(&self) -> String {
        format!("{}-demoted", self.host)
    }
}

/// How long a pause may take to get, and how long it may hold.
#[derive(Debug, Clone, Copy)]
pub struct PauseOptions {
    /// Budget for getting every lock (all databases together); past it nothing changed.
    pub wait: Duration,
    /// Longest the pause may hold once it has the locks; the server enforces it too.
    pub hold: Duration,
    /// Terminate the transactions in the way after this long (Citus `force => true`) instead of
    /// giving up: the operator's explicit choice.
    pub terminate_after: Option<Duration>,
    /// Hold reads through the coordinator too: lock the group's distributed tables on the
    /// coordinator before the pause (see the module docs).
    pub hold_reads: bool,
}

/// A session in the pause's way, from `pg_stat_activity` on the coordinator leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub pid: i32,
    pub user: Option<String>,
    pub application: Option<String>,
    pub client_addr: Option<String>,
    /// How long its transaction had been open when it was seen.
    pub xact_age_ms: Option<i64>,
    pub state: Option<String>,
    /// The start of its current (or last) query.
    pub query: Option<String>,
}

impl Session {
    /// A row of `pid, usename, application_name, client host, transaction age ms, state, query`.
    fn of_row(r: &tokio_postgres::Row) -> Session {
        Session {
            pid: r.get(0),
            user: r.get(1),
            application: r.get(2),
            client_addr: r.get(3),
            xact_age_ms: r.get(4),
            state: r.get(5),
            query: r.get(6),
        }
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        let who: Vec<String> = [
            self.user.as_ref().map(|u| format!("user {u}")),
            self.application
                .as_ref()
                .filter(|a| !a.is_empty())
                .map(|a| format!("application {a}")),
            self.client_addr.as_ref().map(|c| format!("from {c}")),
            self.xact_age_ms
                .map(|ms| format!("transaction open {:.1} s", ms as f64 / 1000.0)),
            self.state.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !who.is_empty() {
            write!(f, " ({})", who.join(", "))?;
        }
        if let Some(q) = &self.query {
            write!(
                f,
                ": {}",
                q.split_whitespace().collect::<Vec<_>>().join(" ")
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("cannot pause {scope} in {database}: {source}; nothing changed")]
    Connect {
        scope: String,
        database: String,
        source: PgError,
    },
    /// The budget ran out: every try was rolled back, nothing changed.
    #[error(
        "could not pause {scope} in {database} within {}: {tries} tries, each given up after {} so that no client waits long behind the pause; nothing changed{}",
        humantime::format_duration(*waited),
        humantime::format_duration(*lock_timeout),
        blockers_text(blockers)
    )]
    Busy {
        scope: String,
        database: String,
        tries: u32,
        waited: Duration,
        lock_timeout: Duration,
        blockers: Vec<Session>,
    },
    #[error("could not pause {scope} in {database}: {plain}; nothing changed\n  ({original})")]
    Citus {
        scope: String,
        database: String,
        plain: String,
        original: String,
    },
}

impl PauseError {
    pub fn blockers(&self) -> &[Session] {
        match self {
            PauseError::Busy { blockers, .. } => blockers,
            _ => &[],
        }
    }
}

fn blockers_text(b: &[Session]) -> String {
    if b.is_empty() {
        return String::new();
    }
    let mut s = String::from(". In the way:");
    for x in b {
        s.push_str(&format!("\n    {x}"));
    }
    s.push_str(
        "\n  (end them, wait for them, or pass --terminate-after DURATION to let Citus terminate them)",
    );
    s
}

/// The pause of one group in one database.
struct Held {
    target: PauseTarget,
    client: Client,
    /// The tables locked to hold reads (empty unless `hold_reads`).
    relations: Vec<String>,
}

/// One worker group paused in every database that registers it; see the module docs.
pub struct GroupPause {
    pub scope: String,
    pub method: PauseMethod,
    held: Vec<Held>,
    /// Tries it took (all databases together).
    pub tries: u32,
    /// Of those, tries it let go because a client waited for it while it waited (a wait cycle,
    /// or one it could not rule out; see `EXPOSED_GRACE`).
    pub backed_off: u32,
    /// From the first try to holding every lock.
    pub acquired_after: Duration,
    /// When the last lock was had: what clients wait for is measured from here.
    pub held_since: Instant,
    /// Sessions Citus terminated for it (only with `terminate_after`).
    pub terminated: Vec<Session>,
    /// Whether reads were asked to be held (`PauseOptions::hold_reads`).
    pub hold_reads: bool,
    hold: Duration,
}

/// Tries so far, all databases together.
#[derive(Debug, Default)]
struct Tries {
    tries: u32,
    backed_off: u32,
}

/// What a statement of the pause may take on the client, over the server's own bound.
const SLACK: Duration = Duration::from_secs(2);

/// `lock_timeout` of one try: short, and under the server's `deadlock_timeout`.
pub fn lock_timeout_for(deadlock_timeout: Duration) -> Duration {
    (deadlock_timeout / 2).clamp(Duration::from_millis(10), Duration::from_millis(100))
}

/// Is this error the pause losing a lock race (nothing changed, try again)? Lock timeout,
/// deadlock victim, and Citus 11.3's "lock ... is already held" under concurrent writers.
pub fn is_lock_conflict(e: &PgError) -> bool {
    match e {
        PgError::Query { code, message } => match code.as_deref() {
            Some("55P03") | Some("40P01") => true,
            Some("XX000") => message.starts_with("lock ") && message.contains(" is already held"),
            _ => false,
        },
        _ => false,
    }
}

/// Which method this coordinator offers (for the plan, before anything is taken).
pub async fn method_on(pg: &PgParams, cn: &Endpoint, db: &str) -> Result<PauseMethod, PgError> {
    let c = pg::connect(pg, cn, db).await?;
    detect(&c).await
}

async fn detect(c: &Client) -> Result<PauseMethod, PgError> {
    let has: bool = within(
        Duration::from_secs(10),
        "looking up citus_pause_node_within_txn",
        c.query_one(
            "SELECT pg_catalog.to_regprocedure('pg_catalog.citus_pause_node_within_txn(integer,boolean,integer)') IS NOT NULL",
            &[],
        ),
    )
    .await?
    .get(0);
    Ok(if has {
        PauseMethod::Function
    } else {
        PauseMethod::Rename
    })
}

impl PauseMethod {
    /// For plans and progress lines: "citus_pause_node_within_txn" or "rename of row N ...".
    pub fn describe(self, nodeid: i32) -> String {
        match self {
            PauseMethod::Function => "citus_pause_node_within_txn".into(),
            PauseMethod::Rename => format!(
                "rename of row {nodeid} to <host>-demoted (Citus before 12.1, no pause function)"
            ),
        }
    }
}

fn jitter() -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    Duration::from_millis(20 + h.finish() % 61)
}

const BLOCKERS_SQL: &str = "SELECT a.pid, a.usename::text, a.application_name, host(a.client_addr), \
       (EXTRACT(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint, a.state, left(a.query, 160) \
  FROM pg_catalog.pg_stat_activity a \
 WHERE a.pid = ANY (pg_catalog.pg_blocking_pids($1)) \
 ORDER BY a.xact_start NULLS LAST, a.pid";

/// What the watcher sees of a try, on the coordinator leader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Exposure {
    /// A session the pause waits for waits for the pause: a cycle PostgreSQL can see.
    cycle: bool,
    /// The pause waits for a lock.
    waits: bool,
    /// Some session waits for a lock the pause holds (or queues behind it).
    waited_on: bool,
}

/// One look: three facts in one statement (`pg_blocking_pids` only for sessions that wait on a
/// lock, so the look stays cheap under load).
const EXPOSURE_SQL: &str = "SELECT \
       EXISTS (SELECT 1 FROM unnest(pg_catalog.pg_blocking_pids($1)) b \
                WHERE $1 = ANY (pg_catalog.pg_blocking_pids(b))), \
       cardinality(pg_catalog.pg_blocking_pids($1)) > 0, \
       EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a \
                WHERE a.wait_event_type = 'Lock' AND a.pid <> $1 \
                  AND $1 = ANY (pg_catalog.pg_blocking_pids(a.pid)))";

async fn exposure(side: &Client, pid: i32) -> Exposure {
    within(
        Duration::from_secs(1),
        "pg_blocking_pids",
        side.query_one(EXPOSURE_SQL, &[&pid]),
    )
    .await
    .map(|r| Exposure {
        cycle: r.get(0),
        waits: r.get(1),
        waited_on: r.get(2),
    })
    .unwrap_or_default()
}

/// How long a try may wait for a lock while a client waits for it, before it backs off.
///
/// A wait cycle through a worker (the pause waits on the coordinator for client X's shard lock,
/// X waits on a worker for client Y's row lock, Y waits on the coordinator for the pause) is
/// invisible on the coordinator: PostgreSQL's detector never sees it, but Citus's distributed
/// deadlock detector does, at its next run (every `2 x deadlock_timeout`), and it cancels the
/// youngest transaction of the cycle: the pause's try if every client in it is older, a client
/// (which then fails) if one began after the try. Every such cycle needs someone waiting for the
/// pause while the pause waits, and that the watcher can see. A try in that state for longer
/// than the grace lets go: a wait that is not a cycle ends sooner (X commits), and one that is
/// ends at the watcher's next poll instead of at the try's `lock_timeout` (up to 100 ms).
///
/// 25 ms: measured against none and against 100 ms (the try's own `lock_timeout`) with
/// bench/pause_deadlocks.sh on Citus 13.0.5 (BENCHMARKS.md). With none, under heavy load some
/// client nearly always waits for a try, and pauses took up to 7.7 s or were not had at all
/// within 10 s.
const EXPOSED_GRACE: Duration = Duration::from_millis(25);

/// The watcher's rule: back off now? `since` is when the try was first seen both waiting and
/// waited on, kept across polls (`None` when it was not).
fn should_back_off(
    seen: Exposure,
    grace: Duration,
    since: &mut Option<Instant>,
    now: Instant,
) -> bool {
    if seen.cycle {
        return true;
    }
    if seen.waits && seen.waited_on {
        let first = *since.get_or_insert(now);
        now.duration_since(first) >= grace
    } else {
        *since = None;
        false
    }
}

/// Cancel the pause's own try (it waits for a lock; nothing is held past the rollback). Did the
/// server take the cancel? The pid is typed: Citus (11.0 and later) adds
/// `pg_cancel_backend(global_pid bigint)`, and with an untyped parameter the call is ambiguous
/// (42725), so the try would go on waiting while the watcher thinks it let go.
async fn cancel(side: &Client, pid: i32) -> bool {
    within(
        Duration::from_secs(1),
        "pg_cancel_backend",
        side.query_one("SELECT pg_catalog.pg_cancel_backend($1::integer)", &[&pid]),
    )
    .await
    .is_ok_and(|r| r.get(0))
}

async fn blockers(side: &Client, pid: i32) -> Vec<Session> {
    let rows = match within(
        Duration::from_secs(2),
        "pg_blocking_pids",
        side.query(BLOCKERS_SQL, &[&pid]),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    rows.iter().map(Session::of_row).collect()
}

/// Makes this try a distributed transaction of its own, as young as can be: Citus's
/// distributed deadlock detector cancels the youngest distributed transaction of a cycle, so
/// that is the pause's try (retried) rather than a client's transaction. A transaction without a
/// distributed id counts as the oldest there, and a client would be cancelled instead. Citus's
/// `create_intermediate_result` assigns the id (`UseCoordinatedTransaction`) and writes one
/// local row to a file that the transaction's end removes; it exists from Citus 8 to 14.
const YOUNGEST_SQL: &str =
    "; SELECT pg_catalog.create_intermediate_result('citusctl_pause', 'SELECT 1')";

async fn offers_distributed_id(pg: &PgParams, cn: &Endpoint, db: &str) -> bool {
    let Ok(c) = pg::connect(pg, cn, db).await else {
        return false;
    };
    within(
        Duration::from_secs(10),
        "looking up create_intermediate_result",
        c.query_one(
            "SELECT pg_catalog.to_regprocedure('pg_catalog.create_intermediate_result(text,text)') IS NOT NULL",
            &[],
        ),
    )
    .await
    .is_ok_and(|r| r.get(0))
}

/// A session for the pause: its pid, the method the server offers, its `deadlock_timeout` (ms),
/// and server-side bounds that outlive this process: a dead network is noticed in seconds, not
/// hours (TCP keepalives, `tcp_user_timeout`; all user-settable, the values are our own).
async fn open_session(
    pg: &PgParams,
    cn: &Endpoint,
    scope: &str,
    db: &str,
) -> Result<(Client, i32, PauseMethod, i64), PgError> {
    let c = pg::connect(pg, cn, db).await?;
    let method = detect(&c).await?;
    let row = within(
        Duration::from_secs(10),
        "reading deadlock_timeout",
        c.query_one(
            "SELECT pg_catalog.pg_backend_pid(), \
                    (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'deadlock_timeout')",
            &[],
        ),
    )
    .await?;
    pg::bound_session(&c, &format!("citusctl pause {scope}")).await?;
    Ok((c, row.get(0), method, row.get(1)))
}

/// The distributed tables whose reads through the coordinator a pause of the group holds: a
/// shard placed in the group and not also on the coordinator (group 0, where Citus reads a
/// reference table it holds). Names as `regclass` prints them in this session (quoted where
/// needed), in oid order so that every locker takes them in the same order.
const RELATIONS_SQL: &str = "SELECT s.logicalrelid::regclass::text \
  FROM pg_catalog.pg_dist_shard s \
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p \
                WHERE p.shardid = s.shardid \
                  AND p.groupid = (SELECT n.groupid FROM pg_catalog.pg_dist_node n WHERE n.nodeid = $1)) \
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p0 \
                    WHERE p0.shardid = s.shardid AND p0.groupid = 0) \
 GROUP BY s.logicalrelid ORDER BY s.logicalrelid::oid";

/// How a try locks the tables: under `short` (the short try's lock_timeout, even when the pause
/// itself may wait longer for Citus to terminate sessions: a pending ACCESS EXCLUSIVE lock queues
/// every new query on the table, and nobody terminates readers), then `lock_timeout` back to
/// `then` for the pause.
#[derive(Debug, Clone, Copy)]
struct TableLock {
    short: Duration,
    then: Duration,
}

/// Lock the group's tables on the coordinator only (see the module docs): Citus does not
/// propagate LOCK while `citus.enable_ddl_propagation` is off, which lasts for this statement
/// only (the setting is put back as it was, within the transaction).
async fn lock_tables(
    c: &Client,
    t: &PauseTarget,
    how: TableLock,
    limit: Duration,
) -> Result<Vec<String>, PgError> {
    let rows = within(
        limit,
        "finding the group's distributed tables",
        c.query(RELATIONS_SQL, &[&t.nodeid]),
    )
    .await?;
    let relations: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if relations.is_empty() {
        return Ok(relations);
    }
    let was: Option<String> = within(
        limit,
        "reading citus.enable_ddl_propagation",
        c.query_one(
            "SELECT pg_catalog.current_setting('citus.enable_ddl_propagation', true)",
            &[],
        ),
    )
    .await?
    .get(0);
    // The names come from regclass output (quoted by the server), not from the user.
    within(
        limit,
        "LOCK TABLE ... IN ACCESS EXCLUSIVE MODE",
        c.batch_execute(&format!(
            "SET LOCAL lock_timeout = {}; SET LOCAL citus.enable_ddl_propagation = off; \
             LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            ms(how.short),
            relations.join(", ")
        )),
    )
    .await?;
    within(
        limit,
        "putting citus.enable_ddl_propagation back",
        c.execute(
            "SELECT pg_catalog.set_config('citus.enable_ddl_propagation', $1, true), \
                    pg_catalog.set_config('lock_timeout', $2, true)",
            &[
                &was.unwrap_or_else(|| "on".into()),
                &format!("{}ms", ms(how.then)),
            ],
        ),
    )
    .await?;
    Ok(relations)
}

/// The pause's call, for one try. Returns the tables locked to hold reads.
#[allow(clippy::too_many_arguments)]
async fn call(
    c: &Client,
    method: PauseMethod,
    t: &PauseTarget,
    force: bool,
    cooldown_ms: i32,
    limit: Duration,
    tables: Option<TableLock>,
) -> Result<Vec<String>, PgError> {
    // The writer lock first (crate::apply::WRITER_LOCK): no other citusctl writes pg_dist_node
    // or pauses while this pause holds. It waits under the try's lock_timeout like the rest.
    within(
        limit,
        "the citusctl writer lock",
        c.execute(
            "SELECT pg_catalog.pg_advisory_xact_lock($1, $2)",
            &[&WRITER_LOCK.0, &WRITER_LOCK.1],
        ),
    )
    .await?;
    // Reads: the tables first, then the pause (the order Citus writers lock them in).
    let relations = match tables {
        Some(how) => lock_tables(c, t, how, limit).await?,
        None => Vec::new(),
    };
    match method {
        PauseMethod::Function => within(
            limit,
            "citus_pause_node_within_txn",
            c.execute(
                "SELECT pg_catalog.citus_pause_node_within_txn($1::int, $2::bool, $3::int)",
                &[&t.nodeid, &force, &cooldown_ms],
            ),
        )
        .await
        .map(|_| relations),
        PauseMethod::Rename => within(
            limit,
            "citus_update_node",
            c.execute(
                "SELECT pg_catalog.citus_update_node($1::int, $2::text, $3::int, $4::bool, $5::int)",
                &[
                    &t.nodeid,
                    &t.demoted_name(),
                    &i32::from(t.port),
                    &force,
                    &cooldown_ms,
                ],
            ),
        )
        .await
        .map(|_| relations),
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

impl GroupPause {
    /// "1 try", "3 tries" or "3 tries, 2 let go for a client waiting on the pause", for
    /// progress lines.
    pub fn tries_text(&self) -> String {
        let n = match self.tries {
            1 => "1 try".to_owned(),
            n => format!("{n} tries"),
        };
        match self.backed_off {
            0 => n,
            b => format!("{n}, {b} let go for a client waiting on the pause"),
        }
    }

    /// Pause `scope` in every target database on the coordinator leader `cn`, within
    /// `opts.wait`. On any failure every lock already had is let go: nothing changed.
    /// `on_try` hears of each lost try (for progress lines).
    pub async fn acquire(
        pg: &PgParams,
        cn: &Endpoint,
        scope: &str,
        targets: &[PauseTarget],
        opts: &PauseOptions,
        on_try: &(dyn Fn(&str) + Sync),
    ) -> Result<GroupPause, PauseError> {
        let started = Instant::now();
        let budget = match opts.terminate_after {
            Some(t) => opts.wait.max(t + SLACK),
            None => opts.wait,
        };
        let deadline = started + budget;
        let mut held: Vec<Held> = Vec::new();
        let mut tries = Tries::default();
        let mut terminated = Vec::new();
        let mut method = PauseMethod::Function;
        for t in targets {
            match Self::acquire_one(pg, cn, scope, t, opts, deadline, &mut tries, on_try).await {
                Ok((h, m, ended)) => {
                    method = m;
                    terminated.extend(ended);
                    held.push(h);
                }
                Err(e) => {
                    release_all(held).await;
                    return Err(e);
                }
            }
        }
        Ok(GroupPause {
            scope: scope.to_owned(),
            method,
            held,
            tries: tries.tries,
            backed_off: tries.backed_off,
            acquired_after: started.elapsed(),
            held_since: Instant::now(),
            terminated,
            hold_reads: opts.hold_reads,
            hold: opts.hold,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn acquire_one(
        pg: &PgParams,
        cn: &Endpoint,
        scope: &str,
        t: &PauseTarget,
        opts: &PauseOptions,
        deadline: Instant,
        count: &mut Tries,
        on_try: &(dyn Fn(&str) + Sync),
    ) -> Result<(Held, PauseMethod, Vec<Session>), PauseError> {
        let connect_err = |source| PauseError::Connect {
            scope: scope.to_owned(),
            database: t.database.clone(),
            source,
        };
        let distributed_id = offers_distributed_id(pg, cn, &t.database).await;
        let (mut c, mut pid, method, deadlock_ms) = open_session(pg, cn, scope, &t.database)
            .await
            .map_err(connect_err)?;
        let hold = opts.hold;

        let (force, cooldown, lock_timeout) = match opts.terminate_after {
            // Citus waits the cooldown, then terminates whoever is in the way: give it time.
            Some(after) => (true, after, after + SLACK),
            None => (
                false,
                Duration::ZERO,
                lock_timeout_for(Duration::from_millis(deadlock_ms.max(1) as u64)),
            ),
        };
        let cooldown_ms = i32::try_from(cooldown.as_millis()).unwrap_or(i32::MAX);
        // The watcher's session (see below), from the first try.
        let mut side: Option<Client> = pg::connect(pg, cn, &t.database).await.ok();
        let mut seen: Vec<Session> = Vec::new();
        let first = Instant::now();
        loop {
            count.tries += 1;
            let tries = count.tries;
            let setup = format!(
                "BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}; \
                 SET LOCAL idle_in_transaction_session_timeout = {}{}",
                ms(lock_timeout),
                ms(hold),
                ms(hold + SLACK),
                if distributed_id { YOUNGEST_SQL } else { "" }
            );
            within(Duration::from_secs(10), "BEGIN", c.batch_execute(&setup))
                .await
                .map_err(connect_err)?;
            let limit = lock_timeout + hold + SLACK;
            // A second session watches this try every 10 ms. A client that already holds one of
            // the group's shards and now waits for one the pause holds forms a cycle with it.
            // PostgreSQL's own detector never fires (the try gives up before deadlock_timeout),
            // but Citus's distributed deadlock detector (every 2 x deadlock_timeout) would, and it
            // cancels the youngest distributed transaction in the cycle: a client's, if it began
            // after the try. So the pause backs off, by cancelling its own try, the moment it
            // closes a cycle, and when it has waited while waited on for longer than
            // `EXPOSED_GRACE` (a cycle through a worker, see there). The watcher also notes who
            // is in the way, to name them when the budget runs out or Citus terminates them.
            let watched = std::cell::RefCell::new(Vec::new());
            let cancel_sent = std::cell::Cell::new(false);
            let result = {
                let tables = opts.hold_reads.then_some(TableLock {
                    short: lock_timeout_for(Duration::from_millis(deadlock_ms.max(1) as u64)),
                    then: lock_timeout,
                });
                // The try ends with the hold limit in place of the short lock_timeout (later
                // statements, the caller's steps, are bounded by it): still within the watched
                // attempt, so that a cancel of the watcher that comes late lands here, as a lost
                // race, and never on a statement after it.
                let attempt = async {
                    let relations = call(&c, method, t, force, cooldown_ms, limit, tables).await?;
                    within(
                        Duration::from_secs(10),
                        "SET LOCAL lock_timeout",
                        c.batch_execute(&format!("SET LOCAL lock_timeout = {}", ms(hold))),
                    )
                    .await?;
                    Ok::<_, PgError>(relations)
                };
                match &side {
                    Some(s) => {
                        let watch = async {
                            let mut n: u32 = 0;
                            let mut exposed_since = None;
                            loop {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                n += 1;
                                if !force
                                    && should_back_off(
                                        exposure(s, pid).await,
                                        EXPOSED_GRACE,
                                        &mut exposed_since,
                                        Instant::now(),
                                    )
                                {
                                    cancel_sent.set(true);
                                    if cancel(s, pid).await {
                                        std::future::pending::<()>().await;
                                    }
                                }
                                if n.is_multiple_of(5) {
                                    let b = blockers(s, pid).await;
                                    if !b.is_empty() {
                                        *watched.borrow_mut() = b;
                                    }
                                }
                            }
                        };
                        tokio::select! {
                            r = attempt => r,
                            _ = watch => unreachable!("the watcher never ends"),
                        }
                    }
                    None => attempt.await,
                }
            };
            // A cancel the watcher sent as the try ended has reached the server once a later
            // statement on the watcher's session is answered: it then hit the try, or the
            // session while idle (where the server drops it), never what follows.
            if cancel_sent.get()
                && let Some(s) = &side
            {
                let _ = within(
                    Duration::from_secs(1),
                    "SELECT 1",
                    s.batch_execute("SELECT 1"),
                )
                .await;
            }
            let last = watched.into_inner();
            if !last.is_empty() {
                seen = last;
            }
            let result = match result {
                // Our own cancel: a lost race like a lock timeout. Counted here, where it is
                // seen to have hit the try (its answer can come before the watcher's own).
                Err(e) if cancel_sent.get() && e.sqlstate() == Some("57014") => {
                    count.backed_off += 1;
                    Err(PgError::Query {
                        code: Some("55P03".into()),
                        message: "backed off: a client waited for the pause while the pause waited for it".into(),
                    })
                }
                r => r,
            };
            match result {
                Ok(relations) => {
                    let ended = if force {
                        still_gone(side.as_ref(), &seen).await
                    } else {
                        Vec::new()
                    };
                    return Ok((
                        Held {
                            target: t.clone(),
                            client: c,
                            relations,
                        },
                        method,
                        ended,
                    ));
                }
                Err(e) => {
                    let _ = within(
                        Duration::from_secs(10),
                        "ROLLBACK",
                        c.batch_execute("ROLLBACK"),
                    )
                    .await;
                    if !is_lock_conflict(&e) {
                        return Err(PauseError::Citus {
                            scope: scope.to_owned(),
                            database: t.database.clone(),
                            plain: "Citus refused the pause".into(),
                            original: e.to_string(),
                        });
                    }
                    let pause = jitter();
                    if Instant::now() + pause >= deadline {
                        if seen.is_empty()
                            && let Some(s) = &side
                        {
                            seen = sessions_in_transaction(s, pid).await;
                        }
                        return Err(if e.sqlstate() == Some("XX000") {
                            PauseError::Citus {
                                scope: scope.to_owned(),
                                database: t.database.clone(),
                                plain: format!(
                                    "a lock conflict inside Citus, {} tries in {}",
                                    tries,
                                    humantime::format_duration(Duration::from_millis(
                                        first.elapsed().as_millis() as u64
                                    ))
                                ),
                                original: e.to_string(),
                            }
                        } else {
                            PauseError::Busy {
                                scope: scope.to_owned(),
                                database: t.database.clone(),
                                tries,
                                waited: Duration::from_millis(first.elapsed().as_millis() as u64),
                                lock_timeout,
                                blockers: seen,
                            }
                        });
                    }
                    if tries == 1 || tries.is_multiple_of(10) {
                        on_try(&format!(
                            "{scope} in {}: try {} lost a lock race ({}); trying again",
                            t.database, tries, e
                        ));
                    }
                    if side.as_ref().is_none_or(|s| s.is_closed()) {
                        side = pg::connect(pg, cn, &t.database).await.ok();
                    }
                    tokio::time::sleep(pause).await;
                    if e.sqlstate() == Some("XX000") {
                        // Citus 11.3's "lock ... is already held" can leave a lock behind in the
                        // backend that only its exit releases: try again on a new session.
                        (c, pid, _, _) = open_session(pg, cn, scope, &t.database)
                            .await
                            .map_err(connect_err)?;
                    }
                }
            }
        }
    }

    /// Each database's connection, to run statements inside the pause.
    pub fn client(&self, database: &str) -> Option<&Client> {
        self.held
            .iter()
            .find(|h| h.target.database == database)
            .map(|h| &h.client)
    }

    pub fn databases(&self) -> impl Iterator<Item = &str> {
        self.held.iter().map(|h| h.target.database.as_str())
    }

    /// The tables whose reads through the coordinator wait (with `hold_reads`); with more than
    /// one database, each name says its database.
    pub fn relations(&self) -> Vec<String> {
        let many = self.held.len() > 1;
        self.held
            .iter()
            .flat_map(|h| {
                h.relations.iter().map(move |r| {
                    if many {
                        format!("{r} (database {})", h.target.database)
                    } else {
                        r.clone()
                    }
                })
            })
            .collect()
    }

    /// For progress lines: what is held besides writes ("" without hold_reads).
    pub fn reads_text(&self) -> String {
        if !self.hold_reads {
            return String::new();
        }
        let r = self.relations();
        if r.is_empty() {
            "; reads: no distributed table has a shard only in this group, nothing to hold".into()
        } else {
            format!(
                "; reads through the coordinator held on {} table{}: {}",
                r.len(),
                if r.len() == 1 { "" } else { "s" },
                r.join(", ")
            )
        }
    }

    pub fn held_for(&self) -> Duration {
        self.held_since.elapsed()
    }

    /// How long the pause may still hold before the server ends it.
    pub fn remaining(&self) -> Duration {
        self.hold.saturating_sub(self.held_for())
    }

    /// End the pause without a change: ROLLBACK everywhere, whatever the method (the rename
    /// is undone with it).
    pub async fn release(self) {
        release_all(self.held).await;
    }

    /// End the pause with a change: in each database, the caller's steps, then (rename) the
    /// row's own name back unless a step rewrote that row, then COMMIT everywhere. When a
    /// step fails, everything rolls back and nothing changes. Returns the steps that were run
    /// per database, restores included.
    pub async fn commit(
        self,
        plans: &[DatabasePlan],
        opts: &UpdateOptions,
    ) -> Result<Vec<(String, Vec<Step>)>, (String, PgError)> {
        let mut done = Vec::new();
        for h in &self.held {
            let plan = plans.iter().find(|d| d.database == h.target.database);
            let mut mine = plan.map(|d| d.steps.clone()).unwrap_or_default();
            if let Some(restore) = restore_step(self.method, &h.target, &mine) {
                mine.push(restore);
            }
            // Fenced as every writer is: the rows are still what the plan was made from (the
            // pause's own rename aside), read FOR UPDATE before the first step.
            let expected = plan
                .map(|d| {
                    expected_under_pause(self.method, &h.target, &crate::apply::planned_rows(d))
                })
                .unwrap_or_default();
            if let Err(e) = crate::apply::fence_rows(&h.client, &expected).await {
                let db = h.target.database.clone();
                release_all(self.held).await;
                return Err((db, e));
            }
            for s in &mine {
                if let Err(e) = run_step(&h.client, s, opts).await {
                    let db = h.target.database.clone();
                    release_all(self.held).await;
                    return Err((db, e));
                }
            }
            done.push((h.target.database.clone(), mine));
        }
        let mut first_err = None;
        for h in self.held {
            if let Err(e) = within(SLACK * 5, "COMMIT", h.client.batch_execute("COMMIT")).await
                && first_err.is_none()
            {
                first_err = Some((h.target.database.clone(), e));
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}

/// The rows a plan saw, as they read inside the pause: the rename method has renamed the
/// target row to `<host>-demoted` in this very transaction.
fn expected_under_pause(
    method: PauseMethod,
    t: &PauseTarget,
    planned: &[(i32, String)],
) -> Vec<(i32, String)> {
    planned
        .iter()
        .map(|(id, was)| {
            if method == PauseMethod::Rename && *id == t.nodeid {
                (*id, format!("{}:{}", t.demoted_name(), t.port))
            } else {
                (*id, was.clone())
            }
        })
        .collect()
}

/// The step that puts a renamed row's name back, when the plan does not rewrite that row.
pub fn restore_step(method: PauseMethod, t: &PauseTarget, steps: &[Step]) -> Option<Step> {
    if method != PauseMethod::Rename {
        return None;
    }
    let rewritten = steps
        .iter()
        .any(|s| matches!(s, Step::UpdateNode { nodeid, .. } if *nodeid == t.nodeid));
    (!rewritten).then(|| Step::UpdateNode {
        nodeid: t.nodeid,
        host: t.host.clone(),
        port: t.port,
    })
}

async fn release_all(held: Vec<Held>) {
    for h in held {
        let _ = within(SLACK * 5, "ROLLBACK", h.client.batch_execute("ROLLBACK")).await;
    }
}

/// Of the sessions seen in the way, those that no longer exist: Citus terminated them.
async fn still_gone(side: Option<&Client>, seen: &[Session]) -> Vec<Session> {
    let Some(s) = side else {
        return Vec::new();
    };
    if seen.is_empty() {
        return Vec::new();
    }
    let pids: Vec<i32> = seen.iter().map(|x| x.pid).collect();
    let alive: Vec<i32> = match within(
        Duration::from_secs(2),
        "pg_stat_activity",
        s.query(
            "SELECT pid FROM pg_catalog.pg_stat_activity WHERE pid = ANY ($1)",
            &[&pids],
        ),
    )
    .await
    {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(_) => return Vec::new(),
    };
    seen.iter()
        .filter(|x| !alive.contains(&x.pid))
        .cloned()
        .collect()
}

/// When no try was watched: the client sessions with a transaction open, oldest first.
async fn sessions_in_transaction(side: &Client, pause_pid: i32) -> Vec<Session> {
    let rows = match within(
        Duration::from_secs(2),
        "pg_stat_activity",
        side.query(
            "SELECT a.pid, a.usename::text, a.application_name, host(a.client_addr), \
                    (EXTRACT(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint, a.state, left(a.query, 160) \
               FROM pg_catalog.pg_stat_activity a \
              WHERE a.backend_type = 'client backend' AND a.xact_start IS NOT NULL \
                AND a.pid NOT IN ($1, pg_catalog.pg_backend_pid()) \
              ORDER BY a.xact_start LIMIT 5",
            &[&pause_pid],
        ),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    rows.iter().map(Session::of_row).collect()
}

/// The pause of a switchover or a restart, for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PauseReport {
    /// `function` (citus_pause_node_within_txn) or `rename` (Citus before 12.1).
    pub method: PauseMethod,
    pub tries: u32,
    /// Of those, tries let go because a client waited for the pause while it waited.
    pub backed_off: u32,
    /// From the first try to holding every lock.
    pub acquired_after_ms: Option<u64>,
    /// From holding the locks to letting go.
    pub held_ms: Option<u64>,
    /// Sessions Citus terminated to get it (only with --terminate-after).
    pub terminated: Vec<Session>,
    /// Sessions in its way when it could not be had.
    pub blockers: Vec<Session>,
    /// With --hold-reads: the tables locked on the coordinator, whose reads through it waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_relations: Option<Vec<String>>,
}

impl PauseReport {
    pub fn held(p: &GroupPause) -> PauseReport {
        PauseReport {
            method: p.method,
            tries: p.tries,
            backed_off: p.backed_off,
            acquired_after_ms: Some(p.acquired_after.as_millis() as u64),
            held_ms: None,
            terminated: p.terminated.clone(),
            blockers: Vec::new(),
            held_relations: p.hold_reads.then(|| p.relations()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> PauseTarget {
        PauseTarget {
            database: "postgres".into(),
            nodeid: 2,
            host: "10.0.0.3".into(),
            port: 5432,
        }
    }

    #[test]
    fn inside_a_rename_pause_the_fence_expects_the_renamed_row() {
        let planned = vec![
            (2, "10.0.0.3:5432".to_owned()),
            (9, "10.0.0.4:5432".to_owned()),
        ];
        assert_eq!(
            expected_under_pause(PauseMethod::Rename, &target(), &planned),
            vec![
                (2, "10.0.0.3-demoted:5432".to_owned()),
                (9, "10.0.0.4:5432".to_owned())
            ]
        );
        assert_eq!(
            expected_under_pause(PauseMethod::Function, &target(), &planned),
            planned
        );
    }

    #[test]
    fn the_function_needs_no_restore() {
        assert_eq!(restore_step(PauseMethod::Function, &target(), &[]), None);
    }

    #[test]
    fn a_rename_is_put_back_unless_the_plan_rewrites_the_row() {
        let back = Step::UpdateNode {
            nodeid: 2,
            host: "10.0.0.3".into(),
            port: 5432,
        };
        assert_eq!(
            restore_step(PauseMethod::Rename, &target(), &[]),
            Some(back.clone())
        );
        // Another row's update does not count.
        let other = Step::UpdateNode {
            nodeid: 7,
            host: "10.0.0.9".into(),
            port: 5432,
        };
        assert_eq!(
            restore_step(PauseMethod::Rename, &target(), std::slice::from_ref(&other)),
            Some(back)
        );
        let moved = Step::UpdateNode {
            nodeid: 2,
            host: "10.0.0.4".into(),
            port: 5432,
        };
        assert_eq!(restore_step(PauseMethod::Rename, &target(), &[moved]), None);
    }

    #[test]
    fn the_watcher_backs_off_at_a_cycle_and_when_waited_on_while_waiting() {
        let t0 = Instant::now();
        let grace = Duration::from_millis(20);
        let later = t0 + grace;
        let mut since = None;
        // Waiting alone (nobody behind the pause) is a lock race like any other: wait on.
        let waits = Exposure {
            waits: true,
            ..Exposure::default()
        };
        assert!(!should_back_off(waits, Duration::ZERO, &mut since, t0));
        assert!(!should_back_off(waits, grace, &mut since, later));
        assert_eq!(since, None);
        // Holding with clients queued behind, waiting for nothing: the pause is about to hold.
        let held = Exposure {
            waited_on: true,
            ..Exposure::default()
        };
        assert!(!should_back_off(held, Duration::ZERO, &mut since, later));
        // A local cycle: at once, whatever the grace.
        let cycle = Exposure {
            cycle: true,
            waits: true,
            waited_on: true,
        };
        assert!(should_back_off(cycle, EXPOSED_GRACE, &mut None, t0));
        // Waiting while waited on: once it has lasted the grace, counted from the first look
        // that saw it, and the count starts again when it stops.
        let exposed = Exposure {
            waits: true,
            waited_on: true,
            ..Exposure::default()
        };
        assert!(should_back_off(exposed, Duration::ZERO, &mut None, t0));
        let mut since = None;
        assert!(!should_back_off(exposed, grace, &mut since, t0));
        assert_eq!(since, Some(t0));
        assert!(!should_back_off(exposed, grace, &mut since, t0 + grace / 2));
        assert!(should_back_off(exposed, grace, &mut since, later));
        assert!(!should_back_off(waits, grace, &mut since, later));
        assert_eq!(since, None);
    }

    #[test]
    fn one_try_stays_under_deadlock_timeout() {
        assert_eq!(
            lock_timeout_for(Duration::from_secs(1)),
            Duration::from_millis(100)
        );
        assert_eq!(
            lock_timeout_for(Duration::from_millis(100)),
            Duration::from_millis(50)
        );
        assert_eq!(
            lock_timeout_for(Duration::from_millis(1)),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn lock_races_are_retried_and_other_errors_are_not() {
        let q = |code: &str, message: &str| PgError::Query {
            code: Some(code.into()),
            message: message.into(),
        };
        assert!(is_lock_conflict(&q(
            "55P03",
            "canceling statement due to lock timeout"
        )));
        assert!(is_lock_conflict(&q("40P01", "deadlock detected")));
        assert!(is_lock_conflict(&q(
            "XX000",
            "lock AccessShareLock on object 5/16514/0 is already held"
        )));
        assert!(!is_lock_conflict(&q("XX000", "node 9 not found")));
        assert!(!is_lock_conflict(&q("P0002", "node 9 not found")));
    }

    #[test]
    fn a_session_names_who_and_what() {
        let s = Session {
            pid: 42,
            user: Some("app".into()),
            application: Some("pgbench".into()),
            client_addr: Some("10.0.0.8".into()),
            xact_age_ms: Some(12_345),
            state: Some("idle in transaction".into()),
            query: Some("UPDATE t\n   SET v = 1".into()),
        };
        assert_eq!(
            s.to_string(),
            "pid 42 (user app, application pgbench, from 10.0.0.8, transaction open 12.3 s, idle in transaction): UPDATE t SET v = 1"
        );
    }
}
