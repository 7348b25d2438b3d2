//! A Patroni switchover of one group, with the Citus pause around it (worker groups).
//!
//! Three steps, so that the command can show the plan and ask in between: [`observe`] (the live
//! state, the group's single leader), [`plan`] (the rows once the candidate leads, the pause's
//! targets and method), [`execute`] (pause, ask Patroni, wait for a writable leader, point the
//! rows at it inside the pause, commit; or give up and roll back). Worker group: writes through
//! the coordinator wait instead of failing. Coordinator group: it cannot pause itself; its own
//! row and `citus.use_secondary_nodes` follow at once.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::apply::{UpdateOptions, WhenBusy, apply_database, apply_setting};
use crate::citus::DistNode;
use crate::exit::Exit;
use crate::health::{GroupView, MemberView};
use crate::ops::observe::{Blocked, observe_for_write, observe_parts};
use crate::ops::plan::{plan_checked, plan_settings};
use crate::ops::wait::{group_state, wait_writable};
use crate::patroni::PatroniClient;
use crate::pause::{self, GroupPause, PauseMethod, PauseOptions, PauseReport, PauseTarget};
use crate::pg::PgParams;
use crate::plan::switchover::view_after;
use crate::plan::{DatabasePlan, MetadataPlan, plan_metadata};
use crate::topology::{Endpoint, GroupKind, Topology};

#[derive(Debug, Clone)]
pub struct SwitchoverOptions {
    /// Pause a worker group around the switchover (`--no-pause` turns it off).
    pub pause: bool,
    /// Longest the pause may hold.
    pub pause_timeout: Duration,
    /// Budget for getting the pause.
    pub pause_wait: Duration,
    /// Let Citus terminate the sessions in the pause's way after this long.
    pub terminate_after: Option<Duration>,
    /// Hold reads through the coordinator too (see crate::pause): worker groups only.
    pub hold_reads: bool,
    /// Hand a scheduled switchover to Patroni (no pause).
    pub scheduled: Option<String>,
    /// Notified when the operator interrupts (the first Ctrl-C). Before Patroni is asked, the
    /// switchover stops there (nothing changed); once asked, Patroni cannot be un-asked: the
    /// pause is let go at once and the switchover finishes without it (rows repaired).
    pub interrupt: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl SwitchoverOptions {
    async fn interrupted(&self) {
        match &self.interrupt {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    }
}

/// How a switchover ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum Outcome {
    #[default]
    #[serde(rename = "planned")]
    Planned,
    #[serde(rename = "switched")]
    Switched,
    #[serde(rename = "scheduled")]
    Scheduled,
    /// Nothing changed: citusctl or Patroni said no.
    #[serde(rename = "refused")]
    Refused,
    /// The new leader was not writable in time: the pause was rolled back, and Patroni did not
    /// switch over either.
    #[serde(rename = "rolled back")]
    RolledBack,
    /// Patroni switched over but the pause was lost first (its deadline, or the server ended
    /// it): writes failed for a while; the rows were repaired at once.
    #[serde(rename = "switched without the pause")]
    SwitchedWithoutPause,
    #[serde(rename = "failed")]
    Failed,
    /// Ctrl-C (SIGINT): the pause was let go; Patroni may have been asked already.
    #[serde(rename = "interrupted")]
    Interrupted,
    /// The cluster moved while the operator was deciding: nothing done.
    #[serde(rename = "changed")]
    Changed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::Switched => "switched",
            Outcome::Scheduled => "scheduled",
            Outcome::Refused => "refused",
            Outcome::RolledBack => "rolled back",
            Outcome::SwitchedWithoutPause => "switched without the pause",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Changed => "changed",
        }
    }
}

/// What happened, for the command's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Switchover {
    pub old_leader: String,
    pub new_leader: Option<String>,
    pub outcome: Outcome,
    /// Patroni's own words (its reply is plain text).
    pub patroni: Option<String>,
    /// How long writes to the group were held (worker groups), from the moment the pause held.
    pub paused_ms: Option<u64>,
    /// The pause: its method, how it was had, whom it terminated, or who was in its way.
    pub pause: Option<PauseReport>,
    /// From the pause holding (or the request) to the new leader being writable.
    pub writable_after_ms: Option<u64>,
    pub rows_changed: Vec<String>,
    pub error: Option<String>,
}

