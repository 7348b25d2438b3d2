//! `citusctl switchover SCOPE`: a Patroni switchover of one group in which writes through the
//! coordinator wait instead of failing. Reads of the group are not held (Citus takes no lock for
//! a SELECT): they fail while the old leader is down, as with any switchover, unless
//! --hold-reads also locks the group's distributed tables on the coordinator (see crate::pause).
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

use anyhow::bail;

use super::switchover_report::SwitchoverReport;

use crate::context::Context;
use crate::exit::Exit;
use crate::health::GroupView;
use crate::ops::confirm;
use crate::ops::switchover::{self as op, Outcome, Switchover, SwitchoverOptions};
use crate::output::{self, Format};
use crate::pause::{PauseMethod, PauseTarget};
use crate::plan::MetadataPlan;
use crate::plan::switchover::{candidates, choose};
use crate::topology::{Group, GroupKind};

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

    /// How long to keep trying to get the pause: each try waits at most 100 ms (under the
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

    /// Hold reads of a worker group too, not only writes: reads through the coordinator wait
    /// instead of failing while the old leader shuts down. Inside the pause, before it, the
    /// group's distributed tables are locked (ACCESS EXCLUSIVE) on the coordinator only, with
    /// the same short tries as the pause. The price: while held, EVERY query through the
    /// coordinator on those tables waits, other groups' shards included; queries started on
    /// worker nodes directly are not held. Needs the right to LOCK those tables.
    #[arg(long, conflicts_with_all = ["no_pause", "scheduled"])]
    pub hold_reads: bool,

    /// Output format of the summary.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    let group = ctx.group(&args.scope)?;
    if args.hold_reads && group.kind == GroupKind::Coordinator {
        bail!(crate::UsageError(format!(
            "--hold-reads holds a worker group's reads on the coordinator; {} is the coordinator group, which cannot be paused",
            group.scope
        )));
    }
    let client = ctx.patroni_writer()?;
    let pg = ctx.pg_params()?;
    let started = Instant::now();
    let mut report = SwitchoverReport::new(&group.scope);
    let finish = |mut r: SwitchoverReport, format: Format| -> anyhow::Result<Exit> {
        r.total_ms = started.elapsed().as_millis() as u64;
        output::print(&output::render(&r, format))?;
        Ok(r.exit())
    };
    let opts = SwitchoverOptions {
        pause: !args.no_pause,
        pause_timeout: args.pause_timeout,
        pause_wait: args.pause_wait,
        terminate_after: args.terminate_after,
        hold_reads: args.hold_reads,
        scheduled: args.scheduled.clone(),
        interrupt: Some(std::sync::Arc::new(tokio::sync::Notify::new())),
    };

    let observed = match op::observe(&ctx.topo, &client, &pg, &group.scope).await {
        Ok(o) => o,
        Err(b) => {
            report.result = Switchover {
                outcome: Outcome::Refused,
                error: Some(b.reason),
                ..Default::default()
            };
            report.exit_override = Some(b.exit);
            return finish(report, args.format);
        }
    };
    report.result.old_leader = observed.leader.name.clone();
    let candidate = match pick_candidate(observed.view(), &args).await {
        Ok(c) => c,
        Err(e) => {
            if e.downcast_ref::<crate::UsageError>().is_some() {
                return Err(e);
            }
            report.result.outcome = Outcome::Refused;
            report.result.error = Some(e.to_string());
            return finish(report, args.format);
        }
    };
    let plan = match op::plan(&ctx.topo, &pg, observed, candidate.clone(), &opts).await {
        Ok(p) => p,
        Err(why) => {
            report.result.outcome = Outcome::Refused;
            report.result.error = Some(why);
            return finish(report, args.format);
        }
    };
    say_plan(
        group,
        &plan.observed.leader.name,
        &candidate,
        &plan.meta,
        plan.method.zip(plan.targets.first()),
        &args,
    );
    if args.dry_run {
        report.result.outcome = Outcome::Planned;
        report.result.new_leader = Some(candidate);
        return finish(report, args.format);
    }
    if !args.yes
        && !args.force
        && !confirm::ask(
            &format!(
                "Switch {} over from {} to {}?",
                group.scope, plan.observed.leader.name, candidate
            ),
            "a switchover needs confirmation and stdin is not a terminal: pass --yes",
        )
        .await?
    {
        crate::ui::say("Nothing changed.");
        return Ok(Exit::No);
    }
    // Asked at a prompt: look again before touching anything.
    let plan = if args.yes || args.force {
        plan
    } else {
        match op::look_again(&ctx.topo, &client, &pg, &plan, args.max_lag, &opts).await {
            Ok(fresh) => fresh,
            Err(why) => {
                report.result.outcome = Outcome::Changed;
                report.result.old_leader = plan.observed.leader.name.clone();
                report.result.error = Some(format!(
                    "the cluster changed while you were deciding ({why}): nothing done; run again"
                ));
                return finish(report, args.format);
            }
        }
    };

    let old_leader = plan.observed.leader.name.clone();
    let progress = Progress::new(
        crate::ui::wants_spinner(args.format == Format::Pretty),
        &format!("switching {} over from {old_leader}", group.scope),
    );
    let say = |m: &str| progress.say(m);
    // The first Ctrl-C asks the switchover to stop as safely as it can (see
    // SwitchoverOptions::interrupt); a second one leaves at once.
    report.result = {
        let execute = op::execute(&ctx.topo, &client, &pg, plan, &opts, &say);
        tokio::pin!(execute);
        let mut interrupts = 0;
        loop {
            tokio::select! {
                r = &mut execute => break r,
                _ = tokio::signal::ctrl_c() => {
                    interrupts += 1;
                    if interrupts == 1 {
                        if let Some(n) = &opts.interrupt { n.notify_one(); }
                        continue;
                    }
                    // Dropping the switchover dropped the pause: its sessions close and the server
                    // rolls back (the rename with it). Give their tasks a moment to say goodbye.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break Switchover {
                        old_leader,
                        outcome: Outcome::Interrupted,
                        error: Some("interrupted twice: citusctl left at once; no pause is held; if Patroni had been asked it finishes the switchover by itself: `citusctl list` shows the state, `citusctl resync` repairs the rows".into()),
                        ..Default::default()
                    };
                }
            }
        }
    };
    drop(progress);
    finish(report, args.format)
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
        if args.hold_reads {
            lines.push(format!(
                "  hold reads: the tables with shards in group {} are locked on the coordinator too: EVERY query through it on them waits meanwhile (other groups' shards included); queries on worker nodes directly are not held",
                group.group_id
            ));
        }
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

/// Progress lines on stderr with the time since the start; on a terminal under a spinner
/// that shows the latest step and the time it has been waited for.
struct Progress(Instant, crate::ui::Spinner);

impl Progress {
    fn new(spinner: bool, msg: &str) -> Self {
        Progress(Instant::now(), crate::ui::Spinner::start(spinner, msg))
    }
    fn say(&self, msg: &str) {
        self.1
            .say(&format!("[{:>6.2}s] {msg}", self.0.elapsed().as_secs_f64()));
        self.1.set_message(msg);
    }
}
