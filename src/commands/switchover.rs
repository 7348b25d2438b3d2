//! `citusctl switchover SCOPE`: a Patroni switchover of one group in which writes through the
//! coordinator wait instead of failing. Reads of the group are not held (Citus takes no lock for
//! a SELECT): they fail while the old leader is down, as with any switchover.
//!
//! Worker group: on the coordinator leader, in one transaction per database, pause the group
//! (`citus_pause_node_within_txn`, or renaming its primary row to `host-demoted` on Citus
//! without it), ask Patroni for the switchover, wait until the new leader is writable (VIP mode:
//! until the RW VIP lands on a writable server), point the rows at it (direct mode), commit.
//! The pause is bounded by --pause-timeout: past it, everything rolls back and the group's state
//! is reported. Coordinator group: it cannot pause itself; switch it over, then fix its own row
//! and citus.use_secondary_nodes at once. Refuses (exit 4) when the group or the coordinator
//! has no single leader, no healthy candidate, or Patroni says no (its reason shown verbatim).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::json;

use super::resync::{observe_parts, plan_settings};
use crate::apply::{UpdateOptions, apply_database, apply_setting};
use crate::context::Context;
use crate::exit::Exit;
use crate::health::GroupView;
use crate::member_sql::landing;
use crate::output::{self, Format, Render};
use crate::patroni::{PatroniClient, Role};
use crate::pause::{self, GroupPause, PauseMethod, PauseOptions, PauseReport, PauseTarget};
use crate::pg::{self, PgParams};
use crate::plan::switchover::{candidates, choose, view_after};
use crate::plan::{MetadataPlan, plan_metadata};
use crate::topology::{Endpoint, Group, GroupKind, Topology};

