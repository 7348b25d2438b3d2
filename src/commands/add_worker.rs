//! `citusctl add-worker SCOPE`: register a worker group from the inventory in Citus, in every
//! inventory database, on the coordinator leader.
//!
//! Changes: adds `pg_dist_node` rows (citus_add_node; citus_set_coordinator_host when the
//! coordinator itself is not registered). VIP mode: the RW VIP as `primary`, the RO VIP as
//! `secondary`, after checking that each VIP lands on a member of the group in the right role.
//! Direct mode: the Patroni leader's address as `primary` (and `--with-secondaries`: running
//! replicas as `secondary`). Refuses (exit 4) when a VIP lands on the wrong role or cluster,
//! an address is registered for another group, the group already holds other addresses, or
//! the group or the coordinator has no single writable leader. Running it twice changes nothing.
//! `--rebalance`: then Citus's background rebalance onto the group, as `citusctl rebalance`
//! runs it (refused, exit 4, when a move would fail or hang; Ctrl-C leaves it running).

use anyhow::bail;

use super::metadata_report::{CONFIRM_HINT, MetadataOutcome, MetadataReport};
use crate::apply::{UpdateOptions, WhenBusy, apply_database};
use crate::context::Context;
use crate::exit::Exit;
use crate::member_sql::landing;
use crate::ops::confirm;
use crate::ops::observe::{observe_for_write, observe_parts};
use crate::ops::rebalance::{self, RebalanceOutcome, TransferMode};
use crate::output::{self, Format};
use crate::plan::{AddWorkerFacts, Refusal, plan_add_worker};
use crate::topology::GroupKind;

/// Register a worker group in pg_dist_node (RW VIP as primary, RO VIP as secondary, or the
/// leader's real address in direct mode).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The worker group's Patroni scope, as in the inventory.
    pub scope: String,

    /// Direct mode: also register the running replicas as `secondary` rows.
    #[arg(long)]
    pub with_secondaries: bool,

    /// Then move shards onto the group: `citusctl rebalance`, followed to its end.
    #[arg(long)]
    pub rebalance: bool,

    /// How Citus copies a shard (with --rebalance).
    #[arg(long, value_enum, default_value_t = TransferMode::Auto, requires = "rebalance")]
    pub shard_transfer_mode: TransferMode,

    /// Show the plan and stop.
    #[arg(long)]
    pub dry_run: bool,

    /// Apply without asking (needed when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    let group = ctx.group(&args.scope)?;
    if group.kind != GroupKind::Worker {
        bail!(crate::UsageError(format!(
            "`{}` is the coordinator, not a worker group",
            args.scope
        )));
    }
    let client = ctx.patroni_reader()?;
    let pg = ctx.pg_params()?;
    let mut report = MetadataReport::new(&ctx.topo.name);
    let refuse = |mut report: MetadataReport, exit: Exit, why: String| -> anyhow::Result<Exit> {
        report.outcome = MetadataOutcome::Refused;
        report.plan.refused.push(Refusal {
            scope: args.scope.clone(),
            reason: why,
        });
        output::print(&output::render(&report, args.format))?;
        Ok(exit)
    };
    // Unreachable coordinator: 3, as in every command; no single writable leader: 4.
    let (plan, cn_ep) =
        match observe_and_plan(&ctx, &client, &pg, group, args.with_secondaries).await {
            Ok(x) => x,
            Err((exit, why)) => return refuse(report, exit, why),
        };
    report.coordinator = Some(cn_ep.to_string());
    report.plan = plan;
    let gi = ctx.topo.index_of(&group.scope).expect("group exists");

    if report.plan.is_empty() {
        report.outcome = MetadataOutcome::NothingToDo;
        if args.format == Format::Pretty {
            crate::ui::say(&format!(
                "{} is already registered as the inventory says.",
                args.scope
            ));
        }
        if args.rebalance {
            return then_rebalance(&ctx, &client, &pg, &args, report, Exit::Ok).await;
        }
        output::print(&output::render(&report, args.format))?;
        return Ok(Exit::Ok);
    }
    if args.dry_run {
        if args.rebalance {
            crate::ui::say(
                "note: Citus plans the rebalance once the group is registered; `citusctl rebalance --dry-run` shows it then",
            );
        }
        report.outcome = MetadataOutcome::Planned;
        output::print(&output::render(&report, args.format))?;
        return Ok(Exit::Ok);
    }
    if !args.yes {
        report.show_before_prompt(args.format)?;
        let question = if args.rebalance {
            format!(
                "Register {} in pg_dist_node, then move shards onto it?",
                args.scope
            )
        } else {
            format!("Register {} in pg_dist_node?", args.scope)
        };
        if !confirm::ask(&question, CONFIRM_HINT).await? {
            crate::ui::say("Nothing changed.");
            return Ok(Exit::No);
        }
        // Look again: the prompt may have lasted long, and the cluster may have moved since.
        let again = observe_and_plan(&ctx, &client, &pg, group, args.with_secondaries).await;
        let moved = match &again {
            Ok((p, ep)) => (p.summary() != report.plan.summary() || ep != &cn_ep)
                .then(|| "this is the plan now, run again to apply it".to_owned()),
            Err((_, why)) => Some(format!("now: {why}")),
        };
        if let Some(what) = moved {
            if let Ok((p, _)) = again {
                report.plan = p;
            }
            report.outcome = MetadataOutcome::Changed;
            report.error = Some(format!(
                "the cluster changed while you were deciding: nothing written; {what}"
            ));
            output::print(&output::render(&report, args.format))?;
            return Ok(Exit::No);
        }
    }
    let opts = UpdateOptions {
        force: false,
        lock_cooldown_ms: 10_000,
        statement_timeout_ms: 30_000,
        when_busy: WhenBusy::Wait,
    };
    for dbp in &report.plan.databases {
        if let Err(e) = apply_database(&pg, &cn_ep, dbp, opts).await {
            report.outcome = MetadataOutcome::Failed;
            report.error = Some(format!(
                "{}: {e} (rolled back: nothing changed in {})",
                dbp.database, dbp.database
            ));
            output::print(&output::render(&report, args.format))?;
            return Ok(Exit::for_write_error(&e));
        }
    }
    report.outcome = MetadataOutcome::Applied;
    // Verify: the group's rows now agree (list's verdicts).
    let verified = match observe_parts(&ctx.topo, &client, &pg).await {
        Ok((views, tables, _)) => tables.iter().all(|(db, rows)| {
            let mine: Vec<_> = rows
                .iter()
                .filter(|r| r.groupid == group.group_id)
                .collect();
            crate::verdict::check_group(db, group, &views[gi], &mine)
                .iter()
                .all(|c| c.verdict == crate::verdict::Verdict::Ok)
        }),
        Err(_) => false,
    };
    report.verified = Some(verified);
    if args.rebalance && verified {
        return then_rebalance(&ctx, &client, &pg, &args, report, Exit::Ok).await;
    }
    output::print(&output::render(&report, args.format))?;
    Ok(if verified { Exit::Ok } else { Exit::No })
}

