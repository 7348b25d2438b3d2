//! `citusctl failover SCOPE --candidate MEMBER`: for a group without a healthy leader.
//! Patroni's `POST /failover`, then `pg_dist_node` repaired the moment the candidate is
//! writable. No pause is possible (the old leader is gone): writes to the group fail until then.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::switchover_report::SwitchoverReport;
use crate::apply::{UpdateOptions, WhenBusy, apply_database};
use crate::context::Context;
use crate::exit::Exit;
use crate::ops::observe::observe_parts;
use crate::ops::plan::plan_checked;
use crate::ops::switchover::Outcome;
use crate::ops::wait::wait_writable;
use crate::output::{self, Format};

/// Promote a member of a group whose leader is gone, then repair pg_dist_node at once.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group's Patroni scope.
    pub scope: String,
    /// The member to promote.
    #[arg(long)]
    pub candidate: String,
    /// Do not ask.
    #[arg(short = 'y', long, alias = "force")]
    pub yes: bool,
    /// Give up waiting for the candidate to be writable after this long.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    let group = ctx.group(&args.scope)?;
    let Some(cand) = group.member(&args.candidate) else {
        bail!(crate::UsageError(format!(
            "{} is not a member of {} (members: {})",
            args.candidate,
            group.scope,
            group
                .members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let client = ctx.patroni_writer()?;
    let pg = ctx.pg_params()?;
    crate::ui::say(&format!(
        "Failover of {} to {}: no pause is possible; writes to the group fail until pg_dist_node points at {}.",
        group.scope, cand.name, cand.name
    ));
    if !super::groups::confirm(
        args.yes,
        format!("Fail {} over to {}?", group.scope, cand.name),
    )
    .await?
    {
        return Ok(Exit::No);
    }
    let started = Instant::now();
    let spinner = crate::ui::Spinner::start(
        crate::ui::wants_spinner(args.format == crate::output::Format::Pretty),
        &format!("failing {} over to {}", group.scope, cand.name),
    );
    let mut report = SwitchoverReport {
        format_version: crate::status::FORMAT_VERSION,
        scope: group.scope.clone(),
        ..Default::default()
    };
    let body = serde_json::json!({ "candidate": cand.name });
    // Ask the candidate itself first: the others may be the ones that are down.
    let order = std::iter::once(cand).chain(group.members.iter().filter(|m| m.name != cand.name));
    let mut answer = Err("no member answers".to_owned());
    for m in order {
        match client
            .send(
                reqwest::Method::POST,
                &m.api,
                "failover",
                Some(&body),
                args.timeout,
            )
            .await
        {
            Ok(r) => {
                answer = Ok(r);
                break;
            }
            Err(e) => answer = Err(format!("{}: {e}", m.name)),
        }
    }
    let exit = match answer {
        Ok((code, text)) if code == 200 || code == 503 => {
            report.result.patroni = Some(text);
            None
        }
        Ok((code, text)) => {
            report.result.patroni = Some(text.clone());
            report.result.outcome = Outcome::Refused;
            report.result.error = Some(format!(
                "Patroni refused the failover (HTTP {code}): {text}"
            ));
            Some(Exit::Refused)
        }
        Err(e) => {
            report.result.outcome = Outcome::Failed;
            report.result.error = Some(e);
            Some(Exit::No)
        }
    };
    if let Some(exit) = exit {
        drop(spinner);
        report.total_ms = started.elapsed().as_millis() as u64;
        output::print(&output::render(&report, args.format))?;
        return Ok(exit);
    }
    spinner.set_message(&format!("waiting for {} to be writable", cand.name));
    if tokio::time::timeout(
        args.timeout,
        wait_writable(
            &pg,
            &ctx.topo.databases[0],
            &cand.pg,
            group.vip.as_ref().map(|v| v.rw.clone()),
        ),
    )
    .await
    .is_err()
    {
        drop(spinner);
        report.result.outcome = Outcome::Failed;
        report.result.error = Some(format!(
            "{} is not writable after {}",
            cand.name,
            humantime::format_duration(args.timeout)
        ));
        report.total_ms = started.elapsed().as_millis() as u64;
        output::print(&output::render(&report, args.format))?;
        return Ok(Exit::No);
    }
    report.result.writable_after_ms = Some(started.elapsed().as_millis() as u64);
    // Repair the group's rows as soon as Patroni shows the new leader.
    spinner.set_message(&format!("repairing pg_dist_node for {}", group.scope));
    let deadline = Instant::now() + Duration::from_secs(30);
    let opts = UpdateOptions {
        force: true,
        lock_cooldown_ms: 2000,
        statement_timeout_ms: 30_000,
        when_busy: WhenBusy::Wait,
    };
    loop {
        if let Ok((views, tables, cn_ep)) = observe_parts(&ctx.topo, &client, &pg).await {
            let plan = plan_checked(
                &ctx.topo,
                &views,
                &tables,
                &pg,
                std::slice::from_ref(&group.scope),
            )
            .await;
            if plan.refused.is_empty() {
                for db in &plan.databases {
                    if let Err(e) = apply_database(&pg, &cn_ep, db, opts).await {
                        report.result.error =
                            Some(format!("{}: {e}: run `citusctl resync`", db.database));
                    }
                    for c in &db.changes {
                        report.result.rows_changed.push(c.describe(&db.database));
                    }
                }
                // Transactions half-way through 2PC on the old leader: recover them now.
                let rec =
                    crate::ops::recover::prepared_transactions(&pg, &cn_ep, &ctx.topo.databases)
                        .await;
                if let Some(msg) = crate::ops::recover::describe(&rec) {
                    spinner.say(&msg);
                }
                break;
            }
        }
        if Instant::now() > deadline {
            report.result.error =
                Some("pg_dist_node not repaired within 30 s: run `citusctl resync`".into());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(spinner);
    report.result.new_leader = Some(cand.name.clone());
    report.result.outcome = Outcome::Switched;
    report.total_ms = started.elapsed().as_millis() as u64;
    output::print(&output::render(&report, args.format))?;
    Ok(if report.result.error.is_some() {
        Exit::No
    } else {
        Exit::Ok
    })
}
