//! Moving shards: Citus's background rebalance (`citus_rebalance_start`) and the drain of a
//! worker group before it is removed, shared by `rebalance`, `add-worker --rebalance` and
//! `remove-worker`.
//!
//! Citus plans (`get_rebalance_table_shards_plan`), Citus moves (a background job of one task per
//! shard move), and we follow the job (`citus_rebalance_status`, `get_rebalance_progress`) with a
//! progress bar on a terminal, plain lines otherwise. The job lives in the coordinator: Ctrl-C or
//! a lost connection leaves it running, and the next run follows it instead of starting another.
//! Before a start we check what makes a move fail or retry forever: tables that logical
//! replication cannot publish, `wal_level` below `logical`, too few `max_worker_processes`.
//!
//! Draining (Citus 13's documented background path): `citus_set_node_property(host, port,
//! 'shouldhaveshards', false)` under citusctl's writer lock, then
//! `citus_rebalance_start(drain_only := true)`. Unlike `citus_drain_node`, which moves in the
//! foreground of one session, the drain then survives Ctrl-C and is followed like any rebalance.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::apply::{WhenBusy, fence_rows, lock_writers, wait_metadata_synced};
use crate::citus::DistNode;
use crate::pg::{self, PgError, PgParams};
use crate::topology::Endpoint;

/// How Citus copies a shard (`citus.shard_transfer_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TransferMode {
    /// Logical replication when every table has a replica identity, else refuse.
    #[default]
    Auto,
    /// Logical replication even without a replica identity (UPDATE/DELETE fail during the move).
    #[value(name = "force_logical")]
    ForceLogical,
    /// COPY with writes blocked while a shard moves (no logical replication needed).
    #[value(name = "block_writes")]
    BlockWrites,
}

impl TransferMode {
    pub fn as_sql(self) -> &'static str {
        match self {
            TransferMode::Auto => "auto",
            TransferMode::ForceLogical => "force_logical",
            TransferMode::BlockWrites => "block_writes",
        }
    }
    fn logical(self) -> bool {
        self != TransferMode::BlockWrites
    }
}

/// One move of Citus's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    pub table: String,
    pub shardid: i64,
    pub shard_size: i64,
    pub source: String,
    pub target: String,
}

/// A background job's state (`citus_job_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Scheduled,
    Running,
    Finished,
    Cancelling,
    Cancelled,
    Failing,
    Failed,
}

impl JobState {
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "scheduled" => JobState::Scheduled,
            "running" => JobState::Running,
            "finished" => JobState::Finished,
            "cancelling" => JobState::Cancelling,
            "cancelled" => JobState::Cancelled,
            "failing" => JobState::Failing,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Cancelled | JobState::Failed
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Cancelling => "cancelling",
            JobState::Cancelled => "cancelled",
            JobState::Failing => "failing",
            JobState::Failed => "failed",
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub job_id: i64,
    pub state: JobState,
    pub shards_moved: u64,
    pub shards_total: u64,
    pub bytes_moved: u64,
    /// Known when every move's size is (from the plan we started it from, or seen while it
    /// ran; Citus's default strategy plans by shard count and says 0).
    pub bytes_total: Option<u64>,
    /// Task errors Citus reported (a task retries, then fails the job).
    pub errors: Vec<String>,
}

// ---- what makes a rebalance fail or hang: the facts and the pure judgement ----------------

/// One node's settings that moving shards depends on, or why they could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    pub node: String,
    pub coordinator: bool,
    pub read: Result<(String, i32), String>,
}

/// What the checks before a start look at (one database).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Preflight {
    /// Tables of the plan, and the tables colocated with them (they move together), that logical
    /// replication cannot publish (no replica identity / PK).
    pub without_identity: Vec<String>,
    /// The coordinator and every active worker primary: `wal_level`, `max_worker_processes`.
    pub nodes: Vec<NodeSettings>,
}

/// Background workers a node needs for a move: the maintenance daemon of each Citus database
/// and, on the coordinator, the task queue monitor and one task executor; on a worker, the
/// logical replication launcher and one apply worker.
pub fn workers_needed(databases: usize) -> i32 {
    i32::try_from(databases)
        .unwrap_or(i32::MAX)
        .saturating_add(2)
}

/// Why the rebalance must not start (empty: it may).
pub fn preflight_refusals(p: &Preflight, mode: TransferMode, databases: usize) -> Vec<String> {
    let mut out = Vec::new();
    if mode == TransferMode::Auto && !p.without_identity.is_empty() {
        out.push(format!(
            "{} without a primary key or replica identity: Citus cannot move their shards with logical replication \
             (add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL, or pass --shard-transfer-mode block_writes)",
            p.without_identity.join(", ")
        ));
    }
    let need = workers_needed(databases);
    for n in &p.nodes {
        match &n.read {
            Err(e) => out.push(format!("{}: cannot read its settings: {e}", n.node)),
            Ok((wal, workers)) => {
                if mode.logical() && !n.coordinator && wal != "logical" {
                    out.push(format!(
                        "{}: wal_level = {wal}, and a shard move by logical replication needs logical \
                         (the move would fail and be retried; set wal_level = logical in Patroni and restart, \
                         or pass --shard-transfer-mode block_writes)",
                        n.node
                    ));
                }
                if *workers < need {
                    out.push(format!(
                        "{}: max_worker_processes = {workers}, a shard move needs at least {need} here \
                         (the job would wait for a free background worker)",
                        n.node
                    ));
                }
            }
        }
    }
    out
}

