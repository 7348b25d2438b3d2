//! `citusctl remove-worker SCOPE`: the reverse of `add-worker`: drain a worker group of its
//! shards, then remove its rows from `pg_dist_node`, in every inventory database.
//!
//! Changes, on the coordinator leader: `citus_set_node_property(..., 'shouldhaveshards',
//! false)` on the group's primary, a background drain (`citus_rebalance_start(drain_only :=
//! true)`, followed with a progress bar), then `citus_remove_node` of its secondary rows and its
//! primary row, in one transaction under citusctl's writer lock. Then checks that the metadata
//! workers no longer list the group. Refuses (exit 4) when no other worker group can take the
//! shards, when a move of the drain would fail or hang (the checks of `rebalance`), or
//! (`--no-drain`) when the group holds the only copy of a shard. Idempotent and
//! resumable: a second run (after Ctrl-C or a failure) follows the drain under way, or starts
//! it again, and removes what is left; an unregistered group is nothing to do.

use serde::Serialize;

use crate::context::Context;
use crate::exit::Exit;
use crate::ops::confirm;
use crate::ops::observe::observe_for_write;
use crate::ops::rebalance::{
    self, Followed, JobState, NodeWrite, Progress, RemoveFacts, RemoveStep, TransferMode,
};
use crate::output::{self, Format, Render};
use crate::pg;
use crate::topology::{Endpoint, GroupKind};

/// Drain a worker group of its shards and remove it from pg_dist_node.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The worker group's Patroni scope, as in the inventory.
    pub scope: String,

    /// Show the plan and stop.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,

    /// Apply without asking (needed when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Never move shards: refuse when the group holds the only copy of a shard.
    #[arg(long)]
    pub no_drain: bool,

    /// How Citus copies a shard while draining.
    #[arg(long, value_enum, default_value_t = TransferMode::Auto)]
    pub shard_transfer_mode: TransferMode,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

const CONFIRM_HINT: &str = "this removes a worker group and stdin is not a terminal: pass --yes to apply, or --dry-run to look";

/// How a removal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Planned,
    NothingToDo,
    Refused,
    Removed,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
struct DatabasePlan {
    database: String,
    placements: i64,
    only_copies: i64,
    steps: Vec<RemoveStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drain: Option<Progress>,
}

#[derive(Debug, Serialize)]
struct Report {
    format_version: u32,
    cluster: String,
    scope: String,
    group: i32,
    coordinator: Option<String>,
    databases: Vec<DatabasePlan>,
    refused: Vec<String>,
    outcome: Outcome,
    /// After removing: no metadata worker lists the group any more.
    verified: Option<bool>,
    error: Option<String>,
}

