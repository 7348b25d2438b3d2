//! `citusctl resync --watch`: the controller. Looks every --interval, at a fixed rate (every
//! 200 ms while a group has no writable leader, or its leader is stopping or not answering),
//! repairs pg_dist_node when it drifts, logs every change on stderr, never exits on a transient
//! error (backs off up to 10 s), and stops cleanly on SIGTERM/Ctrl-C. With --metrics it serves
//! what it counts to Prometheus (`crate::metrics`).

use std::time::Duration;

use anyhow::Context as _;

use crate::apply::{UpdateOptions, apply_database, apply_setting};
use crate::exit::Exit;
use crate::metrics::{Counters, GroupDrift, Shared};
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
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<Exit> {
    let counters: Shared = std::sync::Arc::new(std::sync::Mutex::new(Counters::new(
        topo.groups
            .iter()
            .filter(|g| scopes.is_empty() || scopes.contains(&g.scope))
            .map(|g| GroupDrift {
                scope: g.scope.clone(),
                group: g.group_id,
                drift: 0,
                refused: false,
            })
            .collect(),
    )));
    // Bound before the controller starts: a taken port is an error now, not a silent gap.
    let listener = match metrics {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?,
        ),
        None => None,
    };
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
    let _server = listener.map(|l| {
        if let Ok(a) = l.local_addr() {
            log(&format!("metrics on http://{a}/metrics"));
        }
        AbortOnDrop(tokio::spawn(crate::metrics::serve(l, counters.clone())))
    });
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
            r = tokio::time::timeout(PASS_LIMIT, tick(topo, client, pg, scopes, opts, &counters)) => match r {
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
        {
            let mut c = counters.lock().unwrap_or_else(|e| e.into_inner());
            c.passes += 1;
            match &pass {
                Ok(_) => c.last_good = Some(std::time::Instant::now()),
                Err(_) => c.errors += 1,
            }
        }
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
    counters: &Shared,
) -> Result<Tick, String> {
    let count =
        |f: &dyn Fn(&mut Counters)| f(&mut counters.lock().unwrap_or_else(|e| e.into_inner()));
    let (views, tables, coordinator) = crate::ops::observe::observe_parts(topo, client, pg).await?;
    let mut plan = crate::ops::plan::plan_checked(topo, &views, &tables, pg, scopes).await;
    crate::ops::plan::plan_settings(topo, &views, &tables, pg, scopes, &mut plan).await;
    count(&|c| {
        for g in &mut c.groups {
            g.drift = plan
                .databases
                .iter()
                .flat_map(|db| &db.changes)
                .filter(|ch| ch.scope == g.scope)
                .count() as u64;
            g.refused = plan.refused.iter().any(|r| r.scope == g.scope);
        }
    });
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
        count(&|c| c.rows_repaired += db.changes.len() as u64);
        // Logged as soon as committed: a stop during the recovery below must not lose it.
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
    }
    for s in &plan.settings {
        apply_setting(pg, s, &topo.databases[0], false)
            .await
            .map_err(|e| format!("{}: citus.use_secondary_nodes not set: {e}", s.member))?;
        count(&|c| c.settings_repaired += 1);
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

/// The metrics responder ends with the controller, whichever way it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