// ---- remove-worker: the pure planner --------------------------------------------------------

/// What `remove-worker` knows of a group in one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveFacts {
    pub database: String,
    pub groupid: i32,
    /// The group's rows in the coordinator's pg_dist_node.
    pub rows: Vec<DistNode>,
    /// Shard placements on the group, and those of them that are a shard's only copy.
    pub placements: i64,
    pub only_copies: i64,
    /// Other worker groups that can take shards (active primary, shouldhaveshards).
    pub other_targets: usize,
    /// A rebalance job that is not over (a drain from an earlier run, or someone's rebalance).
    pub running_job: Option<i64>,
}

/// One step of a removal, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum RemoveStep {
    /// `citus_set_node_property(host, port, 'shouldhaveshards', false)`.
    StopNewShards { nodeid: i32, node: String },
    /// `citus_rebalance_start(drain_only := true)`, followed to its end.
    Drain { shards: i64 },
    /// Follow the rebalance job already under way, then look again.
    FollowJob { job_id: i64 },
    /// `citus_remove_node(host, port)`: secondaries first, then the primary.
    RemoveNode {
        nodeid: i32,
        node: String,
        role: String,
    },
}

impl RemoveStep {
    pub fn describe(&self) -> String {
        match self {
            RemoveStep::StopNewShards { node, .. } => {
                format!("citus_set_node_property('{node}', 'shouldhaveshards', false)")
            }
            RemoveStep::Drain { shards } => {
                format!("citus_rebalance_start(drain_only := true): move {shards} shard(s) away")
            }
            RemoveStep::FollowJob { job_id } => {
                format!("follow rebalance job {job_id} (under way) to its end")
            }
            RemoveStep::RemoveNode { node, role, .. } => {
                format!("citus_remove_node('{node}') ({role})")
            }
        }
    }
}

/// The removal of a group from one database, or why not. `drain`: whether shards may be moved
/// away first (without it, a group holding the only copy of a shard is refused).
pub fn plan_remove(f: &RemoveFacts, drain: bool) -> Result<Vec<RemoveStep>, String> {
    let mut steps = Vec::new();
    if f.rows.is_empty() {
        return Ok(steps);
    }
    let primary = f.rows.iter().find(|r| r.is_primary());
    if f.only_copies > 0 || f.running_job.is_some() {
        if !drain {
            return Err(format!(
                "{}: group {} holds the only copy of {} shard(s): drain it first (run without --no-drain)",
                f.database, f.groupid, f.only_copies
            ));
        }
        if f.other_targets == 0 && f.only_copies > 0 {
            return Err(format!(
                "{}: no other worker group can take the {} shard(s) of group {} (no other active primary \
                 with shouldhaveshards): add a worker group first",
                f.database, f.only_copies, f.groupid
            ));
        }
        if let Some(p) = primary
            && p.shouldhaveshards
        {
            steps.push(RemoveStep::StopNewShards {
                nodeid: p.nodeid,
                node: node_name(p),
            });
        }
        match f.running_job {
            Some(job_id) => steps.push(RemoveStep::FollowJob { job_id }),
            None => steps.push(RemoveStep::Drain {
                shards: f.only_copies,
            }),
        }
    }
    let mut rows: Vec<&DistNode> = f.rows.iter().collect();
    // secondaries first: the primary row goes last, when nothing else of the group is left
    rows.sort_by_key(|r| (r.is_primary(), r.nodeid));
    for r in rows {
        steps.push(RemoveStep::RemoveNode {
            nodeid: r.nodeid,
            node: node_name(r),
            role: r.noderole.clone(),
        });
    }
    Ok(steps)
}

fn node_name(r: &DistNode) -> String {
    format!("{}:{}", r.nodename, r.nodeport)
}

// ---- SQL on the coordinator --------------------------------------------------------------

fn q(e: tokio_postgres::Error) -> PgError {
    PgError::from_query(&e)
}

async fn read<T>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, PgError> {
    pg::within(pg::READ_LIMIT, what, fut).await
}

/// Citus's plan of a rebalance (or of a drain).
pub async fn read_plan(c: &tokio_postgres::Client, drain_only: bool) -> Result<Vec<Move>, PgError> {
    let rows = read(
        "get_rebalance_table_shards_plan()",
        c.query(
            "SELECT table_name::text, shardid, shard_size, sourcename, sourceport, targetname, targetport \
               FROM pg_catalog.get_rebalance_table_shards_plan(drain_only => $1)",
            &[&drain_only],
        ),
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Move {
            table: r.get(0),
            shardid: r.get(1),
            shard_size: r.get(2),
            source: format!("{}:{}", r.get::<_, String>(3), r.get::<_, i32>(4)),
            target: format!("{}:{}", r.get::<_, String>(5), r.get::<_, i32>(6)),
        })
        .collect())
}