impl Switchover {
    fn refused(old_leader: &str, why: String) -> Switchover {
        Switchover {
            old_leader: old_leader.to_owned(),
            outcome: Outcome::Refused,
            error: Some(why),
            ..Default::default()
        }
    }
}

/// The live state of the cluster, with the group's single leader.
pub struct Observed {
    pub views: Vec<GroupView>,
    pub tables: Vec<(String, Vec<DistNode>)>,
    pub coordinator: Endpoint,
    /// The group's index in the topology (and in `views`).
    pub index: usize,
    pub leader: MemberView,
}

impl Observed {
    pub fn view(&self) -> &GroupView {
        &self.views[self.index]
    }
}

/// Observe for a switchover of `scope`: blocked (with the exit status it calls for) without one
/// writable coordinator leader (3 when it cannot be reached) or a single leader in the group.
pub async fn observe(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
    scope: &str,
) -> Result<Observed, Blocked> {
    let o = observe_for_write(topo, client, pg).await?;
    let (views, tables, coordinator) = (o.views, o.tables, o.coordinator.1);
    let index = topo
        .index_of(scope)
        .expect("the command resolved the scope");
    let leader = match views[index].single_leader() {
        Ok(l) => l.clone(),
        Err(why) => {
            return Err(Blocked {
                exit: Exit::Refused,
                reason: format!("{why}: use `citusctl failover {scope} --candidate M`"),
            });
        }
    };
    Ok(Observed {
        views,
        tables,
        coordinator,
        index,
        leader,
    })
}

/// What a switchover to `candidate` will do.
pub struct Plan {
    pub observed: Observed,
    pub candidate: String,
    candidate_pg: Endpoint,
    /// `pg_dist_node` once the candidate leads (direct mode: rows move).
    pub meta: MetadataPlan,
    /// The rows the pause holds, one per database (none when not pausing).
    pub targets: Vec<PauseTarget>,
    /// How the coordinator pauses (None when not pausing).
    pub method: Option<PauseMethod>,
}

pub async fn plan(
    topo: &Topology,
    pg: &PgParams,
    observed: Observed,
    candidate: String,
    opts: &SwitchoverOptions,
) -> Result<Plan, String> {
    let group = &topo.groups[observed.index];
    let view = observed.view();
    let candidate_pg = view
        .members
        .iter()
        .find(|m| m.name == candidate)
        .map(|m| m.endpoint.clone())
        .expect("the candidate is a member");
    let mut after = observed.views.clone();
    after[observed.index] = view_after(view, &candidate);
    let meta = plan_metadata(
        topo,
        &after,
        &observed.tables,
        std::slice::from_ref(&group.scope),
        &[],
    );
    let mut targets = PauseTarget::of_group(&observed.tables, group.group_id);
    let pausing = group.kind == GroupKind::Worker
        && opts.pause
        && !targets.is_empty()
        && opts.scheduled.is_none();
    if !pausing {
        targets.clear();
    }
    // The method is the coordinator's to decide (Citus 12.1+ has the function): say it first.
    let method = match targets.first() {
        Some(t) => Some(
            pause::method_on(pg, &observed.coordinator, &t.database)
                .await
                .map_err(|e| format!("cannot reach the coordinator leader: {e}"))?,
        ),
        None => None,
    };
    Ok(Plan {
        observed,
        candidate,
        candidate_pg,
        meta,
        targets,
        method,
    })
}

