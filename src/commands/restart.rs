//! `citusctl restart SCOPE...|--all`: restart PostgreSQL through Patroni (`POST /restart`),
//! group by group (workers first, the coordinator last), replicas before the leader. A worker
//! leader is restarted inside a Citus pause held on the coordinator (as a switchover), so writes
//! through the coordinator wait instead of failing; the pause is bounded by --pause-timeout.

use std::time::Duration;

use super::groups::{ActionReport, Selection, confirm};
use super::resync::observe_parts;
use super::switchover::{pause, rollback_all, wait_writable};
use crate::context::Context;
use crate::exit::Exit;
use crate::health::group_view;
use crate::observe::probe_groups;
use crate::output::{self, Format};
use crate::topology::GroupKind;

/// Restart PostgreSQL on every member of the chosen groups, in a safe order.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub groups: Selection,
    /// Only members whose configuration has a change pending a restart.
    #[arg(long)]
    pub pending: bool,
    /// Do not pause worker groups around their leader's restart.
    #[arg(long)]
    pub no_pause: bool,
    /// Longest a worker group may stay paused while its leader restarts.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub pause_timeout: Duration,
    /// Do not ask.
    #[arg(short = 'y', long, alias = "force")]
    pub yes: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    let groups = args.groups.resolve(&ctx.topo)?;
    let client = ctx.patroni_writer()?;
    let pg = ctx.pg_params()?;
    let names: Vec<&str> = groups.iter().map(|g| g.scope.as_str()).collect();
    if !confirm(
        args.yes,
        format!(
            "Restart PostgreSQL on {} (replicas first, then leaders)?",
            names.join(", ")
        ),
    )
    .await?
    {
        return Ok(Exit::No);
    }
    let mut report = ActionReport::new("restart");
    let body = if args.pending {
        serde_json::json!({"restart_pending": true})
    } else {
        serde_json::json!({})
    };
    for g in groups {
        let probe = probe_groups(&client, &[g]).await;
        let view = group_view(g, &probe[0]);
        let leader = view.single_leader().ok().map(|l| l.name.clone());
        // Replicas first, the leader last.
        let mut order: Vec<_> = g
            .members
            .iter()
            .filter(|m| Some(&m.name) != leader.as_ref())
            .collect();
        order.extend(
            g.members
                .iter()
                .filter(|m| Some(&m.name) == leader.as_ref()),
        );
        for m in order {
            let pending = view
                .members
                .iter()
                .find(|v| v.name == m.name)
                .and_then(|v| v.doc.as_ref())
                .is_some_and(|d| d.pending_restart);
            if args.pending && !pending {
                report.push(
                    &g.scope,
                    &m.name,
                    Ok((200, "no restart pending: skipped".into())),
                );
                continue;
            }
            let is_leader = Some(&m.name) == leader.as_ref();
            let mut held = Vec::new();
            if is_leader && g.kind == GroupKind::Worker && !args.no_pause {
                match observe_parts(&ctx.topo, &client, &pg).await {
                    Ok((_, tables, cn_ep)) => {
                        for (db, rows) in &tables {
                            if let Some(r) = rows
                                .iter()
                                .find(|r| r.groupid == g.group_id && r.is_primary())
                            {
                                let port = u16::try_from(r.nodeport).unwrap_or(5432);
                                match pause(
                                    &pg,
                                    &cn_ep,
                                    db,
                                    r.nodeid,
                                    &r.nodename,
                                    port,
                                    args.pause_timeout,
                                    Duration::from_secs(5),
                                )
                                .await
                                {
                                    Ok(c) => held.push((db.clone(), c)),
                                    Err(e) => crate::ui::say(&format!(
                                        "warning: {}: cannot pause {} in {db}: {e}; restarting without it",
                                        g.scope, g.scope
                                    )),
                                }
                            }
                        }
                    }
                    Err(e) => crate::ui::say(&format!(
                        "warning: {}: cannot reach the coordinator ({e}); restarting without a pause",
                        g.scope
                    )),
                }
            }
            let r = client
                .send(
                    reqwest::Method::POST,
                    &m.api,
                    "restart",
                    Some(&body),
                    Duration::from_secs(120),
                )
                .await
                .map_err(|e| e.to_string());
            if !held.is_empty() {
                let writable = tokio::time::timeout(
                    args.pause_timeout,
                    wait_writable(
                        &pg,
                        &ctx.topo.databases[0],
                        &m.pg,
                        g.vip.as_ref().map(|v| v.rw.clone()),
                    ),
                )
                .await;
                // Nothing in pg_dist_node changes: the pause only makes writes wait.
                if writable.is_ok() {
                    for (_, c) in held {
                        let _ = c.batch_execute("COMMIT").await;
                    }
                } else {
                    rollback_all(held).await;
                }
            }
            report.push(&g.scope, &m.name, r);
        }
    }
    output::print(&output::render(&report, args.format))?;
    Ok(report.exit())
}