/// `--rebalance`: after the registration, Citus's background rebalance, followed to its end
/// (the prompt, if any, covered it). The exit status is the rebalance's when it did not go well.
async fn then_rebalance(
    ctx: &Context,
    client: &crate::patroni::PatroniClient,
    pg: &crate::pg::PgParams,
    args: &Args,
    mut report: MetadataReport,
    exit: Exit,
) -> anyhow::Result<Exit> {
    let exit = match rebalance::prepare(&ctx.topo, client, pg, args.shard_transfer_mode).await {
        Err(b) => {
            report.error = Some(format!("rebalance: {}", b.reason));
            b.exit
        }
        Ok((cn, mut s)) => {
            if s.outcome == RebalanceOutcome::Planned {
                let bar = crate::ui::wants_spinner(args.format == Format::Pretty);
                rebalance::execute(pg, &cn, &mut s, args.shard_transfer_mode, true, bar).await;
            }
            let e = s.exit();
            report.rebalance = Some(s);
            if e == Exit::Ok { exit } else { e }
        }
    };
    output::print(&output::render(&report, args.format))?;
    Ok(exit)
}

/// Observe the cluster and plan the registration: the plan and the coordinator leader, or why
/// not (with its exit status).
async fn observe_and_plan(
    ctx: &Context,
    client: &crate::patroni::PatroniClient,
    pg: &crate::pg::PgParams,
    group: &crate::topology::Group,
    with_secondaries: bool,
) -> Result<(crate::plan::MetadataPlan, crate::topology::Endpoint), (Exit, String)> {
    let (views, tables, cn_ep) = match observe_for_write(&ctx.topo, client, pg).await {
        Ok(o) => (o.views, o.tables, o.coordinator.1),
        Err(b) => return Err((b.exit, b.reason)),
    };
    let gi = ctx.topo.index_of(&group.scope).expect("group exists");
    let view = &views[gi];
    let db = &ctx.topo.databases[0];
    let leader = view
        .single_leader()
        .map(|m| (m.name.clone(), m.endpoint.clone()));
    let leader_sql = match &leader {
        Ok((_, ep)) => landing(pg, ep, db).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.clone()),
    };
    let (rw, ro) = match &group.vip {
        Some(v) => (
            Some(landing(pg, &v.rw, db).await.map_err(|e| e.to_string())),
            match &v.ro {
                Some(ro) => Some(landing(pg, ro, db).await.map_err(|e| e.to_string())),
                None => None,
            },
        ),
        None => (None, None),
    };
    let replicas = view
        .members
        .iter()
        .filter(|m| {
            m.doc
                .as_ref()
                .is_some_and(|d| d.role().is_replica() && d.is_healthy())
        })
        .map(|m| (m.name.clone(), m.endpoint.clone()))
        .collect();
    let coordinator = match &ctx.topo.coordinator().vip {
        Some(v) => v.rw.clone(),
        None => cn_ep.clone(),
    };
    let facts = AddWorkerFacts {
        leader,
        leader_sql,
        replicas,
        rw,
        ro,
        coordinator,
    };
    plan_add_worker(group, &facts, &tables, with_secondaries)
        .map(|p| (p, cn_ep))
        .map_err(|why| (Exit::Refused, why))
}
