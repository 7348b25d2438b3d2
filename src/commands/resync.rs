//! `citusctl resync`: make `pg_dist_node` match the inventory and Patroni.
//!
//! Changes: `pg_dist_node` rows on the coordinator leader (citus_update_node, citus_add_node,
//! citus_set_coordinator_host, citus_activate_node), one transaction per database.
//! Refuses (exit 4) to write a group with no leader or two leaders, a direct-mode group whose
//! leader is not writable, and anything at all when the coordinator has no single writable
//! leader. Observe -> plan -> show -> confirm -> apply -> verify; `--dry-run` stops after the plan.

use std::time::{Duration, Instant};

use super::metadata_report::{MetadataOutcome, MetadataReport};

use crate::apply::{UpdateOptions, WhenBusy, apply_database, apply_setting};
use crate::context::Context;
use crate::exit::Exit;
use crate::ops::confirm;
use crate::ops::observe::observe_for_write;
use crate::ops::plan::{plan_checked, plan_settings};
use crate::output::{self, Format};
use crate::plan::plan_metadata;

/// Make pg_dist_node match the inventory and the live Patroni state.
///
/// Direct mode: each group's primary row follows its Patroni leader (a secondary row holding the
/// new leader's address swaps with it, atomically); the coordinator's row follows the
/// coordinator leader. VIP mode: the primary row is the RW VIP and the secondary row the RO VIP;
/// rows that were edited, removed or never added are repaired.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these groups (Patroni scopes); all when none is given.
    pub scopes: Vec<String>,

    /// Show the plan and stop.
    #[arg(long, conflicts_with_all = ["check", "watch"])]
    pub dry_run: bool,

    /// Change nothing; exit 1 when pg_dist_node differs from what it should be (for cron).
    #[arg(long, conflicts_with = "watch")]
    pub check: bool,

    /// Apply without asking (needed when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Same as --yes (patronictl's habit; it means nothing else in citusctl).
    #[arg(long)]
    pub force: bool,

    /// Run as a controller: repair pg_dist_node whenever it drifts, until SIGTERM or Ctrl-C.
    #[arg(long)]
    pub watch: bool,

    /// Serve the controller's Prometheus metrics on this address (with --watch), e.g.
    /// 127.0.0.1:9187: GET /metrics (passes, repairs, errors, seconds since the last good
    /// pass, drift per group).
    #[arg(long, value_name = "ADDR", requires = "watch")]
    pub metrics: Option<std::net::SocketAddr>,

    /// How often the controller looks (with --watch).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,

    /// Let Citus terminate the sessions that block citus_update_node once they have had this
    /// long to finish (Citus `force => true, lock_cooldown`). Without it, a long writer on the
    /// group delays the update up to --statement-timeout, then nothing changes.
    #[arg(long, alias = "lock-cooldown", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub terminate_after: Option<Duration>,

    /// Roll back when one Citus call waits longer than this.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub statement_timeout: Duration,

    /// After changing citus.use_secondary_nodes on a coordinator member, end its other client
    /// sessions (the setting applies to new sessions only).
    #[arg(long)]
    pub terminate_sessions: bool,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    ctx.check_scopes(&args.scopes)?;
    let client = ctx.patroni_reader()?;
    let pg = ctx.pg_params()?;
    let opts = UpdateOptions {
        force: args.terminate_after.is_some(),
        lock_cooldown_ms: args
            .terminate_after
            .map(|d| i32::try_from(d.as_millis()).unwrap_or(i32::MAX))
            .unwrap_or(0),
        statement_timeout_ms: u64::try_from(args.statement_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
        // The controller skips a pass while another citusctl writes; a person's resync waits.
        when_busy: if args.watch {
            WhenBusy::Skip
        } else {
            WhenBusy::Wait
        },
    };
    if args.watch {
        return super::resync_watch::run(
            &ctx.topo,
            &client,
            &pg,
            &args.scopes,
            args.interval,
            opts,
            args.metrics,
        )
        .await;
    }

    let mut report = MetadataReport::new(&ctx.topo.name);
    let mut observed = match observe_for_write(&ctx.topo, &client, &pg).await {
        Ok(o) => o,
        Err(b) => {
            report.outcome = MetadataOutcome::Refused;
            report.error = Some(b.reason);
            output::print(&output::render(&report, args.format))?;
            return Ok(b.exit);
        }
    };
    report.coordinator = Some(observed.coordinator.0.clone());
    report.plan = plan_checked(
        &ctx.topo,
        &observed.views,
        &observed.tables,
        &pg,
        &args.scopes,
    )
    .await;
    plan_settings(
        &ctx.topo,
        &observed.views,
        &observed.tables,
        &pg,
        &args.scopes,
        &mut report.plan,
    )
    .await;
    let refused = !report.plan.refused.is_empty();

    if args.dry_run || args.check || report.plan.is_empty() {
        report.outcome = if report.plan.is_empty() {
            MetadataOutcome::NothingToDo
        } else {
            MetadataOutcome::Planned
        };
        output::print(&output::render(&report, args.format))?;
        return Ok(if refused {
            Exit::Refused
        } else if args.check && !report.plan.is_empty() {
            Exit::No
        } else {
            Exit::Ok
        });
    }

    if !(args.yes || args.force) {
        report.show_before_prompt(args.format)?;
        if !confirm::ask(
            &format!(
                "Apply {} change(s) to pg_dist_node?",
                report.plan.change_count()
            ),
            super::metadata_report::CONFIRM_HINT,
        )
        .await?
        {
            crate::ui::say("Nothing changed.");
            return Ok(Exit::No);
        }
        // Look again: the prompt may have lasted long, and the cluster may have moved since.
        // When it cannot be seen now, nothing is written on the strength of the old look.
        let o = match observe_for_write(&ctx.topo, &client, &pg).await {
            Ok(o) => o,
            Err(b) => {
                report.outcome = MetadataOutcome::Changed;
                report.error = Some(format!(
                    "the cluster cannot be seen now ({}): nothing written",
                    b.reason
                ));
                output::print(&output::render(&report, args.format))?;
                return Ok(b.exit);
            }
        };
        let mut again = plan_checked(&ctx.topo, &o.views, &o.tables, &pg, &args.scopes).await;
        plan_settings(
            &ctx.topo,
            &o.views,
            &o.tables,
            &pg,
            &args.scopes,
            &mut again,
        )
        .await;
        if again.summary() != report.plan.summary() {
            report.plan = again;
            report.outcome = MetadataOutcome::Changed;
            report.error = Some(
                "the cluster changed while you were deciding: nothing written; this is the plan now, run again to apply it".into(),
            );
            output::print(&output::render(&report, args.format))?;
            return Ok(Exit::No);
        }
        observed = o;
    }

    let started = Instant::now();
    for db in &report.plan.databases {
        if let Err(e) = apply_database(&pg, &observed.coordinator.1, db, opts).await {
            report.outcome = MetadataOutcome::Failed;
            report.error = Some(format!(
                "{}: {e} (rolled back: nothing changed in {})",
                db.database, db.database
            ));
            output::print(&output::render(&report, args.format))?;
            return Ok(Exit::for_write_error(&e));
        }
        for c in &db.changes {
            tracing::info!(
                "{}: {} row {:?} {} -> {}",
                db.database,
                c.scope,
                c.nodeid,
                c.now.as_deref().unwrap_or("-"),
                c.wanted
            );
        }
        // Rows that moved followed a leader change without the pause: recover the 2PC
        // transactions it may have left prepared (crate::ops::recover).
        if !db.changes.is_empty() {
            let rec = crate::ops::recover::prepared_transactions(
                &pg,
                &observed.coordinator.1,
                std::slice::from_ref(&db.database),
            )
            .await;
            if let Some(msg) = crate::ops::recover::describe(&rec) {
                report.plan.notes.push(msg);
            }
        }
    }
    for s in &report.plan.settings {
        match apply_setting(&pg, s, &ctx.topo.databases[0], args.terminate_sessions).await {
            Ok(n) if args.terminate_sessions => {
                report.plan.notes.push(format!("{}: ended {n} client session(s)", s.member))
            }
            Ok(_) => report.plan.notes.push(format!(
                "{}: citus.use_secondary_nodes = {} applies to new sessions only (--terminate-sessions ends the old ones)",
                s.member, s.wanted
            )),
            Err(e) => {
                report.outcome = MetadataOutcome::Failed;
                report.error = Some(format!("{}: citus.use_secondary_nodes not set: {e}", s.member));
                output::print(&output::render(&report, args.format))?;
                return Ok(Exit::No);
            }
        }
    }
    report.outcome = MetadataOutcome::Applied;
    // Verify: read back and plan again; the groups we wrote must need nothing more.
    let again = match observe_for_write(&ctx.topo, &client, &pg).await {
        Ok(o) => plan_metadata(
            &ctx.topo,
            &o.views,
            &o.tables,
            &args.scopes,
            &report.plan.refused,
        ),
        Err(b) => {
            report.verified = Some(false);
            report.error = Some(format!("applied, but cannot read back: {}", b.reason));
            output::print(&output::render(&report, args.format))?;
            return Ok(Exit::No);
        }
    };
    report.verified = Some(again.is_empty());
    if args.yes || args.force || args.format != Format::Pretty {
        output::print(&output::render(&report, args.format))?;
    } else {
        crate::ui::say(&format!(
            "Applied {} change(s) in {} ms; pg_dist_node verified: {}.",
            report.plan.change_count(),
            started.elapsed().as_millis(),
            if again.is_empty() { "ok" } else { "NOT ok" }
        ));
    }
    Ok(if !again.is_empty() {
        Exit::No
    } else if refused {
        Exit::Refused
    } else {
        Exit::Ok
    })
}
