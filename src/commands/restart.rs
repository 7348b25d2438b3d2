//! `citusctl restart SCOPE...|--all`: restart PostgreSQL through Patroni (`POST /restart`),
//! group by group (workers first, the coordinator last), replicas before the leader. A worker
//! leader is restarted inside a Citus pause held on the coordinator (as a switchover), so writes
//! through the coordinator wait instead of failing. The pause is had with short tries for at
//! most --pause-wait (when it cannot be had, the leader is not restarted: exit 4), held for at
//! most --pause-timeout (Patroni's restart included), and always ended with ROLLBACK: a restart
//! changes nothing in pg_dist_node, whatever the pause's method (before Citus 12.1 the pause
//! renames the row, and a COMMIT would keep the rename).

use std::time::Duration;

use super::groups::{ActionReport, Selection, confirm};
use crate::context::Context;
use crate::exit::Exit;
use crate::health::group_view;
use crate::observe::probe_groups;
use crate::ops::observe::observe_parts;
use crate::ops::wait::wait_writable;
use crate::output::{self, Format};
use crate::pause::{GroupPause, PauseOptions, PauseReport, PauseTarget};
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
    /// Longest a worker group may stay paused while its leader restarts (Patroni's restart
    /// included); past it the pause is let go.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub pause_timeout: Duration,
    /// How long to keep trying to get the pause (short tries that never make clients wait
    /// long); past it the leader is not restarted (exit 4) and the sessions in the way are named.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub pause_wait: Duration,
    /// Instead of giving up, let Citus terminate the sessions in the pause's way once they have
    /// had this long to finish. They are named.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub terminate_after: Option<Duration>,
    /// Hold reads of a worker group too while its leader restarts, not only writes: the group's
    /// distributed tables are locked (ACCESS EXCLUSIVE) on the coordinator, before the pause.
    /// The price: meanwhile EVERY query through the coordinator on those tables waits, other
    /// groups' shards included; queries started on worker nodes directly are not held. Needs
    /// the right to LOCK those tables.
    #[arg(long, conflicts_with = "no_pause")]
    pub hold_reads: bool,
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
    let spinner_on = crate::ui::wants_spinner(args.format == Format::Pretty);
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
            let spinner = crate::ui::Spinner::start(
                spinner_on,
                &format!("restarting {} ({})", m.name, g.scope),
            );
            let is_leader = Some(&m.name) == leader.as_ref();
            let mut held: Option<GroupPause> = None;
            if is_leader && g.kind == GroupKind::Worker && !args.no_pause {
                let targets = match observe_parts(&ctx.topo, &client, &pg).await {
                    Ok((_, tables, cn_ep)) => {
                        Ok((cn_ep, PauseTarget::of_group(&tables, g.group_id)))
                    }
                    Err(e) => Err(format!(
                        "cannot reach the coordinator to pause {}: {e}",
                        g.scope
                    )),
                };
                let opts = PauseOptions {
                    wait: args.pause_wait,
                    hold: args.pause_timeout,
                    terminate_after: args.terminate_after,
                    hold_reads: args.hold_reads,
                };
                let said = |s: &str| spinner.say(s);
                let got = match targets {
                    Ok((_, t)) if t.is_empty() => Ok(None),
                    Ok((cn_ep, t)) => GroupPause::acquire(&pg, &cn_ep, &g.scope, &t, &opts, &said)
                        .await
                        .map(|p| {
                            spinner.say(&format!(
                                "paused {} ({}; {} in {} ms){}",
                                g.scope,
                                p.method.describe(t[0].nodeid),
                                p.tries_text(),
                                p.acquired_after.as_millis(),
                                p.reads_text()
                            ));
                            for s in &p.terminated {
                                spinner.say(&format!("terminated by Citus to get the pause: {s}"));
                            }
                            Some(p)
                        })
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                match got {
                    Ok(p) => held = p,
                    Err(e) => {
                        report.refuse(
                            &g.scope,
                            &m.name,
                            format!("{e}; the leader was not restarted (--no-pause restarts it without the pause)"),
                        );
                        continue;
                    }
                }
            }
            // Patroni's restart, then the leader writable again: all within what the pause may hold.
            let limit = held
                .as_ref()
                .map(|p| p.remaining())
                .unwrap_or(Duration::from_secs(120));
            spinner.set_message(&format!(
                "restarting {} ({}): waiting for Patroni",
                m.name, g.scope
            ));
            let r = client
                .send(reqwest::Method::POST, &m.api, "restart", Some(&body), limit)
                .await
                .map_err(|e| e.to_string());
            if let Some(p) = held {
                let writable = tokio::time::timeout(
                    p.remaining(),
                    wait_writable(
                        &pg,
                        &ctx.topo.databases[0],
                        &m.pg,
                        g.vip.as_ref().map(|v| v.rw.clone()),
                    ),
                )
                .await;
                let mut pr = PauseReport::held(&p);
                pr.held_ms = Some(p.held_for().as_millis() as u64);
                spinner.say(&format!(
                    "resumed {} after {} ms{}",
                    g.scope,
                    p.held_for().as_millis(),
                    if writable.is_ok() {
                        ""
                    } else {
                        " (the pause timeout passed before the leader was writable)"
                    }
                ));
                // A restart changes nothing: ROLLBACK, whatever the method.
                p.release().await;
                report.push(&g.scope, &m.name, r);
                if let Some(last) = report.results.last_mut() {
                    last.pause = Some(pr);
                }
                continue;
            }
            report.push(&g.scope, &m.name, r);
        }
    }
    output::print(&output::render(&report, args.format))?;
    Ok(report.exit())
}
