//! `citusctl resync --watch`: the controller. Looks every --interval, at a fixed rate (every
//! 200 ms while a group has no writable leader, or its leader is stopping or not answering),
//! repairs pg_dist_node when it drifts, logs every change on stderr, never exits on a transient
//! error (backs off up to 10 s), and stops cleanly on SIGTERM/Ctrl-C.

use std::time::Duration;

use crate::apply::{UpdateOptions, apply_database, apply_setting};
use crate::exit::Exit;
use crate::patroni::PatroniClient;
use crate::pg::PgParams;
use crate::topology::Topology;

const FAST: Duration = Duration::from_millis(200);
/// How long the same refusal is looked at every FAST: a switchover clears within seconds; one
/// that lasts longer (a group down, a leader outside the inventory) will not clear by itself
/// soon, and is looked at every --interval from then on.
const FAST_FOR: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest one pass may take: observe, plan, and apply (whose waits are bounded by the
/// statement timeout and the metadata-sync wait, 30 s each). The unit's WatchdogSec is above it.
const PASS_LIMIT: Duration = Duration::from_secs(75);

enum Tick {
    Settled,
    /// Something is in flux (a group without a writable leader): look again soon.
    Unsettled(String),
}

pub async fn run(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
    scopes: &[String],
    interval: Duration,
    opts: UpdateOptions,
) -> anyhow::Result<Exit> {
    log(&format!(
        "resync controller for {} started (interval {}, groups: {})",
        topo.name,
        humantime::format_duration(interval),
        if scopes.is_empty() {
            "all".to_owned()
        } else {
            scopes.join(", ")
        }
    ));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let systemd = crate::systemd::Notifier::from_env();
    let notify = |msg: &str| {
        if let Some(n) = &systemd {
            n.notify(msg);
        }
    };
    notify("READY=1\nSTATUS=watching pg_dist_node");
    let mut backoff = interval;
    let mut last_message = String::new();
    let mut unsettled_since: Option<tokio::time::Instant> = None;
    let mut slowed = false;
    loop {
        let started = tokio::time::Instant::now();
        // A pass never hangs the controller: past PASS_LIMIT it is dropped (its transaction,
        // if any, rolls back on the server) and the next one starts after a backoff.
        // A signal during a pass stops at once too (a dropped pass's transaction rolls back).
        let pass = tokio::select! {
            r = tokio::time::timeout(PASS_LIMIT, tick(topo, client, pg, scopes, opts)) => match r {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "a pass took longer than {}: abandoned",
                    humantime::format_duration(PASS_LIMIT)
                )),
            },
            _ = term.recv() => { notify("STOPPING=1"); log("SIGTERM: stopping (during a pass: its transaction, if any, rolls back)"); return Ok(Exit::Ok); }
            _ = tokio::signal::ctrl_c() => { notify("STOPPING=1"); log("interrupted: stopping (during a pass: its transaction, if any, rolls back)"); return Ok(Exit::Interrupted); }
        };
        notify("WATCHDOG=1");
        let wait = match pass {
            Ok(Tick::Settled) => {
                if !last_message.is_empty() {
                    log("all groups settled");
                    last_message.clear();
                }
                unsettled_since = None;
                slowed = false;
                backoff = interval;
                interval
            }
            Ok(Tick::Unsettled(msg)) => {
                if msg != last_message {
                    log(&format!("waiting: {msg}"));
                    last_message = msg;
                    unsettled_since = Some(started);
                    slowed = false;
                }
                backoff = interval;
                let since = *unsettled_since.get_or_insert(started);
                if started.duration_since(since) < FAST_FOR {
                    FAST.min(interval)
                } else {
                    if !slowed {
                        log(&format!(
                            "still waiting after {}: looking every {} from now on",
                            humantime::format_duration(FAST_FOR),
                            humantime::format_duration(interval)
                        ));
                        slowed = true;
                    }
                    interval
                }
            }
            Err(msg) => {
                unsettled_since = None;
                slowed = false;
                if msg != last_message {
                    log(&format!("cannot act: {msg}; retrying with backoff"));
                    last_message = msg;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF).max(interval);
                backoff
            }
        };
        // Fixed rate: the time a pass took counts against the wait.
        tokio::select! {
            _ = tokio::time::sleep_until(started + wait) => {}
            _ = term.recv() => { notify("STOPPING=1"); log("SIGTERM: stopping"); return Ok(Exit::Ok); }
            _ = tokio::signal::ctrl_c() => { notify("STOPPING=1"); log("interrupted: stopping"); return Ok(Exit::Interrupted); }
        }
    }
}

async fn tick(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
    scopes: &[String],
    opts: UpdateOptions,
) -> Result<Tick, String> {
    let (views, tables, coordinator) = crate::ops::observe::observe_parts(topo, client, pg).await?;
    let mut plan = crate::ops::plan::plan_checked(topo, &views, &tables, pg, scopes).await;
    crate::ops::plan::plan_settings(topo, &views, &tables, pg, scopes, &mut plan).await;
    for db in &plan.databases {
        if db.steps.is_empty() {
            continue;
        }
        match apply_database(pg, &coordinator, db, opts).await {
            Ok(()) => {}
            // Another controller, a switchover or a resync is at work: look again soon.
            Err(e)
                if matches!(
                    e.sqlstate(),
                    Some(crate::apply::BUSY | crate::apply::FENCED)
                ) =>
            {
                return Ok(Tick::Unsettled(format!("{}: {e}; skipped", db.database)));
            }
            Err(e) => return Err(format!("{}: {e} (rolled back)", db.database)),
        }
        // A repaired row follows a leader change that had no pause: recover the 2PC
        // transactions it may have left prepared, instead of waiting for Citus's daemon.
        if !db.changes.is_empty() {
            let rec = crate::ops::recover::prepared_transactions(
                pg,
                &coordinator,
                std::slice::from_ref(&db.database),
            )
            .await;
            if let Some(msg) = crate::ops::recover::describe(&rec) {
                log(&msg);
            }
        }
        for c in &db.changes {
            log(&format!(
                "{}: {} {} row {} {} -> {} ({}: {})",
                db.database,
                c.scope,
                c.noderole,
                c.nodeid
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "(new)".into()),
                c.now.as_deref().unwrap_or("-"),
                c.wanted,
                c.action,
                c.reason
            ));
        }
    }
    for s in &plan.settings {
        apply_setting(pg, s, &topo.databases[0], false)
            .await
            .map_err(|e| format!("{}: citus.use_secondary_nodes not set: {e}", s.member))?;
        log(&format!(
            "{}: citus.use_secondary_nodes {} -> {} ({}; new sessions only)",
            s.member, s.now, s.wanted, s.reason
        ));
    }
    if plan.refused.is_empty() {
        Ok(Tick::Settled)
    } else {
        Ok(Tick::Unsettled(
            plan.refused
                .iter()
                .map(|r| r.reason.clone())
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

#[allow(clippy::print_stderr)]
fn log(msg: &str) {
    eprintln!(
        "{} {msg}",
        humantime::format_rfc3339_millis(std::time::SystemTime::now())
    );
}