/// Switch a group over to a replica; worker groups are paused in Citus meanwhile.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The group's Patroni scope.
    pub scope: String,

    /// The member to promote (default: pick on a terminal, or the best with --yes).
    #[arg(long)]
    pub candidate: Option<String>,

    /// Hand a scheduled switchover to Patroni (ISO 8601 with time zone). Patroni runs it by
    /// itself, without the Citus pause: `citusctl resync --watch` should be running then.
    #[arg(long, value_name = "TIME")]
    pub scheduled: Option<String>,

    /// Do not ask.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Same as --yes (patronictl's habit).
    #[arg(long)]
    pub force: bool,

    /// Show the plan and stop.
    #[arg(long)]
    pub dry_run: bool,

    /// Largest replication lag (bytes) a candidate may have.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_lag: u64,

    /// Longest the group may stay paused; past it the pause is rolled back.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub pause_timeout: Duration,

    /// How long to keep trying to get the pause: each try waits at most 200 ms (under the
    /// server's deadlock_timeout) for the transactions in the way, then lets go and tries again,
    /// so that clients never wait long behind it. Past this, nothing changed: exit 4, and the
    /// sessions in the way are named.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub pause_wait: Duration,

    /// Instead of giving up, let Citus terminate the sessions in the pause's way once they have
    /// had this long to finish (Citus `force => true, lock_cooldown`). They are named.
    #[arg(long, alias = "lock-cooldown", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub terminate_after: Option<Duration>,

    /// Switch over without pausing (the plain way: writes fail meanwhile), then fix pg_dist_node.
    #[arg(long)]
    pub no_pause: bool,

    /// Output format of the summary.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SwitchoverReport {
    pub format_version: u32,
    pub scope: String,
    pub old_leader: String,
    pub new_leader: Option<String>,
    /// `switched`, `scheduled`, `refused`, `rolled back`, `failed`.
    pub outcome: String,
    /// Patroni's own words (its reply is plain text).
    pub patroni: Option<String>,
    /// How long writes to the group were held (worker groups), from the moment the pause held.
    pub paused_ms: Option<u64>,
    /// The pause: its method, how it was had, whom it terminated, or who was in its way.
    pub pause: Option<PauseReport>,
    /// From the request to the new leader being writable.
    pub writable_after_ms: Option<u64>,
    pub total_ms: u64,
    pub rows_changed: Vec<String>,
    pub error: Option<String>,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    let group = ctx.group(&args.scope)?;
    let client = ctx.patroni_writer()?;
    let pg = ctx.pg_params()?;
    let started = Instant::now();
    let mut report = SwitchoverReport {
        format_version: crate::status::FORMAT_VERSION,
        scope: group.scope.clone(),
        ..Default::default()
    };
    let finish = |mut r: SwitchoverReport, exit: Exit, format: Format| -> anyhow::Result<Exit> {
        r.total_ms = started.elapsed().as_millis() as u64;
        output::print(&output::render(&r, format))?;
        Ok(exit)
    };

    let (views, tables, cn_ep) = match observe_parts(&ctx.topo, &client, &pg).await {
        Ok(o) => o,
        Err(why) => {
            report.outcome = "refused".into();
            report.error = Some(why);
            return finish(report, Exit::Refused, args.format);
        }
    };
    let gi = ctx
        .topo
        .groups
        .iter()
        .position(|g| g.scope == group.scope)
        .expect("exists");
    let view = &views[gi];
    let leader = match view.single_leader() {
        Ok(l) => l.clone(),
        Err(why) => {
            report.outcome = "refused".into();
            report.error = Some(format!(
                "{why}: use `citusctl failover {} --candidate M`",
                group.scope
            ));
            return finish(report, Exit::Refused, args.format);
        }
    };
    report.old_leader = leader.name.clone();
    let candidate = match pick_candidate(view, &args).await {
        Ok(c) => c,
        Err(e) => {
            if e.downcast_ref::<crate::UsageError>().is_some() {
                return Err(e);
            }
            report.outcome = "refused".into();
            report.error = Some(e.to_string());
            return finish(report, Exit::Refused, args.format);
        }
    };
    let cand_ep = view
        .members
        .iter()
        .find(|m| m.name == candidate)
        .map(|m| m.endpoint.clone())
        .expect("candidate is a member");

    // What pg_dist_node must look like once the candidate leads (direct mode: rows move).
    let mut after = views.clone();
    after[gi] = view_after(view, &candidate);
    let meta = plan_metadata(
        &ctx.topo,
        &after,
        &tables,
        std::slice::from_ref(&group.scope),
        &[],
    );
    let targets = PauseTarget::of_group(&tables, group.group_id);
    let pausing = group.kind == GroupKind::Worker
        && !args.no_pause
        && !targets.is_empty()
        && args.scheduled.is_none();
    // The method is the coordinator's to decide (Citus 12.1+ has the function): say it first.
    let method = if pausing {
        match pause::method_on(&pg, &cn_ep, &targets[0].database).await {
            Ok(m) => Some(m),
            Err(e) => {
                report.outcome = "refused".into();
                report.error = Some(format!("cannot reach the coordinator leader: {e}"));
                return finish(report, Exit::Refused, args.format);
            }
        }
    } else {
        None
    };

    say_plan(
        group,
        &leader.name,
        &candidate,
        &meta,
        method.zip(targets.first()),
        &args,
    );
    if args.dry_run {
        report.outcome = "planned".into();
        report.new_leader = Some(candidate);
        return finish(report, Exit::Ok, args.format);
    }
    if !(args.yes || args.force) {
        if !crate::ui::can_prompt() {
            bail!(crate::UsageError(
                "a switchover needs confirmation and stdin is not a terminal: pass --yes".into()
            ));
        }
        let q = format!(
            "Switch {} over from {} to {}?",
            group.scope, leader.name, candidate
        );
        let ok = tokio::task::spawn_blocking(move || {
            dialoguer::Confirm::new()
                .with_prompt(q)
                .default(false)
                .interact_opt()
        })
        .await??;
        if ok != Some(true) {
            crate::ui::say("Nothing changed.");
            return Ok(Exit::No);
        }
    }

    let leader_api = ctx.topo.groups[gi]
        .member(&leader.name)
        .map(|m| m.api.clone())
        .context("leader not in inventory")?;
    if let Some(at) = &args.scheduled {
        let body = json!({"leader": leader.name, "candidate": candidate, "scheduled_at": at});
        let (status, text) = client
            .send(
                reqwest::Method::POST,
                &leader_api,
                "switchover",
                Some(&body),
                Duration::from_secs(30),
            )
            .await?;
        report.patroni = Some(text);
        report.new_leader = Some(candidate);
        report.outcome = if status == 202 {
            "scheduled".into()
        } else {
            "refused".into()
        };
        if status == 202 {
            crate::ui::say(
                "warning: Patroni performs scheduled switchovers itself, without the Citus pause: writes to the group fail until pg_dist_node is repaired; keep `citusctl resync --watch` running.",
            );
        }
        return finish(
            report,
            if status == 202 {
                Exit::Ok
            } else {
                Exit::Refused
            },
            args.format,
        );
    }

    let progress = Progress::new();
    let mut paused: Option<GroupPause> = None;
    if pausing {
        let opts = PauseOptions {
            wait: args.pause_wait,
            hold: args.pause_timeout,
            terminate_after: args.terminate_after,
        };
        let said = |m: &str| progress.say(m);
        match GroupPause::acquire(&pg, &cn_ep, &group.scope, &targets, &opts, &said).await {
            Ok(p) => {
                progress.say(&format!(
                    "paused {} in {} ({}; {} tr{} in {} ms)",
                    group.scope,
                    p.databases().collect::<Vec<_>>().join(", "),
                    p.method.describe(targets[0].nodeid),
                    p.tries,
                    if p.tries == 1 { "y" } else { "ies" },
                    p.acquired_after.as_millis()
                ));
                for s in &p.terminated {
                    progress.say(&format!("terminated by Citus to get the pause: {s}"));
                }
                report.pause = Some(PauseReport::held(&p));
                paused = Some(p);
            }
            Err(e) => {
                report.outcome = "refused".into();
                report.pause = Some(PauseReport {
                    method: method.unwrap_or(PauseMethod::Function),
                    blockers: e.blockers().to_vec(),
                    ..Default::default()
                });
                report.error = Some(e.to_string());
                return finish(report, Exit::Refused, args.format);
            }
        }
    }
    let pause_started = paused
        .as_ref()
        .map(|p| p.held_since)
        .unwrap_or_else(Instant::now);

    // Ask Patroni, and wait for the candidate to become writable, whichever ends first.
    let body = json!({"leader": leader.name, "candidate": candidate});
    let post_timeout = args.pause_timeout + Duration::from_secs(5);
    let post = client.send(
        reqwest::Method::POST,
        &leader_api,
        "switchover",
        Some(&body),
        post_timeout,
    );
    tokio::pin!(post);
    let wait = wait_writable(
        &pg,
        &ctx.topo.databases[0],
        &cand_ep,
        group.vip.as_ref().map(|v| v.rw.clone()),
    );
    tokio::pin!(wait);
    let deadline = tokio::time::sleep(args.pause_timeout);
    tokio::pin!(deadline);
    progress.say(&format!(
        "asked Patroni to switch {} over from {} to {}",
        group.scope, leader.name, candidate
    ));
    let mut post_result: Option<(u16, String)> = None;
    let writable_at = loop {
        tokio::select! {
            r = &mut post, if post_result.is_none() => {
                match r {
                    Ok((200, text)) => { progress.say(&format!("Patroni: {text}")); post_result = Some((200, text)); }
                    // "Switchover status unknown": decide from what is true. Anything else with
                    // 503 ("Switchover failed", "failed to write failover key") is a no.
                    Ok((503, text)) if text.contains("unknown") => { progress.say(&format!("Patroni: {text} (503): watching the cluster to decide")); post_result = Some((503, text)); }
                    Ok((status, text)) => {
                        if let Some(p) = paused { p.release().await; }
                        report.outcome = "refused".into();
                        report.patroni = Some(text.clone());
                        report.error = Some(format!("Patroni refused the switchover (HTTP {status}): {text}; the pause was rolled back, nothing changed"));
                        return finish(report, Exit::Refused, args.format);
                    }
                    Err(e) => { progress.say(&format!("Patroni's reply: {e}: watching the cluster to decide")); post_result = Some((0, e.to_string())); }
                }
            }
            _ = &mut wait => break Instant::now(),
            _ = &mut deadline => {
                if let Some(p) = paused { p.release().await; }
                let state = group_state(&client, &ctx.topo.groups[gi]).await;
                report.outcome = "rolled back".into();
                report.patroni = post_result.map(|p| p.1);
                report.error = Some(format!(
                    "{} did not become writable within {}: the pause was rolled back (pg_dist_node unchanged). {} now: {state}. Patroni may still complete the switchover: `citusctl resync` then repairs pg_dist_node",
                    candidate, humantime::format_duration(args.pause_timeout), group.scope
                ));
                return finish(report, Exit::No, args.format);
            }
        }
    };
    report.writable_after_ms = Some(writable_at.duration_since(pause_started).as_millis() as u64);
    progress.say(&format!("{candidate} is writable"));

    // Point the rows at the new leader inside the paused transactions, then commit.
    let opts = UpdateOptions {
        force: false,
        lock_cooldown_ms: 0,
        statement_timeout_ms: 30_000,
    };
    // (The coordinator's own rows are written on its new leader, by settle_coordinator below.)
    let worker_dbs: &[crate::plan::DatabasePlan] = if group.kind == GroupKind::Coordinator {
        &[]
    } else {
        &meta.databases
    };
    for dbp in worker_dbs {
        for c in &dbp.changes {
            report.rows_changed.push(c.describe(&dbp.database));
        }
        if paused
            .as_ref()
            .is_some_and(|p| p.client(&dbp.database).is_some())
        {
            continue;
        }
        // A database without a primary row to pause: its plan runs on its own.
        if let Err(e) = apply_database(&pg, &cn_ep, dbp, opts).await {
            report.error = Some(format!("{}: {e}: run `citusctl resync`", dbp.database));
        }
    }
    if let Some(p) = paused {
        let held_since = p.held_since;
        let steps = |db: &str| {
            worker_dbs
                .iter()
                .find(|d| d.database == db)
                .map(|d| d.steps.clone())
                .unwrap_or_default()
        };
        if let Err((db, e)) = p.commit(&steps, &opts).await {
            report.outcome = "failed".into();
            // `e` names the Citus call already.
            report.error = Some(format!(
                "{db}: {e}; the pause was rolled back: run `citusctl resync`"
            ));
            report.rows_changed.clear();
            return finish(report, Exit::No, args.format);
        }
        report.paused_ms = Some(held_since.elapsed().as_millis() as u64);
        if let Some(r) = report.pause.as_mut() {
            r.held_ms = report.paused_ms;
        }
        progress.say(&format!(
            "resumed {} after {} ms",
            group.scope,
            report.paused_ms.unwrap_or(0)
        ));
    }

    // The coordinator: its own row and citus.use_secondary_nodes follow at once.
    if group.kind == GroupKind::Coordinator
        && let Err(e) = settle_coordinator(&ctx.topo, &client, &pg, &mut report).await
    {
        report.error = Some(e);
    }
    if post_result.is_none() {
        // Patroni answers once its own poll sees the new leader: do not hold the exit for its words.
        if let Ok((_, text)) = tokio::time::timeout(Duration::from_secs(2), &mut post)
            .await
            .unwrap_or(Ok((0, String::new())))
            && !text.is_empty()
        {
            report.patroni = Some(text);
        }
    } else {
        report.patroni = post_result.map(|p| p.1);
    }
    report.new_leader = Some(candidate);
    report.outcome = "switched".into();
    let exit = if report.error.is_some() {
        Exit::No
    } else {
        Exit::Ok
    };
    finish(report, exit, args.format)
}