/// Look again just before acting (a prompt may have lasted as long as the operator liked): the
/// same leader, the candidate still eligible, the same rows to change. The fresh plan when
/// nothing moved, else what did (nothing is done then).
pub async fn look_again(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
    planned: &Plan,
    max_lag: u64,
    opts: &SwitchoverOptions,
) -> Result<Plan, String> {
    let group = &topo.groups[planned.observed.index];
    let o = observe(topo, client, pg, &group.scope)
        .await
        .map_err(|b| b.reason)?;
    if o.leader.name != planned.observed.leader.name {
        return Err(format!(
            "{} leads {} now, not {}",
            o.leader.name, group.scope, planned.observed.leader.name
        ));
    }
    crate::plan::switchover::choose(o.view(), Some(&planned.candidate), max_lag)?;
    let fresh = plan(topo, pg, o, planned.candidate.clone(), opts).await?;
    if fresh.meta.summary() != planned.meta.summary() || fresh.method != planned.method {
        return Err(format!(
            "pg_dist_node changed: the plan is now [{}]",
            fresh.meta.summary().join("; ")
        ));
    }
    Ok(fresh)
}

/// Run the planned switchover. `progress` hears one line per step.
pub async fn execute(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
    plan: Plan,
    opts: &SwitchoverOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Switchover {
    let group = &topo.groups[plan.observed.index];
    let leader = &plan.observed.leader;
    let candidate = plan.candidate.clone();
    let cn_ep = plan.observed.coordinator.clone();
    let Some(leader_api) = group.member(&leader.name).map(|m| m.api.clone()) else {
        return Switchover::refused(
            &leader.name,
            format!(
                "{} leads {} but is not in the inventory: nothing changed",
                leader.name, group.scope
            ),
        );
    };
    let mut out = Switchover {
        old_leader: leader.name.clone(),
        new_leader: Some(candidate.clone()),
        ..Default::default()
    };

    if let Some(at) = &opts.scheduled {
        let body = json!({"leader": leader.name, "candidate": candidate, "scheduled_at": at});
        match client
            .send(
                reqwest::Method::POST,
                &leader_api,
                "switchover",
                Some(&body),
                Duration::from_secs(30),
            )
            .await
        {
            Ok((status, text)) => {
                out.patroni = Some(text);
                out.outcome = if status == 202 {
                    crate::ui::say(
                        "warning: Patroni performs scheduled switchovers itself, without the Citus pause: writes to the group fail until pg_dist_node is repaired; keep `citusctl resync --watch` running.",
                    );
                    Outcome::Scheduled
                } else {
                    Outcome::Refused
                };
            }
            Err(e) => {
                out.outcome = Outcome::Failed;
                out.error = Some(e.to_string());
            }
        }
        return out;
    }

    // Fail fast: Patroni's access checks (allowlist, client certificate, basic auth) answer a
    // request it can never act on, before anything is held (see the reference on
    // POST /switchover). A refusal here costs the clients nothing.
    if let Err(why) = probe_switchover_access(client, &leader_api).await {
        out.outcome = Outcome::Refused;
        out.error = Some(format!("{why}; checked before pausing: nothing changed"));
        return out;
    }

    let mut paused: Option<GroupPause> = None;
    if !plan.targets.is_empty() {
        let popts = PauseOptions {
            wait: opts.pause_wait,
            hold: opts.pause_timeout,
            terminate_after: opts.terminate_after,
            hold_reads: opts.hold_reads,
        };
        let acquire =
            GroupPause::acquire(pg, &cn_ep, &group.scope, &plan.targets, &popts, progress);
        let got = tokio::select! {
            r = acquire => r,
            _ = opts.interrupted() => {
                // Dropping the attempt closes its sessions: the server rolls it back.
                tokio::time::sleep(Duration::from_millis(100)).await;
                out.outcome = Outcome::Interrupted;
                out.error = Some("interrupted before Patroni was asked: the pause was let go (rolled back), nothing changed".into());
                return out;
            }
        };
        match got {
            Ok(p) => {
                progress(&format!(
                    "paused {} in {} ({}; {} in {} ms){}",
                    group.scope,
                    p.databases().collect::<Vec<_>>().join(", "),
                    p.method.describe(plan.targets[0].nodeid),
                    p.tries_text(),
                    p.acquired_after.as_millis(),
                    p.reads_text()
                ));
                for s in &p.terminated {
                    progress(&format!("terminated by Citus to get the pause: {s}"));
                }
                out.pause = Some(PauseReport::held(&p));
                paused = Some(p);
            }
            Err(e) => {
                out.outcome = Outcome::Refused;
                out.pause = Some(PauseReport {
                    method: plan.method.unwrap_or_default(),
                    blockers: e.blockers().to_vec(),
                    ..Default::default()
                });
                out.error = Some(e.to_string());
                return out;
            }
        }
    }
    let pause_started = paused
        .as_ref()
        .map(|p| p.held_since)
        .unwrap_or_else(Instant::now);

    // Ask Patroni, and wait for the candidate to become writable, whichever ends first.
    let body = json!({"leader": leader.name, "candidate": candidate});
    let post = client.send(
        reqwest::Method::POST,
        &leader_api,
        "switchover",
        Some(&body),
        opts.pause_timeout + Duration::from_secs(5),
    );
    tokio::pin!(post);
    let wait = wait_writable(
        pg,
        &topo.databases[0],
        &plan.candidate_pg,
        group.vip.as_ref().map(|v| v.rw.clone()),
    );
    tokio::pin!(wait);
    let deadline = tokio::time::sleep(opts.pause_timeout);
    tokio::pin!(deadline);
    progress(&format!(
        "asked Patroni to switch {} over from {} to {}",
        group.scope, leader.name, candidate
    ));
    let mut post_result: Option<(u16, String)> = None;
    let writable_at = loop {
        tokio::select! {
            r = &mut post, if post_result.is_none() => {
                match r {
                    Ok((200, text)) => { progress(&format!("Patroni: {text}")); post_result = Some((200, text)); }
                    // "Switchover status unknown": decide from what is true. Anything else with
                    // 503 ("Switchover failed", "failed to write failover key") is a no.
                    Ok((503, text)) if text.contains("unknown") => { progress(&format!("Patroni: {text} (503): watching the cluster to decide")); post_result = Some((503, text)); }
                    Ok((status, text)) => {
                        if let Some(p) = paused { p.release().await; }
                        out.outcome = Outcome::Refused;
                        out.patroni = Some(text.clone());
                        out.error = Some(format!("Patroni refused the switchover (HTTP {status}): {text}; the pause was rolled back, nothing changed"));
                        return out;
                    }
                    Err(e) => { progress(&format!("Patroni's reply: {e}: watching the cluster to decide")); post_result = Some((0, e.to_string())); }
                }
            }
            _ = &mut wait => break Instant::now(),
            _ = opts.interrupted() => {
                // Patroni has the request and cannot be un-asked: stop holding writes now, and
                // finish as a lost pause does (watch Patroni, repair the rows).
                let had_pause = paused.is_some();
                if let Some(p) = paused { p.release().await; }
                // The request may be on its way still: learn Patroni's answer (bounded).
                if post_result.is_none() {
                    post_result = Some(match tokio::time::timeout(Duration::from_secs(10), &mut post).await {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) => (0, e.to_string()),
                        Err(_) => (0, "no answer".into()),
                    });
                }
                if let Some((status, text)) = &post_result
                    && !matches!(status, 200 | 503 | 0)
                {
                    out.outcome = Outcome::Interrupted;
                    out.patroni = Some(text.clone());
                    out.error = Some(format!("interrupted; Patroni refused the switchover (HTTP {status}): {text}; the pause was rolled back, nothing changed"));
                    return out;
                }
                out.patroni = post_result.map(|p| p.1);
                progress("interrupted: the pause was let go; Patroni has the request, so citusctl watches it finish and repairs pg_dist_node (Ctrl-C again to leave at once)");
                let mut done = finish_unpaused(topo, client, pg, plan.observed.index, out, had_pause.then_some(pause_started), "interrupted after Patroni was asked".into(), progress).await;
                done.outcome = Outcome::Interrupted;
                return done;
            }
            _ = &mut deadline => {
                let had_pause = paused.is_some();
                if let Some(p) = paused { p.release().await; }
                out.patroni = post_result.map(|p| p.1);
                progress(&format!(
                    "{candidate} is not writable after {}: the pause was let go; watching Patroni to finish without it",
                    humantime::format_duration(opts.pause_timeout)
                ));
                let why = format!(
                    "the pause timeout ({}) passed before {candidate} was seen writable",
                    humantime::format_duration(opts.pause_timeout)
                );
                return finish_unpaused(topo, client, pg, plan.observed.index, out, had_pause.then_some(pause_started), why, progress).await;
            }
        }
    };
    out.writable_after_ms = Some(writable_at.duration_since(pause_started).as_millis() as u64);
    progress(&format!("{candidate} is writable"));

    // Point the rows at the new leader inside the paused transactions, then commit.
    let uopts = UpdateOptions {
        force: false,
        lock_cooldown_ms: 0,
        statement_timeout_ms: 30_000,
        when_busy: WhenBusy::Wait,
    };
    // (The coordinator's own rows are written on its new leader, by settle_coordinator below.)
    let worker_dbs: &[DatabasePlan] = if group.kind == GroupKind::Coordinator {
        &[]
    } else {
        &plan.meta.databases
    };
    for dbp in worker_dbs {
        for c in &dbp.changes {
            out.rows_changed.push(c.describe(&dbp.database));
        }
        if paused
            .as_ref()
            .is_some_and(|p| p.client(&dbp.database).is_some())
        {
            continue;
        }
        // A database without a primary row to pause: its plan runs on its own.
        if let Err(e) = apply_database(pg, &cn_ep, dbp, uopts).await {
            out.error = Some(format!("{}: {e}: run `citusctl resync`", dbp.database));
        }
    }
    if let Some(p) = paused {
        let held_since = p.held_since;
        if let Err((db, e)) = p.commit(worker_dbs, &uopts).await {
            out.rows_changed.clear();
            // The pause is gone (the server ended it, or the statement failed and everything
            // rolled back): the new leader is writable, so finish as failover does.
            progress(&format!(
                "{db}: {e}: the pause is lost; repairing pg_dist_node without it"
            ));
            return finish_unpaused(
                topo,
                client,
                pg,
                plan.observed.index,
                out,
                Some(held_since),
                format!("{db}: {e}"),
                progress,
            )
            .await;
        }
        out.paused_ms = Some(held_since.elapsed().as_millis() as u64);
        if let Some(r) = out.pause.as_mut() {
            r.held_ms = out.paused_ms;
        }
        progress(&format!(
            "resumed {} after {} ms",
            group.scope,
            out.paused_ms.unwrap_or(0)
        ));
    }

    // The coordinator: its own row and citus.use_secondary_nodes follow at once.
    if group.kind == GroupKind::Coordinator
        && let Err(e) = settle_coordinator(topo, client, pg, &mut out).await
    {
        out.error = Some(e);
    }
    if post_result.is_none() {
        // Patroni answers once its own poll sees the new leader: do not hold the exit for its words.
        if let Ok((_, text)) = tokio::time::timeout(Duration::from_secs(2), &mut post)
            .await
            .unwrap_or(Ok((0, String::new())))
            && !text.is_empty()
        {
            out.patroni = Some(text);
        }
    } else {
        out.patroni = post_result.map(|p| p.1);
    }
    out.outcome = Outcome::Switched;
    out
}