impl Render for Report {
    fn pretty(&self) -> String {
        let mut t = output::Table::new(
            format!("Remove {} (group {})", self.scope, self.group),
            &["Database", "Placements", "Only copies", "Step"],
        );
        for d in &self.databases {
            if d.steps.is_empty() {
                t.row(vec![
                    d.database.clone(),
                    d.placements.to_string(),
                    d.only_copies.to_string(),
                    if self.outcome == Outcome::Refused {
                        "(refused)".into()
                    } else {
                        "(not registered: nothing to do)".into()
                    },
                ]);
            }
            for (i, s) in d.steps.iter().enumerate() {
                let first = i == 0;
                t.row(vec![
                    if first {
                        d.database.clone()
                    } else {
                        String::new()
                    },
                    if first {
                        d.placements.to_string()
                    } else {
                        String::new()
                    },
                    if first {
                        d.only_copies.to_string()
                    } else {
                        String::new()
                    },
                    s.describe(),
                ]);
            }
        }
        let mut s = t.render();
        for r in &self.refused {
            s.push_str(&format!("refused: {r}\n"));
        }
        for d in &self.databases {
            if let Some(p) = &d.drain {
                s.push_str(&format!(
                    "{}: drain job {} {}: {}/{} shards moved\n",
                    d.database,
                    p.job_id,
                    p.state.as_str(),
                    p.shards_moved,
                    p.shards_total
                ));
            }
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("error: {e}\n"));
        }
        if let Some(v) = self.verified {
            s.push_str(&format!(
                "workers' metadata: {}\n",
                if v {
                    "no worker lists the group"
                } else {
                    "NOT verified (see error)"
                }
            ));
        }
        s.push_str(&format!(
            "outcome: {}\n",
            serde_json::to_value(self.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
                .replace('_', " ")
        ));
        s
    }
    fn tsv(&self) -> String {
        let mut s = String::from("database\tplacements\tonly_copies\tstep\n");
        for d in &self.databases {
            for st in &d.steps {
                s.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    output::tsv_field(&d.database),
                    d.placements,
                    d.only_copies,
                    output::tsv_field(&st.describe())
                ));
            }
        }
        s
    }
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    let group = ctx.group(&args.scope)?;
    if group.kind != GroupKind::Worker {
        anyhow::bail!(crate::UsageError(format!(
            "`{}` is the coordinator, not a worker group",
            args.scope
        )));
    }
    let client = ctx.patroni_reader()?;
    let params = ctx.pg_params()?;
    let mut report = Report {
        format_version: crate::status::FORMAT_VERSION,
        cluster: ctx.topo.name.clone(),
        scope: args.scope.clone(),
        group: group.group_id,
        coordinator: None,
        databases: Vec::new(),
        refused: Vec::new(),
        outcome: Outcome::Planned,
        verified: None,
        error: None,
    };
    let finish = |report: &Report, exit: Exit| -> anyhow::Result<Exit> {
        output::print(&output::render(report, args.format))?;
        Ok(exit)
    };

    let (cn, plans) = match observe_and_plan(
        &ctx,
        &client,
        &params,
        group.group_id,
        args.shard_transfer_mode,
    )
    .await
    {
        Ok(x) => x,
        Err((exit, why)) => {
            report.outcome = Outcome::Refused;
            report.error = Some(why);
            return finish(&report, exit);
        }
    };
    report.coordinator = Some(cn.to_string());
    let mut facts = Vec::new();
    for f in plans {
        report.refused.extend(f.preflight.iter().cloned());
        match plan_for(&f, &args) {
            Ok(steps) => report.databases.push(DatabasePlan {
                database: f.database.clone(),
                placements: f.placements,
                only_copies: f.only_copies,
                steps,
                drain: None,
            }),
            Err(why) => {
                report.refused.push(why);
                report.databases.push(DatabasePlan {
                    database: f.database.clone(),
                    placements: f.placements,
                    only_copies: f.only_copies,
                    steps: Vec::new(),
                    drain: None,
                });
            }
        }
        facts.push(f);
    }
    if !report.refused.is_empty() {
        report.outcome = Outcome::Refused;
        return finish(&report, Exit::Refused);
    }
    if report.databases.iter().all(|d| d.steps.is_empty()) {
        report.outcome = Outcome::NothingToDo;
        if args.format == Format::Pretty {
            crate::ui::say(&format!(
                "{} is not registered in pg_dist_node: nothing to remove.",
                args.scope
            ));
        }
        return finish(&report, Exit::Ok);
    }
    if args.dry_run {
        return finish(&report, Exit::Ok);
    }
    if !args.yes {
        crate::ui::say(output::render(&report, Format::Pretty).trim_end());
        if !confirm::ask(
            &format!("Drain and remove {} from Citus?", args.scope),
            CONFIRM_HINT,
        )
        .await?
        {
            crate::ui::say("Nothing changed.");
            return Ok(Exit::No);
        }
    }

    // Apply, database by database; each step is safe to repeat, so a failure or Ctrl-C
    // leaves a state the next run picks up from.
    for (i, f) in facts.iter().enumerate() {
        let db = f.database.clone();
        let mut f = f.clone();
        // Up to a few rounds: follow a job under way, then drain what is left, then remove.
        let mut done = false;
        for _round in 0..4 {
            let steps = match plan_for(&f, &args) {
                Ok(s) => s,
                Err(why) => {
                    report.refused.push(why);
                    report.outcome = Outcome::Refused;
                    return finish(&report, Exit::Refused);
                }
            };
            if steps.is_empty() {
                done = true;
                break;
            }
            let needs_move = steps
                .iter()
                .any(|s| matches!(s, RemoveStep::Drain { .. } | RemoveStep::FollowJob { .. }));
            if let Err(e) = apply_before_move(&params, &cn, &f, &steps).await {
                report.outcome = Outcome::Failed;
                report.error = Some(format!("{db}: {e}"));
                return finish(&report, Exit::for_write_error(&e));
            }
            if needs_move {
                let bar = crate::ui::wants_spinner(args.format == Format::Pretty);
                match drain(&params, &cn, &db, &steps, args.shard_transfer_mode, bar).await {
                    Ok(Followed::Ended(p)) => {
                        let ok = p.state == JobState::Finished;
                        report.databases[i].drain = Some(p.clone());
                        if !ok {
                            report.outcome = Outcome::Failed;
                            report.error = Some(format!(
                                "{db}: drain job {} ended {}: nothing removed; run remove-worker again to retry",
                                p.job_id,
                                p.state.as_str()
                            ));
                            return finish(&report, Exit::No);
                        }
                    }
                    Ok(Followed::Interrupted(p)) => {
                        report.databases[i].drain = p;
                        crate::ui::say(&format!(
                            "interrupted: the drain goes on in the background; run `citusctl remove-worker {}` \
                             again to follow it and finish, or stop it with `citusctl rebalance --stop`",
                            args.scope
                        ));
                        report.outcome = Outcome::Interrupted;
                        return finish(&report, Exit::Interrupted);
                    }
                    Err(e) => {
                        report.outcome = Outcome::Failed;
                        report.error = Some(format!(
                            "{db}: {e}; run remove-worker again to pick up where this stopped"
                        ));
                        return finish(&report, Exit::No);
                    }
                }
                // Look again: a drain that ended may have left shards (moved back meanwhile).
                f = match read_facts(&params, &cn, &db, group.group_id, &f.rows_all).await {
                    Ok(f) => f,
                    Err(e) => {
                        report.outcome = Outcome::Failed;
                        report.error = Some(format!("{db}: {e}"));
                        return finish(&report, Exit::No);
                    }
                };
                continue;
            }
            // Only removals left: secondaries, then the primary, in one transaction.
            let fence: Vec<(i32, String)> = f
                .facts
                .rows
                .iter()
                .map(|r| (r.nodeid, format!("{}:{}", r.nodename, r.nodeport)))
                .collect();
            let writes: Vec<NodeWrite> = steps
                .iter()
                .filter_map(|s| match s {
                    RemoveStep::RemoveNode { nodeid, .. } => {
                        f.facts.rows.iter().find(|r| r.nodeid == *nodeid).map(|r| {
                            NodeWrite::Remove {
                                host: r.nodename.clone(),
                                port: r.nodeport,
                            }
                        })
                    }
                    _ => None,
                })
                .collect();
            if let Err(e) = rebalance::write_nodes(&params, &cn, &db, &fence, &writes).await {
                report.outcome = Outcome::Failed;
                report.error = Some(format!("{db}: {e} (rolled back: nothing removed)"));
                return finish(&report, Exit::for_write_error(&e));
            }
            done = true;
            break;
        }
        if !done {
            report.outcome = Outcome::Failed;
            report.error = Some(format!(
                "{db}: group {} still holds the only copy of {} shard(s) after draining: nothing removed",
                group.group_id, f.only_copies
            ));
            return finish(&report, Exit::No);
        }
    }
    report.outcome = Outcome::Removed;
    // Verify: the coordinator has no row of the group, and the metadata workers followed.
    let mut problems = Vec::new();
    for f in &facts {
        let db = &f.database;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let rows_now = match read_facts(&params, &cn, db, group.group_id, &f.rows_all).await {
                Ok(now) => now,
                Err(e) => {
                    problems.push(format!("{db}: cannot read pg_dist_node again: {e}"));
                    break;
                }
            };
            let mut p: Vec<String> = Vec::new();
            if !rows_now.facts.rows.is_empty() {
                p.push(format!(
                    "{db}: the coordinator still has {} row(s) of group {}",
                    rows_now.facts.rows.len(),
                    group.group_id
                ));
            }
            for (node, why) in
                rebalance::workers_still_listing(&params, &rows_now.rows_all, db, group.group_id)
                    .await
            {
                p.push(format!("{db}: {node}: {why}"));
            }
            if p.is_empty() || tokio::time::Instant::now() > deadline {
                problems.extend(p);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    report.verified = Some(problems.is_empty());
    if !problems.is_empty() {
        report.error = Some(problems.join("; "));
    }
    let exit = if problems.is_empty() {
        Exit::Ok
    } else {
        Exit::No
    };
    finish(&report, exit)
}

/// The facts of one database, and every row of pg_dist_node (for the workers' check).
#[derive(Debug, Clone)]
struct DbFacts {
    facts: RemoveFacts,
    rows_all: Vec<crate::citus::DistNode>,
    /// Why a drain would fail or hang (checked before it starts).
    preflight: Vec<String>,
}

impl std::ops::Deref for DbFacts {
    type Target = RemoveFacts;
    fn deref(&self) -> &RemoveFacts {
        &self.facts
    }
}

fn plan_for(f: &RemoveFacts, args: &Args) -> Result<Vec<RemoveStep>, String> {
    rebalance::plan_remove(f, !args.no_drain)
}

async fn observe_and_plan(
    ctx: &Context,
    client: &crate::patroni::PatroniClient,
    params: &pg::PgParams,
    groupid: i32,
    mode: TransferMode,
) -> Result<(Endpoint, Vec<DbFacts>), (Exit, String)> {
    let o = observe_for_write(&ctx.topo, client, params)
        .await
        .map_err(|b| (b.exit, b.reason))?;
    let cn = o.coordinator.1;
    let mut out = Vec::new();
    for (db, rows) in &o.tables {
        let unreachable = |e: pg::PgError| {
            (
                Exit::Unreachable,
                format!("{db} on {cn}: {e}; nothing changed"),
            )
        };
        let mut f = read_facts(params, &cn, db, groupid, rows)
            .await
            .map_err(unreachable)?;
        // A drain to start: check first what would make its moves fail or hang.
        if f.only_copies > 0 && f.running_job.is_none() {
            let c = pg::connect(params, &cn, db).await.map_err(unreachable)?;
            let tables = rebalance::tables_on_group(&c, groupid)
                .await
                .map_err(unreachable)?;
            let p = rebalance::read_preflight(params, &c, &cn, db, &f.rows_all, &tables)
                .await
                .map_err(unreachable)?;
            f.preflight = rebalance::preflight_refusals(&p, mode, ctx.topo.databases.len())
                .into_iter()
                .map(|r| format!("{db}: the drain would fail: {r}"))
                .collect();
        }
        out.push(f);
    }
    Ok((cn, out))
}

/// Read one database's facts on the coordinator leader (`rows`: pg_dist_node as observed; read
/// again here, as a drain may have taken long).
async fn read_facts(
    params: &pg::PgParams,
    cn: &Endpoint,
    db: &str,
    groupid: i32,
    _rows: &[crate::citus::DistNode],
) -> Result<DbFacts, pg::PgError> {
    let c = pg::connect(params, cn, db).await?;
    let meta = pg::bounded(pg::READ_LIMIT, "pg_dist_node", async {
        crate::citus::read_metadata(&c, db)
            .await
            .map_err(|e| match e {
                crate::citus::CitusError::Pg(p) => p,
                other => pg::PgError::Query {
                    code: None,
                    message: other.to_string(),
                },
            })
    })
    .await?;
    let rows_all = meta.nodes;
    let (placements, only_copies) = rebalance::placements(&c, groupid).await?;
    let running_job = rebalance::running_job(&c).await?;
    let other_targets = rows_all
        .iter()
        .filter(|r| {
            r.groupid != 0
                && r.groupid != groupid
                && r.is_primary()
                && r.isactive
                && r.shouldhaveshards
        })
        .count();
    Ok(DbFacts {
        facts: RemoveFacts {
            database: db.to_owned(),
            groupid,
            rows: rows_all
                .iter()
                .filter(|r| r.groupid == groupid)
                .cloned()
                .collect(),
            placements,
            only_copies,
            other_targets,
            running_job,
        },
        rows_all,
        preflight: Vec::new(),
    })
}

/// The writes before a drain: no new shards on the group.
async fn apply_before_move(
    params: &pg::PgParams,
    cn: &Endpoint,
    f: &DbFacts,
    steps: &[RemoveStep],
) -> Result<(), pg::PgError> {
    for s in steps {
        if let RemoveStep::StopNewShards { nodeid, .. } = s
            && let Some(r) = f.facts.rows.iter().find(|r| r.nodeid == *nodeid)
        {
            let fence = vec![(r.nodeid, format!("{}:{}", r.nodename, r.nodeport))];
            let w = NodeWrite::StopNewShards {
                host: r.nodename.clone(),
                port: r.nodeport,
            };
            rebalance::write_nodes(params, cn, &f.facts.database, &fence, &[w]).await?;
        }
    }
    Ok(())
}

/// Start the drain (or take the job under way) and follow it.
async fn drain(
    params: &pg::PgParams,
    cn: &Endpoint,
    db: &str,
    steps: &[RemoveStep],
    mode: TransferMode,
    bar: bool,
) -> Result<Followed, pg::PgError> {
    let c = pg::connect(params, cn, db).await?;
    let (job, sizes) = match steps.iter().find_map(|s| match s {
        RemoveStep::FollowJob { job_id } => Some(*job_id),
        _ => None,
    }) {
        Some(j) => (Some(j), Default::default()),
        None => {
            let moves = rebalance::read_plan(&c, true).await?;
            let sizes = moves.iter().map(|m| (m.shardid, m.shard_size)).collect();
            (rebalance::start(&c, true, mode).await?, sizes)
        }
    };
    let Some(job) = job else {
        // Citus found nothing to move: nothing is left to follow.
        return Ok(Followed::Ended(Progress {
            job_id: 0,
            state: JobState::Finished,
            shards_moved: 0,
            shards_total: 0,
            bytes_moved: 0,
            bytes_total: None,
            errors: Vec::new(),
        }));
    };
    rebalance::follow(params, cn, db, job, &sizes, &format!("{db}: drain"), bar).await
}