async fn pick_candidate(view: &GroupView, args: &Args) -> anyhow::Result<String> {
    if let Some(c) = &args.candidate {
        return choose(view, Some(c), args.max_lag).map_err(anyhow::Error::msg);
    }
    if args.yes || args.force || args.dry_run {
        return choose(view, None, args.max_lag).map_err(anyhow::Error::msg);
    }
    if !crate::ui::can_prompt() {
        bail!(crate::UsageError("no --candidate and stdin is not a terminal: pass --candidate MEMBER, or --yes to take the best one".into()));
    }
    let eligible: Vec<String> = candidates(view, args.max_lag)
        .into_iter()
        .filter(|c| c.refused.is_none())
        .map(|c| c.name)
        .collect();
    if eligible.is_empty() {
        return choose(view, None, args.max_lag).map_err(anyhow::Error::msg);
    }
    let items = eligible.clone();
    let i = tokio::task::spawn_blocking(move || {
        dialoguer::Select::new()
            .with_prompt("Candidate")
            .items(&items)
            .default(0)
            .interact_opt()
    })
    .await??;
    match i {
        Some(i) => Ok(eligible[i].clone()),
        None => bail!(crate::UsageError("no candidate chosen".into())),
    }
}

/// Poll until the candidate answers `pg_is_in_recovery() = false` (and, in VIP mode, the RW VIP
/// lands on a writable server). Every 10 ms on a kept connection (a promotion keeps sessions),
/// so the pause ends as soon as it can.
pub(super) async fn wait_writable(
    pg: &PgParams,
    db: &str,
    candidate: &Endpoint,
    rw_vip: Option<Endpoint>,
) {
    let mut quick = pg.clone();
    quick.connect_timeout = Duration::from_millis(500);
    let mut conn: Option<tokio_postgres::Client> = None;
    loop {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            conn = pg::connect(&quick, candidate, db).await.ok();
        }
        let writable = match &conn {
            Some(c) => match c
                .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])
                .await
            {
                Ok(row) => !row.get::<_, bool>(0),
                Err(_) => {
                    conn = None;
                    false
                }
            },
            None => false,
        };
        let ok = writable
            && match &rw_vip {
                None => true,
                Some(v) => matches!(landing(&quick, v, db).await, Ok(l) if !l.in_recovery),
            };
        if ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(if conn.is_some() { 10 } else { 50 })).await;
    }
}