/// The rebalance job that is not over yet, if any.
pub async fn running_job(c: &tokio_postgres::Client) -> Result<Option<i64>, PgError> {
    let row = read(
        "citus_rebalance_status()",
        c.query_opt(
            "SELECT job_id FROM pg_catalog.citus_rebalance_status() \
              WHERE state::text IN ('scheduled', 'running', 'cancelling', 'failing')",
            &[],
        ),
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The facts the checks before a start judge.
pub async fn read_preflight(
    params: &PgParams,
    c: &tokio_postgres::Client,
    coordinator: &Endpoint,
    db: &str,
    rows: &[DistNode],
    tables: &[String],
) -> Result<Preflight, PgError> {
    let mut tables: Vec<String> = tables.to_vec();
    tables.sort();
    tables.dedup();
    let without_identity = if tables.is_empty() {
        Vec::new()
    } else {
        read(
            "replica identities",
            c.query(
                "WITH planned AS (SELECT pg_catalog.unnest($1::text[])::regclass AS rel) \
                 SELECT c.oid::regclass::text FROM pg_catalog.pg_class c \
                  WHERE (c.oid IN (SELECT rel FROM planned) \
                         OR c.oid IN (SELECT p2.logicalrelid FROM pg_catalog.pg_dist_partition p1 \
                                        JOIN pg_catalog.pg_dist_partition p2 USING (colocationid) \
                                       WHERE p1.logicalrelid IN (SELECT rel FROM planned) AND p1.colocationid <> 0)) \
                    AND NOT (c.relreplident = 'f' \
                         OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i \
                                                               WHERE i.indrelid = c.oid AND i.indisreplident)) \
                         OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i \
                                                               WHERE i.indrelid = c.oid AND i.indisprimary))) \
                  ORDER BY 1",
                &[&tables],
            ),
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let mut targets: Vec<(String, Endpoint, bool)> =
        vec![(coordinator.to_string(), coordinator.clone(), true)];
    for r in rows
        .iter()
        .filter(|r| r.groupid != 0 && r.is_primary() && r.isactive)
    {
        if let Some(ep) = r.endpoint() {
            targets.push((node_name(r), ep, false));
        }
    }
    let nodes = futures::future::join_all(targets.into_iter().map(|(node, ep, cn)| async move {
        NodeSettings {
            node,
            coordinator: cn,
            read: node_settings(params, &ep, db).await,
        }
    }))
    .await;
    Ok(Preflight {
        without_identity,
        nodes,
    })
}

async fn node_settings(
    params: &PgParams,
    ep: &Endpoint,
    db: &str,
) -> Result<(String, i32), String> {
    let c = pg::connect(params, ep, db)
        .await
        .map_err(|e| e.to_string())?;
    let row = read(
        &format!("PostgreSQL at {ep}"),
        c.query_one(
            "SELECT pg_catalog.current_setting('wal_level'), \
                    pg_catalog.current_setting('max_worker_processes')::int",
            &[],
        ),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok((row.get(0), row.get(1)))
}

/// Start the background rebalance (drain only: the groups without shouldhaveshards): its job
/// id, or None when Citus finds nothing to move.
pub async fn start(
    c: &tokio_postgres::Client,
    drain_only: bool,
    mode: TransferMode,
) -> Result<Option<i64>, PgError> {
    c.batch_execute("SET statement_timeout = '60s'")
        .await
        .map_err(q)?;
    let row = pg::within(
        Duration::from_secs(65),
        "citus_rebalance_start()",
        c.query_one(
            "SELECT pg_catalog.citus_rebalance_start(drain_only => $1, \
                    shard_transfer_mode => $2::text::citus.shard_transfer_mode)",
            &[&drain_only, &mode.as_sql()],
        ),
    )
    .await?;
    Ok(row.get(0))
}

/// Stop the rebalance under way: the job it stopped, or None when none was running.
pub async fn stop(c: &tokio_postgres::Client) -> Result<Option<i64>, PgError> {
    let Some(job) = running_job(c).await? else {
        return Ok(None);
    };
    read(
        "citus_rebalance_stop()",
        c.execute("SELECT pg_catalog.citus_rebalance_stop()", &[]),
    )
    .await?;
    Ok(Some(job))
}

#[derive(serde::Deserialize, Default)]
struct Details {
    #[serde(default)]
    task_state_counts: Option<HashMap<String, u64>>,
    #[serde(default)]
    tasks: Vec<serde_json::Value>,
}

/// Where the latest rebalance job stands. `sizes`: the moves' sizes by the shard each task
/// names, as far as known (the sizes of running moves are added).
pub async fn progress(
    c: &tokio_postgres::Client,
    sizes: &mut HashMap<i64, i64>,
) -> Result<Option<Progress>, PgError> {
    let Some(row) = read(
        "citus_rebalance_status()",
        c.query_opt(
            "SELECT job_id, state::text, details::text FROM pg_catalog.citus_rebalance_status(true)",
            &[],
        ),
    )
    .await?
    else {
        return Ok(None);
    };
    let job_id: i64 = row.get(0);
    let state_text: String = row.get(1);
    let state = JobState::parse(&state_text).ok_or_else(|| PgError::Query {
        code: None,
        message: format!("citus_rebalance_status(): unknown job state {state_text:?}"),
    })?;
    let details: Details =
        serde_json::from_str(row.get::<_, Option<&str>>(2).unwrap_or("{}")).unwrap_or_default();
    let counts = details.task_state_counts.unwrap_or_default();
    let errors = details
        .tasks
        .iter()
        .filter(|t| t["retried"].as_u64().unwrap_or(0) > 0 || t["state"] == "error")
        .filter_map(|t| t["message"].as_str())
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    // Bytes: the sizes of the moves done, and how far the running ones have copied. A move
    // carries its colocated shards along: get_rebalance_progress() has a row for each, under
    // the session (the task's pid) that moves them. A move's size is the plan's (Citus's
    // by_shard_count strategy says 0: unknown) or what its session showed while it ran.
    let tasks = read(
        "pg_dist_background_task",
        c.query(
            "SELECT status::text, substring(command FROM 'citus_move_shard_placement\\((\\d+),')::bigint, pid \
               FROM pg_catalog.pg_dist_background_task WHERE job_id = $1",
            &[&job_id],
        ),
    )
    .await?;
    let running = read(
        "get_rebalance_progress()",
        c.query(
            "SELECT sessionid, sum(coalesce(source_shard_size, 0))::bigint, \
                    sum(coalesce(target_shard_size, 0))::bigint \
               FROM pg_catalog.get_rebalance_progress() GROUP BY sessionid",
            &[],
        ),
    )
    .await?;
    let mut bytes_moved: u64 = 0;
    let mut total: u64 = 0;
    let mut all_known = true;
    for t in &tasks {
        let status: String = t.get(0);
        let Some(shard) = t.get::<_, Option<i64>>(1) else {
            continue;
        };
        let session = t.get::<_, Option<i32>>(2);
        let copying = running
            .iter()
            .find(|r| Some(r.get::<_, i32>(0)) == session)
            .map(|r| (r.get::<_, i64>(1).max(0), r.get::<_, i64>(2).max(0)));
        if status == "running"
            && let Some((src, _)) = copying
        {
            let known = sizes.entry(shard).or_insert(0);
            *known = (*known).max(src);
        }
        let size = sizes.get(&shard).copied().unwrap_or(0).max(0) as u64;
        all_known &= size > 0;
        total += size;
        if status == "done" {
            bytes_moved += size;
        } else if status == "running" {
            let copied = copying.map_or(0, |(_, tgt)| tgt as u64);
            bytes_moved += if size > 0 { copied.min(size) } else { copied };
        }
    }
    let bytes_total = (all_known && total > 0).then_some(total);
    let shards_total: u64 = counts.values().sum();
    Ok(Some(Progress {
        job_id,
        state,
        shards_moved: counts.get("done").copied().unwrap_or(0),
        shards_total,
        bytes_moved,
        bytes_total,
        errors,
    }))
}

/// How following a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// The job reached a terminal state.
    Ended(Progress),
    /// Ctrl-C: the job goes on in the background.
    Interrupted(Option<Progress>),
}

/// Follow job `job_id` to its end, with a progress bar when `bar` (`ui::wants_spinner`: a
/// terminal, a format for people), plain lines otherwise. Ctrl-C stops following, not the job.
/// A lost coordinator is tried again for 30 s.
pub async fn follow(
    params: &PgParams,
    coordinator: &Endpoint,
    db: &str,
    job_id: i64,
    sizes: &HashMap<i64, i64>,
    label: &str,
    bar: bool,
) -> Result<Followed, PgError> {
    let mut sizes = sizes.clone();
    let bar = Bar::new(label, bar);
    let mut last: Option<Progress> = None;
    let mut client: Option<tokio_postgres::Client> = None;
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        let step = async {
            if client.is_none() {
                client = Some(pg::connect(params, coordinator, db).await?);
            }
            progress(client.as_ref().expect("connected"), &mut sizes).await
        };
        let got = tokio::select! {
            r = step => r,
            _ = tokio::signal::ctrl_c() => {
                bar.finish();
                return Ok(Followed::Interrupted(last));
            }
        };
        match got {
            Ok(Some(p)) if p.job_id == job_id => {
                failing_since = None;
                bar.show(&p);
                if p.state.is_terminal() {
                    bar.finish();
                    return Ok(Followed::Ended(p));
                }
                last = Some(p);
            }
            Ok(other) => {
                bar.finish();
                return Err(PgError::Query {
                    code: None,
                    message: format!(
                        "rebalance job {job_id} is not the latest any more ({}): someone started another",
                        other.map_or("no job".into(), |p| format!("job {}", p.job_id))
                    ),
                });
            }
            Err(e) => {
                client = None;
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > Duration::from_secs(30) {
                    bar.finish();
                    return Err(e);
                }
                tracing::info!("following job {job_id}: {e}: trying again");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = tokio::signal::ctrl_c() => {
                bar.finish();
                return Ok(Followed::Interrupted(last));
            }
        }
    }
}

/// The progress bar on a terminal, one line per change otherwise (stderr either way).
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    last_line: std::cell::RefCell<String>,
    ticking: std::cell::Cell<bool>,
}

impl Bar {
    fn new(label: &str, enabled: bool) -> Bar {
        let bar = enabled.then(|| {
            // hidden until the first figures: an empty bar would read "0/0 done"
            let b = indicatif::ProgressBar::hidden();
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:30}] {pos}/{len} shards {msg} ({elapsed})",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(label.to_owned());
            b
        });
        Bar {
            bar,
            label: label.to_owned(),
            last_line: std::cell::RefCell::new(String::new()),
            ticking: std::cell::Cell::new(false),
        }
    }

    fn show(&self, p: &Progress) {
        let bytes = match p.bytes_total {
            Some(t) => format!(
                "{} of {}",
                indicatif::HumanBytes(p.bytes_moved),
                indicatif::HumanBytes(t)
            ),
            None => format!("{} moved", indicatif::HumanBytes(p.bytes_moved)),
        };
        match &self.bar {
            Some(b) => {
                b.set_length(p.shards_total);
                b.set_position(p.shards_moved);
                b.set_message(format!("{bytes}, {}", p.state.as_str()));
                if !self.ticking.replace(true) {
                    b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    b.enable_steady_tick(Duration::from_millis(200));
                }
            }
            None => {
                let line = format!(
                    "{}: job {} {}: {}/{} shards moved ({bytes})",
                    self.label,
                    p.job_id,
                    p.state.as_str(),
                    p.shards_moved,
                    p.shards_total
                );
                if *self.last_line.borrow() != line {
                    crate::ui::say(&line);
                    *self.last_line.borrow_mut() = line;
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

// ---- remove-worker's reads and writes ----------------------------------------------------

/// Placements on the group: (all, those that are a shard's only active copy).
pub async fn placements(c: &tokio_postgres::Client, groupid: i32) -> Result<(i64, i64), PgError> {
    let row = read(
        "pg_dist_placement",
        c.query_one(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS ( \
                     SELECT 1 FROM pg_catalog.pg_dist_placement o \
                       JOIN pg_catalog.pg_dist_node n ON n.groupid = o.groupid \
                      WHERE o.shardid = p.shardid AND o.groupid <> p.groupid AND o.shardstate = 1 \
                        AND n.noderole = 'primary' AND n.isactive)) \
               FROM pg_catalog.pg_dist_placement p WHERE p.groupid = $1",
            &[&groupid],
        ),
    )
    .await?;
    Ok((row.get(0), row.get(1)))
}

/// The tables with a placement on the group (a drain moves them).
pub async fn tables_on_group(
    c: &tokio_postgres::Client,
    groupid: i32,
) -> Result<Vec<String>, PgError> {
    Ok(read(
        "pg_dist_placement",
        c.query(
            "SELECT DISTINCT s.logicalrelid::regclass::text FROM pg_catalog.pg_dist_placement p \
               JOIN pg_catalog.pg_dist_shard s USING (shardid) WHERE p.groupid = $1 ORDER BY 1",
            &[&groupid],
        ),
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// A node change of `remove-worker`, written under the writer lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeWrite {
    StopNewShards { host: String, port: i32 },
    Remove { host: String, port: i32 },
}

/// Run `writes` in one transaction on the coordinator leader, under citusctl's writer lock, the
/// rows they were planned from (`fence`: nodeid, name:port) read FOR UPDATE first.
pub async fn write_nodes(
    params: &PgParams,
    coordinator: &Endpoint,
    db: &str,
    fence: &[(i32, String)],
    writes: &[NodeWrite],
) -> Result<(), PgError> {
    let limit = params.connect_timeout + Duration::from_secs(30 + 60 + 5);
    pg::bounded(limit, &format!("writing pg_dist_node on {coordinator}"), async {
        let mut client = pg::connect(params, coordinator, db).await?;
        if writes.iter().any(|w| matches!(w, NodeWrite::Remove { .. })) {
            wait_metadata_synced(&client, Duration::from_secs(30)).await?;
        }
        let tx = client.transaction().await.map_err(q)?;
        let in_recovery: bool = tx
            .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])
            .await
            .map_err(q)?
            .get(0);
        if in_recovery {
            return Err(PgError::Query {
                code: None,
                message: format!("{coordinator} is in recovery: not the coordinator leader any more"),
            });
        }
        tx.batch_execute("SET LOCAL statement_timeout = 30000")
            .await
            .map_err(q)?;
        lock_writers(&tx, WhenBusy::Wait).await?;
        fence_rows(&tx, fence).await?;
        for w in writes {
            let r = match w {
                NodeWrite::StopNewShards { host, port } => {
                    tx.execute(
                        "SELECT pg_catalog.citus_set_node_property($1::text, $2::int, 'shouldhaveshards', false)",
                        &[host, port],
                    )
                    .await
                }
                NodeWrite::Remove { host, port } => {
                    tx.execute(
                        "SELECT pg_catalog.citus_remove_node($1::text, $2::int)",
                        &[host, port],
                    )
                    .await
                }
            };
            r.map_err(|e| {
                let pe = PgError::from_query(&e);
                let what = match w {
                    NodeWrite::StopNewShards { host, port } => {
                        format!("citus_set_node_property('{host}', {port}, 'shouldhaveshards', false)")
                    }
                    NodeWrite::Remove { host, port } => format!("citus_remove_node('{host}', {port})"),
                };
                PgError::Query {
                    code: pe.sqlstate().map(str::to_owned),
                    message: format!("{what}: {pe}"),
                }
            })?;
        }
        tx.commit().await.map_err(q)?;
        Ok(())
    })
    .await
}

/// The metadata workers that still list group `groupid` in their own pg_dist_node (Citus
/// removes it from them in the same transaction): (node, why) for each that does or could not
/// be asked. A worker without pg_dist_node (the test stand-in keeps metadata on the
/// coordinator only) is skipped.
pub async fn workers_still_listing(
    params: &PgParams,
    rows: &[DistNode],
    db: &str,
    groupid: i32,
) -> Vec<(String, String)> {
    let workers: Vec<&DistNode> = rows
        .iter()
        .filter(|r| r.groupid != 0 && r.groupid != groupid && r.is_primary() && r.hasmetadata)
        .collect();
    let checks = futures::future::join_all(workers.iter().map(|r| async move {
        let node = node_name(r);
        let ep = r.endpoint()?;
        let c = match pg::connect(params, &ep, db).await {
            Ok(c) => c,
            Err(e) => return Some((node, e.to_string())),
        };
        match read(
            &format!("PostgreSQL at {ep}"),
            c.query_one(
                "SELECT count(*) FROM pg_catalog.pg_dist_node WHERE groupid = $1",
                &[&groupid],
            ),
        )
        .await
        {
            Ok(row) if row.get::<_, i64>(0) == 0 => None,
            Ok(row) => Some((
                node,
                format!(
                    "still lists {} row(s) of group {groupid}",
                    row.get::<_, i64>(0)
                ),
            )),
            Err(e) if e.sqlstate() == Some("42P01") => None,
            Err(e) => Some((node, e.to_string())),
        }
    }))
    .await;
    checks.into_iter().flatten().collect()
}

// ---- the rebalance as `rebalance` and `add-worker --rebalance` run it ------------------------

/// One database's rebalance: the plan, what refuses it, and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseRebalance {
    pub database: String,
    pub moves: Vec<Move>,
    /// Why it must not start (empty: it may).
    pub refusals: Vec<String>,
    /// A rebalance job already under way (followed instead of starting another).
    pub running_job: Option<i64>,
    pub job_id: Option<i64>,
    pub progress: Option<Progress>,
    pub error: Option<String>,
}

/// How a rebalance ended (JSON: the names in lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RebalanceOutcome {
    /// Shown, not started (dry run).
    Planned,
    /// Citus finds nothing to move, and nothing is under way.
    NothingToDo,
    /// A check before the start failed: nothing started.
    Refused,
    /// Started in the background, not followed (--no-wait).
    Started,
    /// Every job finished.
    Finished,
    /// A job failed or was cancelled, or citusctl could not start or follow it.
    Failed,
    /// `--stop`: the job under way was stopped (or none was).
    Stopped,
    /// Ctrl-C while following: the job goes on in the background.
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
pub struct RebalanceSummary {
    /// The coordinator leader the rebalance runs on.
    pub coordinator: String,
    pub databases: Vec<DatabaseRebalance>,
    pub outcome: RebalanceOutcome,
}

/// Where to follow or stop a rebalance that goes on in the background.
pub const FOLLOW_HINT: &str =
    "follow it with `citusctl rebalance --wait`, stop it with `citusctl rebalance --stop`";

impl RebalanceOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RebalanceOutcome::Planned => "planned",
            RebalanceOutcome::NothingToDo => "nothing to do",
            RebalanceOutcome::Refused => "refused",
            RebalanceOutcome::Started => "started",
            RebalanceOutcome::Finished => "finished",
            RebalanceOutcome::Failed => "failed",
            RebalanceOutcome::Stopped => "stopped",
            RebalanceOutcome::Interrupted => "interrupted",
        }
    }
}

impl RebalanceSummary {
    pub fn moves(&self) -> usize {
        self.databases.iter().map(|d| d.moves.len()).sum()
    }
    pub fn refused(&self) -> bool {
        self.databases.iter().any(|d| !d.refusals.is_empty())
    }
    pub fn under_way(&self) -> bool {
        self.databases.iter().any(|d| d.running_job.is_some())
    }

    /// The exit status this outcome calls for.
    pub fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self.outcome {
            RebalanceOutcome::Planned
            | RebalanceOutcome::NothingToDo
            | RebalanceOutcome::Started
            | RebalanceOutcome::Finished
            | RebalanceOutcome::Stopped => Exit::Ok,
            RebalanceOutcome::Refused => Exit::Refused,
            RebalanceOutcome::Failed => Exit::No,
            RebalanceOutcome::Interrupted => Exit::Interrupted,
        }
    }

    /// The plan and the outcome for people.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        for d in &self.databases {
            if let Some(j) = d.running_job {
                out.push_str(&format!(
                    "{}: rebalance job {j} is under way on {}\n",
                    d.database, self.coordinator
                ));
            } else if d.moves.is_empty() && d.job_id.is_none() && d.progress.is_some() {
                out.push_str(&format!(
                    "{}: no rebalance under way; the last one:\n",
                    d.database
                ));
            } else if d.moves.is_empty() {
                out.push_str(&format!("{}: nothing to move\n", d.database));
            } else {
                let mut t = crate::output::Table::new(
                    format!("Rebalance plan ({})", d.database),
                    &["Database", "Table", "Shard", "Size", "From", "To"],
                );
                for m in &d.moves {
                    t.row(vec![
                        d.database.clone(),
                        m.table.clone(),
                        m.shardid.to_string(),
                        indicatif::HumanBytes(m.shard_size.max(0) as u64).to_string(),
                        m.source.clone(),
                        m.target.clone(),
                    ]);
                }
                out.push_str(&t.render());
            }
            for r in &d.refusals {
                out.push_str(&format!("refused: {r}\n"));
            }
            if let Some(p) = &d.progress {
                let bytes = match p.bytes_total {
                    Some(t) => format!(
                        " ({} of {})",
                        indicatif::HumanBytes(p.bytes_moved),
                        indicatif::HumanBytes(t)
                    ),
                    None => String::new(),
                };
                out.push_str(&format!(
                    "{}: job {} {}: {}/{} shards moved{bytes}\n",
                    d.database,
                    p.job_id,
                    p.state.as_str(),
                    p.shards_moved,
                    p.shards_total,
                ));
                for e in &p.errors {
                    out.push_str(&format!("  task error: {e}\n"));
                }
            } else if let Some(j) = d.job_id {
                out.push_str(&format!("{}: started job {j}\n", d.database));
            }
            if let Some(e) = &d.error {
                out.push_str(&format!("{}: error: {e}\n", d.database));
            }
        }
        out
    }
}

