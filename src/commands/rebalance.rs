//! `citusctl rebalance`: spread the shards over the worker groups with Citus's background
//! rebalance, and follow it.
//!
//! Changes: starts `citus_rebalance_start()` on the coordinator leader in every inventory
//! database (the moves are Citus's own plan, `get_rebalance_table_shards_plan()`); `--stop`
//! calls `citus_rebalance_stop()`. Refuses (exit 4) when a move would fail or hang: a table to
//! move without a primary key or replica identity (in the `auto` transfer mode), a worker with
//! `wal_level` below `logical` (logical transfer modes), too few `max_worker_processes`. A job
//! already under way is followed, never started twice. Ctrl-C stops following (exit 130); the
//! job goes on in the coordinator.

use serde::Serialize;

use crate::context::Context;
use crate::exit::Exit;
use crate::ops::confirm;
use crate::ops::observe::observe_for_write;
use crate::ops::rebalance::{
    self, DatabaseRebalance, Followed, RebalanceOutcome, RebalanceSummary, TransferMode,
};
use crate::output::{self, Format, Render};
use crate::pg;

/// Move shards onto empty or lightly used worker groups (Citus's background rebalance), with a
/// progress bar.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show Citus's plan and the checks, and stop.
    #[arg(long, conflicts_with_all = ["stop", "yes"])]
    pub dry_run: bool,

    /// Start without asking (needed when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Start nothing: follow the rebalance under way to its end, or say how the last one ended
    /// (a rebalance this command starts is followed anyway, unless --no-wait).
    #[arg(long, conflicts_with = "no_wait")]
    pub wait: bool,

    /// Start the rebalance and return; it goes on in the background.
    #[arg(long)]
    pub no_wait: bool,

    /// Stop the rebalance under way (citus_rebalance_stop); moves already done stay done.
    #[arg(long, conflicts_with_all = ["wait", "no_wait"])]
    pub stop: bool,

    /// How Citus copies a shard.
    #[arg(long, value_enum, default_value_t = TransferMode::Auto)]
    pub shard_transfer_mode: TransferMode,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

const CONFIRM_HINT: &str =
    "this moves shards and stdin is not a terminal: pass --yes to start, or --dry-run to look";