/// How long the switchover is watched after the pause was lost, for Patroni to finish it.
const FINISH_WATCH: Duration = Duration::from_secs(30);

/// The pause was lost (the deadline passed, or the server ended it while the client was away):
/// writes to the group fail from now on until its rows are right. Keep watching Patroni; when
/// the group has a new writable leader, repair its rows (and the coordinator's, for a
/// coordinator switchover) at once, as `failover` does, and say plainly what clients saw. When
/// Patroni did not switch over within `FINISH_WATCH`, report the group's state: rolled back.
#[allow(clippy::too_many_arguments)]
async fn finish_unpaused(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
    index: usize,
    mut out: Switchover,
    paused_since: Option<Instant>,
    why: String,
    progress: &(dyn Fn(&str) + Sync),
) -> Switchover {
    let group = &topo.groups[index];
    let lost = Instant::now();
    let scope = std::slice::from_ref(&group.scope);
    while lost.elapsed() < FINISH_WATCH {
        if let Ok(o) = observe_for_write(topo, client, pg).await
            && let Ok(l) = o.views[index].single_leader()
            && l.name != out.old_leader
        {
            let new_leader = l.name.clone();
            let result = if group.kind == GroupKind::Coordinator {
                settle_coordinator(topo, client, pg, &mut out).await
            } else {
                let plan = plan_checked(topo, &o.views, &o.tables, pg, scope).await;
                if plan.refused.iter().any(|r| r.scope == group.scope) {
                    // Not writable yet.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                let uopts = UpdateOptions {
                    force: false,
                    lock_cooldown_ms: 0,
                    statement_timeout_ms: 30_000,
                    when_busy: WhenBusy::Wait,
                };
                let mut r = Ok(());
                for db in &plan.databases {
                    if let Err(e) = apply_database(pg, &o.coordinator.1, db, uopts).await {
                        r = Err(format!("{}: {e}", db.database));
                        break;
                    }
                    for c in &db.changes {
                        out.rows_changed.push(c.describe(&db.database));
                    }
                }
                r
            };
            let repaired = lost.elapsed().as_millis();
            if result.is_ok() {
                let rec =
                    super::recover::prepared_transactions(pg, &o.coordinator.1, &topo.databases)
                        .await;
                if let Some(msg) = super::recover::describe(&rec) {
                    progress(&msg);
                }
            }
            out.new_leader = Some(new_leader.clone());
            out.paused_ms = paused_since.map(|t| lost.duration_since(t).as_millis() as u64);
            if let (Some(r), Some(ms)) = (out.pause.as_mut(), out.paused_ms) {
                r.held_ms = Some(ms);
            }
            out.outcome = Outcome::SwitchedWithoutPause;
            out.error = Some(match result {
                Ok(()) => format!(
                    "{why}: the pause was lost, so writes to {} were not held (they failed) from its end until pg_dist_node named {new_leader}, repaired {repaired} ms after citusctl saw it lost",
                    group.scope
                ),
                Err(e) => format!(
                    "{why}: the pause was lost, and pg_dist_node could not be repaired ({e}): writes to {} fail until `citusctl resync` succeeds",
                    group.scope
                ),
            });
            progress(&format!(
                "{} now leads {}; pg_dist_node repaired {repaired} ms after the pause was lost",
                new_leader, group.scope
            ));
            return out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let state = group_state(client, group).await;
    out.outcome = Outcome::RolledBack;
    out.new_leader = None;
    out.error = Some(format!(
        "{why}: the pause was rolled back (pg_dist_node unchanged) and Patroni did not switch over within another {}. {} now: {state}. If Patroni still completes it, `citusctl resync` repairs pg_dist_node",
        humantime::format_duration(FINISH_WATCH),
        group.scope
    ));
    out
}

/// `POST /switchover {"leader": ""}`: Patroni answers 400 ("only from a specific leader") when
/// it would accept this client, 401/403 when not, and writes nothing either way (Patroni 3.0.2
/// and 4.1). No answer at all is a no too.
async fn probe_switchover_access(client: &PatroniClient, api: &url::Url) -> Result<(), String> {
    let body = json!({"leader": ""});
    match client
        .send(
            reqwest::Method::POST,
            api,
            "switchover",
            Some(&body),
            Duration::from_secs(5),
        )
        .await
    {
        Ok((400, _)) => Ok(()),
        Ok((status, text)) => Err(format!(
            "Patroni does not accept citusctl's request (HTTP {status}): {}",
            text.trim()
        )),
        Err(e) => Err(format!("the leader's REST API does not answer: {e}")),
    }
}

async fn settle_coordinator(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
    out: &mut Switchover,
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
                when_busy: WhenBusy::Wait,
            };
            for db in &plan.databases {
                apply_database(pg, &cn_ep, db, opts)
                    .await
                    .map_err(|e| format!("{}: {e}", db.database))?;
                for c in &db.changes {
                    out.rows_changed.push(c.describe(&db.database));
                }
            }
            for s in &plan.settings {
                apply_setting(pg, s, &topo.databases[0], false)
                    .await
                    .map_err(|e| format!("{}: {e}", s.member))?;
                out.rows_changed.push(format!(
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