/// Look at every database: a job under way, Citus's plan, and the checks before a start; and
/// the coordinator leader they were read on.
pub async fn prepare(
    topo: &crate::topology::Topology,
    client: &crate::patroni::PatroniClient,
    params: &PgParams,
    mode: TransferMode,
) -> Result<(Endpoint, RebalanceSummary), crate::ops::observe::Blocked> {
    use crate::exit::Exit;
    use crate::ops::observe::{Blocked, observe_for_write};
    let o = observe_for_write(topo, client, params).await?;
    let cn = o.coordinator.1.clone();
    let mut databases = Vec::new();
    for (db, rows) in &o.tables {
        let blocked = |e: PgError| Blocked {
            exit: Exit::Unreachable,
            reason: format!("{db} on {cn}: {e}; nothing started"),
        };
        let c = pg::connect(params, &cn, db).await.map_err(blocked)?;
        let running_job = running_job(&c).await.map_err(blocked)?;
        let (moves, refusals) = if running_job.is_some() {
            (Vec::new(), Vec::new())
        } else {
            let moves = read_plan(&c, false).await.map_err(blocked)?;
            let refusals = if moves.is_empty() {
                Vec::new()
            } else {
                let tables: Vec<String> = moves.iter().map(|m| m.table.clone()).collect();
                let p = read_preflight(params, &c, &cn, db, rows, &tables)
                    .await
                    .map_err(blocked)?;
                preflight_refusals(&p, mode, topo.databases.len())
            };
            (moves, refusals)
        };
        databases.push(DatabaseRebalance {
            database: db.clone(),
            moves,
            refusals,
            running_job,
            job_id: None,
            progress: None,
            error: None,
        });
    }
    let mut s = RebalanceSummary {
        coordinator: cn.to_string(),
        databases,
        outcome: RebalanceOutcome::Planned,
    };
    if s.refused() {
        s.outcome = RebalanceOutcome::Refused;
    } else if s.moves() == 0 && !s.under_way() {
        s.outcome = RebalanceOutcome::NothingToDo;
    }
    Ok((cn, s))
}