async fn group_state(client: &PatroniClient, g: &Group) -> String {
    for m in &g.members {
        if let Ok(doc) = client.cluster(&m.api).await {
            return doc
                .members
                .iter()
                .map(|x| {
                    format!(
                        "{} {} {}",
                        x.name,
                        Role::parse(&x.role).title().to_lowercase(),
                        x.state
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
    "no member answers".into()
}

async fn settle_coordinator(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
    report: &mut SwitchoverReport,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((views, tables, cn_ep)) = observe_parts(topo, client, pg).await {
            let scope = topo.coordinator().scope.clone();
            let mut plan: MetadataPlan =
                plan_metadata(topo, &views, &tables, std::slice::from_ref(&scope), &[]);
            plan_settings(topo, &views, &tables, pg, &[], &mut plan).await;
            let opts = UpdateOptions {
                force: true,
                lock_cooldown_ms: 2000,
                statement_timeout_ms: 30_000,
            };
            for db in &plan.databases {
                apply_database(pg, &cn_ep, db, opts)
                    .await
                    .map_err(|e| format!("{}: {e}", db.database))?;
                for c in &db.changes {
                    report.rows_changed.push(c.describe(&db.database));
                }
            }
            for s in &plan.settings {
                apply_setting(pg, s, &topo.databases[0], false)
                    .await
                    .map_err(|e| format!("{}: {e}", s.member))?;
                report.rows_changed.push(format!(
                    "{}: citus.use_secondary_nodes {} -> {} (new sessions)",
                    s.member, s.now, s.wanted
                ));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the new coordinator leader's metadata could not be read within 30 s: run `citusctl resync`".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn say_plan(
    group: &Group,
    leader: &str,
    candidate: &str,
    meta: &MetadataPlan,
    pause: Option<(PauseMethod, &PauseTarget)>,
    args: &Args,
) {
    let mut lines = vec![format!(
        "Switchover of {} (group {}): {} -> {}",
        group.scope, group.group_id, leader, candidate
    )];
    if args.scheduled.is_some() {
        lines.push("  scheduled: Patroni runs it by itself, without the Citus pause".into());
    } else if let Some((method, target)) = pause {
        lines.push(format!(
            "  pause: {}; writes to group {} wait on the coordinator for at most {}",
            method.describe(target.nodeid),
            group.group_id,
            humantime::format_duration(args.pause_timeout),
        ));
        lines.push(match args.terminate_after {
            None => format!(
                "  getting it: short tries for up to {}, never terminating a client; then nothing changes",
                humantime::format_duration(args.pause_wait)
            ),
            Some(t) => format!(
                "  getting it: sessions in the way get {} to finish, then Citus TERMINATES them (--terminate-after)",
                humantime::format_duration(t)
            ),
        });
    } else if group.kind == GroupKind::Coordinator {
        lines.push("  the coordinator cannot pause itself: clients see errors until the new leader is writable".into());
    } else {
        lines.push("  no pause: writes to the group fail until pg_dist_node is fixed".into());
    }
    for db in &meta.databases {
        for c in &db.changes {
            lines.push(format!("  {}", c.describe(&db.database)));
        }
    }
    if meta.is_empty() && group.vip.is_some() {
        lines.push(
            "  VIP mode: pg_dist_node does not change; the RW VIP must follow the new leader"
                .into(),
        );
    }
    crate::ui::say(&lines.join("\n"));
}

/// Progress lines on stderr with the time since the start.
struct Progress(Instant);

impl Progress {
    fn new() -> Self {
        Progress(Instant::now())
    }
    fn say(&self, msg: &str) {
        crate::ui::say(&format!("[{:>6.2}s] {msg}", self.0.elapsed().as_secs_f64()));
    }
}

impl Render for SwitchoverReport {
    fn pretty(&self) -> String {
        let mut out = String::new();
        match self.outcome.as_str() {
            "switched" => {
                out.push_str(&format!(
                    "Switched {} over: {} -> {}\n",
                    self.scope,
                    self.old_leader,
                    self.new_leader.as_deref().unwrap_or("?")
                ));
                if let Some(p) = self.paused_ms {
                    out.push_str(&format!("  writes held: {p} ms\n"));
                }
                if let Some(w) = self.writable_after_ms {
                    out.push_str(&format!("  new leader writable after: {w} ms\n"));
                }
                for r in &self.rows_changed {
                    out.push_str(&format!("  {r}\n"));
                }
            }
            "planned" => out.push_str(&format!(
                "planned: {} -> {}; nothing done\n",
                self.old_leader,
                self.new_leader.as_deref().unwrap_or("?")
            )),
            other => out.push_str(&format!("{other}\n")),
        }
        if let Some(p) = &self.patroni {
            out.push_str(&format!("  Patroni: {p}\n"));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("  {e}\n"));
        }
        out.push_str(&format!("  total: {} ms\n", self.total_ms));
        out
    }
    fn tsv(&self) -> String {
        format!(
            "scope\told_leader\tnew_leader\toutcome\tpaused_ms\n{}\t{}\t{}\t{}\t{}\n",
            self.scope,
            self.old_leader,
            self.new_leader.as_deref().unwrap_or(""),
            self.outcome,
            self.paused_ms.map(|p| p.to_string()).unwrap_or_default()
        )
    }
}