#[derive(Debug, Serialize)]
struct Report {
    format_version: u32,
    cluster: String,
    #[serde(flatten)]
    summary: RebalanceSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Render for Report {
    fn pretty(&self) -> String {
        let mut s = self.summary.pretty();
        if let Some(e) = &self.error {
            s.push_str(&format!("error: {e}\n"));
        }
        s.push_str(&format!("outcome: {}\n", self.summary.outcome.as_str()));
        s
    }
    fn tsv(&self) -> String {
        let mut s = String::from("database\ttable\tshardid\tshard_size\tsource\ttarget\n");
        for d in &self.summary.databases {
            for m in &d.moves {
                s.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
                    output::tsv_field(&d.database),
                    output::tsv_field(&m.table),
                    m.shardid,
                    m.shard_size,
                    m.source,
                    m.target
                ));
            }
        }
        s
    }
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    let client = ctx.patroni_reader()?;
    let params = ctx.pg_params()?;
    let report = |summary: RebalanceSummary, error: Option<String>| Report {
        format_version: crate::status::FORMAT_VERSION,
        cluster: ctx.topo.name.clone(),
        summary,
        error,
    };
    let blocked = |exit: Exit, why: String| -> anyhow::Result<Exit> {
        let r = report(
            RebalanceSummary {
                coordinator: String::new(),
                databases: Vec::new(),
                outcome: RebalanceOutcome::Refused,
            },
            Some(why),
        );
        output::print(&output::render(&r, args.format))?;
        Ok(exit)
    };
    if args.stop || args.wait {
        let o = match observe_for_write(&ctx.topo, &client, &params).await {
            Ok(o) => o,
            Err(b) => return blocked(b.exit, b.reason),
        };
        let cn = o.coordinator.1;
        let mut s = RebalanceSummary {
            coordinator: cn.to_string(),
            databases: Vec::new(),
            outcome: if args.stop {
                RebalanceOutcome::Stopped
            } else {
                RebalanceOutcome::NothingToDo
            },
        };
        for db in &ctx.topo.databases {
            let mut d = DatabaseRebalance {
                database: db.clone(),
                moves: Vec::new(),
                refusals: Vec::new(),
                running_job: None,
                job_id: None,
                progress: None,
                error: None,
            };
            let c = match pg::connect(&params, &cn, db).await {
                Ok(c) => c,
                Err(e) => return blocked(Exit::Unreachable, format!("{db} on {cn}: {e}")),
            };
            if args.stop {
                match rebalance::stop(&c).await {
                    Ok(Some(j)) => {
                        d.job_id = Some(j);
                        crate::ui::say(&format!("{db}: stopped rebalance job {j}"));
                    }
                    Ok(None) => crate::ui::say(&format!("{db}: no rebalance under way")),
                    Err(e) => {
                        d.error = Some(format!("citus_rebalance_stop(): {e}"));
                        s.outcome = RebalanceOutcome::Failed;
                    }
                }
                d.progress = rebalance::progress(&c, &mut Default::default())
                    .await
                    .ok()
                    .flatten();
            } else {
                match rebalance::running_job(&c).await {
                    Ok(Some(j)) => {
                        d.running_job = Some(j);
                        d.job_id = Some(j);
                        match rebalance::follow(
                            &params,
                            &cn,
                            db,
                            j,
                            &Default::default(),
                            &format!("{db}: rebalance"),
                            crate::ui::wants_spinner(args.format == Format::Pretty),
                        )
                        .await
                        {
                            Ok(Followed::Ended(p)) => {
                                s.outcome = if p.state == rebalance::JobState::Finished
                                    && s.outcome != RebalanceOutcome::Failed
                                {
                                    RebalanceOutcome::Finished
                                } else {
                                    RebalanceOutcome::Failed
                                };
                                d.progress = Some(p);
                            }
                            Ok(Followed::Interrupted(p)) => {
                                crate::ui::say(&format!(
                                    "interrupted: rebalance job {j} goes on in the background; {}",
                                    rebalance::FOLLOW_HINT
                                ));
                                d.progress = p;
                                s.databases.push(d);
                                s.outcome = RebalanceOutcome::Interrupted;
                                break;
                            }
                            Err(e) => {
                                d.error = Some(format!("lost track of job {j}: {e}"));
                                s.outcome = RebalanceOutcome::Failed;
                            }
                        }
                    }
                    Ok(None) => {
                        crate::ui::say(&format!("{db}: no rebalance under way"));
                        // The last one's end, for the record (a failed one is a "no").
                        d.progress = rebalance::progress(&c, &mut Default::default())
                            .await
                            .ok()
                            .flatten();
                        if d.progress
                            .as_ref()
                            .is_some_and(|p| p.state != rebalance::JobState::Finished)
                        {
                            s.outcome = RebalanceOutcome::Failed;
                        }
                    }
                    Err(e) => {
                        d.error = Some(e.to_string());
                        s.outcome = RebalanceOutcome::Failed;
                    }
                }
            }
            s.databases.push(d);
        }
        let exit = s.exit();
        output::print(&output::render(&report(s, None), args.format))?;
        return Ok(exit);
    }

    let (cn, mut s) =
        match rebalance::prepare(&ctx.topo, &client, &params, args.shard_transfer_mode).await {
            Ok(x) => x,
            Err(b) => return blocked(b.exit, b.reason),
        };
    if matches!(
        s.outcome,
        RebalanceOutcome::Refused | RebalanceOutcome::NothingToDo
    ) || args.dry_run
    {
        let exit = s.exit();
        output::print(&output::render(&report(s, None), args.format))?;
        return Ok(exit);
    }
    if !args.yes && !s.under_way() {
        let plan = output::render(&report(s.clone(), None), Format::Pretty);
        crate::ui::say(plan.trim_end());
        if !confirm::ask(
            &format!("Move {} shard(s) in the background?", s.moves()),
            CONFIRM_HINT,
        )
        .await?
        {
            crate::ui::say("Nothing changed.");
            return Ok(Exit::No);
        }
    }
    rebalance::execute(
        &params,
        &cn,
        &mut s,
        args.shard_transfer_mode,
        !args.no_wait,
        crate::ui::wants_spinner(args.format == Format::Pretty),
    )
    .await;
    if s.outcome == RebalanceOutcome::Started {
        crate::ui::say(&format!(
            "the rebalance goes on in the background; {}",
            rebalance::FOLLOW_HINT
        ));
    }
    let exit = s.exit();
    output::print(&output::render(&report(s, None), args.format))?;
    Ok(exit)
}