/// Start (or, when one is under way, follow) each database's rebalance; with `wait`, follow it
/// to its end. Ctrl-C stops following and says how to go on.
pub async fn execute(
    params: &PgParams,
    coordinator: &Endpoint,
    s: &mut RebalanceSummary,
    mode: TransferMode,
    wait: bool,
    bar: bool,
) {
    let mut outcome = RebalanceOutcome::Finished;
    for d in &mut s.databases {
        let job = match d.running_job {
            Some(j) => Some(j),
            None if d.moves.is_empty() => None,
            None => {
                let started = async {
                    let c = pg::connect(params, coordinator, &d.database).await?;
                    start(&c, false, mode).await
                }
                .await;
                match started {
                    Ok(j) => {
                        d.job_id = j;
                        j
                    }
                    Err(e) => {
                        d.error = Some(format!("citus_rebalance_start(): {e}"));
                        outcome = RebalanceOutcome::Failed;
                        continue;
                    }
                }
            }
        };
        let Some(job) = job else { continue };
        d.job_id = Some(job);
        if !wait {
            outcome = merge(outcome, RebalanceOutcome::Started);
            continue;
        }
        let sizes: HashMap<i64, i64> = d.moves.iter().map(|m| (m.shardid, m.shard_size)).collect();
        let label = format!("{}: rebalance", d.database);
        match follow(params, coordinator, &d.database, job, &sizes, &label, bar).await {
            Ok(Followed::Ended(p)) => {
                if p.state != JobState::Finished {
                    outcome = RebalanceOutcome::Failed;
                    d.error = Some(format!("rebalance job {job} ended {}", p.state.as_str()));
                }
                d.progress = Some(p);
            }
            Ok(Followed::Interrupted(p)) => {
                d.progress = p;
                crate::ui::say(&format!(
                    "interrupted: rebalance job {job} goes on in the background; {FOLLOW_HINT}"
                ));
                s.outcome = RebalanceOutcome::Interrupted;
                return;
            }
            Err(e) => {
                d.error = Some(format!(
                    "lost track of rebalance job {job}: {e}; it may go on in the background: {FOLLOW_HINT}"
                ));
                outcome = RebalanceOutcome::Failed;
            }
        }
    }
    s.outcome = outcome;
}

fn merge(a: RebalanceOutcome, b: RebalanceOutcome) -> RebalanceOutcome {
    if a == RebalanceOutcome::Failed { a } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::citus::test_row;

    fn settings(node: &str, cn: bool, wal: &str, workers: i32) -> NodeSettings {
        NodeSettings {
            node: node.into(),
            coordinator: cn,
            read: Ok((wal.into(), workers)),
        }
    }

    #[test]
    fn a_healthy_cluster_may_rebalance() {
        let p = Preflight {
            without_identity: vec![],
            nodes: vec![
                settings("cn", true, "replica", 8),
                settings("w1", false, "logical", 8),
            ],
        };
        assert!(preflight_refusals(&p, TransferMode::Auto, 1).is_empty());
    }

    #[test]
    fn tables_without_identity_refuse_auto_but_not_block_writes() {
        let p = Preflight {
            without_identity: vec!["public.history".into()],
            nodes: vec![],
        };
        let r = preflight_refusals(&p, TransferMode::Auto, 1);
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("public.history"), "{r:?}");
        assert!(preflight_refusals(&p, TransferMode::BlockWrites, 1).is_empty());
        assert!(preflight_refusals(&p, TransferMode::ForceLogical, 1).is_empty());
    }

    #[test]
    fn wal_level_and_worker_processes_are_judged_per_node() {
        let p = Preflight {
            without_identity: vec![],
            nodes: vec![
                settings("cn", true, "replica", 2),
                settings("w1", false, "replica", 8),
                NodeSettings {
                    node: "w2".into(),
                    coordinator: false,
                    read: Err("timeout".into()),
                },
            ],
        };
        let r = preflight_refusals(&p, TransferMode::Auto, 1);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[0].starts_with("cn: max_worker_processes = 2"), "{r:?}");
        assert!(r[1].starts_with("w1: wal_level = replica"), "{r:?}");
        assert!(r[2].starts_with("w2: cannot read"), "{r:?}");
        // block_writes copies without logical replication: wal_level does not matter
        let r = preflight_refusals(&p, TransferMode::BlockWrites, 1);
        assert_eq!(r.len(), 2, "{r:?}");
        // two databases: two maintenance daemons
        assert_eq!(workers_needed(2), 4);
    }

    fn facts(rows: Vec<DistNode>, placements: i64, only: i64, others: usize) -> RemoveFacts {
        RemoveFacts {
            database: "postgres".into(),
            groupid: 3,
            rows,
            placements,
            only_copies: only,
            other_targets: others,
            running_job: None,
        }
    }

    #[test]
    fn an_unregistered_group_has_nothing_to_remove() {
        assert_eq!(plan_remove(&facts(vec![], 0, 0, 2), true), Ok(vec![]));
    }

    #[test]
    fn a_group_with_shards_is_drained_then_removed_secondary_first() {
        let rows = vec![
            test_row(7, 3, "w3", "primary"),
            test_row(8, 3, "w3ro", "secondary"),
        ];
        let steps = plan_remove(&facts(rows, 3, 3, 2), true).unwrap();
        let d: Vec<String> = steps.iter().map(RemoveStep::describe).collect();
        assert_eq!(
            d,
            [
                "citus_set_node_property('w3:5432', 'shouldhaveshards', false)",
                "citus_rebalance_start(drain_only := true): move 3 shard(s) away",
                "citus_remove_node('w3ro:5432') (secondary)",
                "citus_remove_node('w3:5432') (primary)",
            ]
        );
    }

    #[test]
    fn without_drain_a_group_holding_shards_is_refused() {
        let rows = vec![test_row(7, 3, "w3", "primary")];
        let e = plan_remove(&facts(rows, 2, 2, 2), false).unwrap_err();
        assert!(e.contains("only copy of 2 shard(s)"), "{e}");
    }

    #[test]
    fn shards_with_copies_elsewhere_need_no_drain() {
        let rows = vec![test_row(7, 3, "w3", "primary")];
        let steps = plan_remove(&facts(rows, 2, 0, 2), false).unwrap();
        assert_eq!(steps.len(), 1);
        assert!(matches!(steps[0], RemoveStep::RemoveNode { nodeid: 7, .. }));
    }

    #[test]
    fn no_other_group_to_take_the_shards_is_refused() {
        let rows = vec![test_row(7, 3, "w3", "primary")];
        let e = plan_remove(&facts(rows, 2, 2, 0), true).unwrap_err();
        assert!(e.contains("no other worker group"), "{e}");
    }

    #[test]
    fn a_second_run_follows_the_drain_under_way_without_setting_again() {
        let mut primary = test_row(7, 3, "w3", "primary");
        primary.shouldhaveshards = false;
        let mut f = facts(vec![primary], 1, 1, 2);
        f.running_job = Some(12);
        let steps = plan_remove(&f, true).unwrap();
        assert_eq!(steps[0], RemoveStep::FollowJob { job_id: 12 });
        assert!(matches!(steps[1], RemoveStep::RemoveNode { .. }));
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn job_states_parse_and_end() {
        for s in [
            "scheduled",
            "running",
            "finished",
            "cancelling",
            "cancelled",
            "failing",
            "failed",
        ] {
            let st = JobState::parse(s).unwrap();
            assert_eq!(st.as_str(), s);
            assert_eq!(
                st.is_terminal(),
                matches!(s, "finished" | "cancelled" | "failed")
            );
        }
        assert_eq!(JobState::parse("paused"), None);
    }
}
