//! `citusctl resync`: make `pg_dist_node` match the inventory and Patroni.
//!
//! Changes: `pg_dist_node` rows on the coordinator leader (citus_update_node, citus_add_node,
//! citus_set_coordinator_host, citus_activate_node), one transaction per database.
//! Refuses (exit 4) to write a group with no leader or two leaders, a direct-mode group whose
//! leader is not writable, and anything at all when the coordinator has no single writable
//! leader. Observe -> plan -> show -> confirm -> apply -> verify; `--dry-run` stops after the plan.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use crate::apply::{UpdateOptions, apply_database, apply_setting, read_setting};
use crate::citus::DistNode;
use crate::context::Context;
use crate::exit::Exit;
use crate::health::{GroupView, group_view};
use crate::member_sql::is_writable;
use crate::observe::{MetadataProbe, observe};
use crate::output::{self, Format, Render, Table};
use crate::patroni::PatroniClient;
use crate::pg::PgParams;
use crate::plan::{MetadataPlan, Refusal, plan_metadata, plan_use_secondary_nodes, rows_after};
use crate::topology::{Endpoint, Topology};

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

    /// Run as a controller: repair pg_dist_node whenever it drifts, until SIGTERM or Ctrl-C.
    #[arg(long)]
    pub watch: bool,

    /// How often the controller looks (with --watch).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,

    /// Let citus_update_node cancel transactions that block it after --lock-cooldown
    /// (Citus `force => true`). Without it, a long writer on the group delays the update up to
    /// --statement-timeout and the transaction is rolled back.
    #[arg(long)]
    pub force: bool,

    /// With --force: how long blocking transactions may finish before they are cancelled.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub lock_cooldown: Duration,

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

#[derive(Debug, Clone, Serialize)]
pub struct MetadataReport {
    pub format_version: u32,
    pub cluster: String,
    /// The coordinator member whose pg_dist_node was planned against.
    pub coordinator: Option<String>,
    pub plan: MetadataPlan,
    /// `planned` (dry run / check), `applied`, `nothing to do`, `failed`, `refused`.
    pub outcome: String,
    /// After applying: pg_dist_node read back agrees with the plan's goal.
    pub verified: Option<bool>,
    pub error: Option<String>,
}

impl MetadataReport {
    pub fn new(cluster: &str) -> Self {
        MetadataReport {
            format_version: crate::status::FORMAT_VERSION,
            cluster: cluster.to_owned(),
            coordinator: None,
            plan: MetadataPlan::default(),
            outcome: String::new(),
            verified: None,
            error: None,
        }
    }
}

/// Why nothing can be planned at all.
struct Blocked {
    exit: Exit,
    reason: String,
}

struct Observed {
    views: Vec<GroupView>,
    tables: Vec<(String, Vec<DistNode>)>,
    coordinator: (String, Endpoint),
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    ctx.check_scopes(&args.scopes)?;
    let client = ctx.patroni_reader()?;
    let pg = ctx.pg_params()?;
    let opts = UpdateOptions {
        force: args.force,
        lock_cooldown_ms: i32::try_from(args.lock_cooldown.as_millis()).unwrap_or(i32::MAX),
        statement_timeout_ms: u64::try_from(args.statement_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
    };
    if args.watch {
        return super::resync_watch::run(
            &ctx.topo,
            &client,
            &pg,
            &args.scopes,
            args.interval,
            opts,
        )
        .await;
    }

    let mut report = MetadataReport::new(&ctx.topo.name);
    let observed = match observe_for_write(&ctx.topo, &client, &pg).await {
        Ok(o) => o,
        Err(b) => {
            report.outcome = "refused".into();
            report.error = Some(b.reason);
            output::print(&output::render(&report, args.format))?;
            return Ok(b.exit);
        }
    };
    report.coordinator = Some(observed.coordinator.0.clone());
    report.plan = plan_checked(&ctx.topo, &observed, &pg, &args.scopes).await;
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
            "nothing to do".into()
        } else {
            "planned".into()
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

    if !args.yes {
        output::print(&output::render(&report, Format::Pretty))?;
        if !confirm(&format!(
            "Apply {} change(s) to pg_dist_node?",
            report.plan.change_count()
        ))
        .await?
        {
            crate::ui::say("Nothing changed.");
            return Ok(Exit::No);
        }
    }

    let started = Instant::now();
    for db in &report.plan.databases {
        if let Err(e) = apply_database(&pg, &observed.coordinator.1, db, opts).await {
            report.outcome = "failed".into();
            report.error = Some(format!(
                "{}: {e} (rolled back: nothing changed in {})",
                db.database, db.database
            ));
            output::print(&output::render(&report, args.format))?;
            return Ok(Exit::Refused);
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
                report.outcome = "failed".into();
                report.error = Some(format!("{}: citus.use_secondary_nodes not set: {e}", s.member));
                output::print(&output::render(&report, args.format))?;
                return Ok(Exit::Refused);
            }
        }
    }
    report.outcome = "applied".into();
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
    if args.yes || args.format != Format::Pretty {
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

/// Observe, and make sure the coordinator has one writable leader whose metadata we read.
async fn observe_for_write(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
) -> Result<Observed, Blocked> {
    let probe = observe(topo, client, pg).await;
    let views: Vec<GroupView> = topo
        .groups
        .iter()
        .zip(&probe.groups)
        .map(|(g, p)| group_view(g, p))
        .collect();
    let cn = &views[0];
    if cn.answered == 0 {
        return Err(Blocked {
            exit: Exit::Unreachable,
            reason: format!(
                "coordinator unreachable: no member of {} answers its REST API; nothing written",
                cn.scope
            ),
        });
    }
    let leader = match cn.single_leader() {
        Ok(l) => l,
        Err(why) => {
            return Err(Blocked {
                exit: Exit::Refused,
                reason: format!("{why}: nothing written"),
            });
        }
    };
    let MetadataProbe::Read { databases, .. } = &probe.metadata else {
        return Err(Blocked {
            exit: Exit::Refused,
            reason: "coordinator metadata not read: nothing written".into(),
        });
    };
    let mut tables = Vec::new();
    for (db, r) in databases {
        match r {
            Ok(m) if m.in_recovery => {
                return Err(Blocked {
                    exit: Exit::Refused,
                    reason: format!(
                        "coordinator leader {} answers pg_is_in_recovery() = true: nothing written",
                        leader.name
                    ),
                });
            }
            Ok(m) => tables.push((db.clone(), m.nodes.clone())),
            Err(e) => {
                return Err(Blocked {
                    exit: Exit::Unreachable,
                    reason: format!(
                        "cannot read pg_dist_node in {db} on {}: {e}; nothing written",
                        leader.name
                    ),
                });
            }
        }
    }
    Ok(Observed {
        coordinator: (leader.name.clone(), leader.endpoint.clone()),
        views,
        tables,
    })
}

/// Plan, then make sure every direct-mode primary row we would point at a member points at a
/// writable one; a group whose leader is not writable (yet) is refused.
pub(super) async fn plan_checked_parts(
    topo: &Topology,
    views: &[GroupView],
    tables: &[(String, Vec<DistNode>)],
    pg: &PgParams,
    scopes: &[String],
) -> MetadataPlan {
    let first = plan_metadata(topo, views, tables, scopes, &[]);
    let mut targets: Vec<(String, Endpoint)> = Vec::new();
    for db in &first.databases {
        for c in db.changes.iter().filter(|c| c.noderole == "primary") {
            let g = topo.group_by_scope(&c.scope).expect("planned groups exist");
            if g.vip.is_none() {
                let ep = g
                    .members
                    .iter()
                    .find(|m| m.pg.to_string() == c.wanted)
                    .map(|m| m.pg.clone());
                if let Some(ep) = ep
                    && !targets.iter().any(|(s, _)| s == &c.scope)
                {
                    targets.push((c.scope.clone(), ep));
                }
            }
        }
    }
    if targets.is_empty() {
        return first;
    }
    let db = topo.databases[0].clone();
    let checks = futures::future::join_all(targets.iter().map(|(scope, ep)| {
        let db = db.clone();
        async move {
            match is_writable(pg, ep, &db).await {
                Ok(true) => None,
                Ok(false) => Some(Refusal { scope: scope.clone(), reason: format!("{scope}: the leader at {ep} answers pg_is_in_recovery() = true (not promoted yet)") }),
                Err(e) => Some(Refusal { scope: scope.clone(), reason: format!("{scope}: cannot check the leader: {e}") }),
            }
        }
    }))
    .await;
    let refused: Vec<Refusal> = checks.into_iter().flatten().collect();
    if refused.is_empty() {
        first
    } else {
        plan_metadata(topo, views, tables, scopes, &refused)
    }
}

/// Add the `citus.use_secondary_nodes` changes the coordinator members need.
pub(super) async fn plan_settings(
    topo: &Topology,
    views: &[GroupView],
    tables: &[(String, Vec<DistNode>)],
    pg: &PgParams,
    scopes: &[String],
    plan: &mut MetadataPlan,
) {
    let cn = topo.coordinator();
    let skipped = !scopes.is_empty() && !scopes.contains(&cn.scope);
    if skipped || plan.refused.iter().any(|r| r.scope == cn.scope) {
        return;
    }
    let db = &topo.databases[0];
    let members: Vec<_> = views[0]
        .members
        .iter()
        .filter(|m| m.doc.as_ref().is_some_and(|d| d.is_healthy()))
        .collect();
    let current = futures::future::join_all(members.iter().map(|m| async move {
        (
            m.name.clone(),
            m.endpoint.clone(),
            read_setting(pg, &m.endpoint, db).await,
        )
    }))
    .await;
    // Judge the setting against the rows as they will be once this plan ran.
    let after: Vec<(String, Vec<DistNode>)> = tables
        .iter()
        .map(|(db, rows)| {
            let steps = plan
                .databases
                .iter()
                .find(|d| &d.database == db)
                .map(|d| d.steps.as_slice())
                .unwrap_or(&[]);
            (db.clone(), rows_after(rows, steps))
        })
        .collect();
    plan.settings = plan_use_secondary_nodes(&views[0], &current, &after, &mut plan.notes);
}

async fn plan_checked(
    topo: &Topology,
    o: &Observed,
    pg: &PgParams,
    scopes: &[String],
) -> MetadataPlan {
    plan_checked_parts(topo, &o.views, &o.tables, pg, scopes).await
}

pub(super) async fn observe_parts(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
) -> Result<(Vec<GroupView>, Vec<(String, Vec<DistNode>)>, Endpoint), String> {
    observe_for_write(topo, client, pg)
        .await
        .map(|o| (o.views, o.tables, o.coordinator.1))
        .map_err(|b| b.reason)
}

pub(super) async fn confirm(question: &str) -> anyhow::Result<bool> {
    if !crate::ui::can_prompt() {
        bail!(crate::UsageError(
            "this changes the cluster and stdin is not a terminal: pass --yes to apply, or --dry-run to look".into()
        ));
    }
    let q = question.to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        dialoguer::Confirm::new()
            .with_prompt(q)
            .default(false)
            .interact_opt()
    })
    .await??;
    Ok(answer == Some(true))
}

impl Render for MetadataReport {
    fn pretty(&self) -> String {
        let mut out = String::new();
        let changes: Vec<_> = self
            .plan
            .databases
            .iter()
            .flat_map(|d| d.changes.iter().map(move |c| (d, c)))
            .collect();
        if !changes.is_empty() {
            let mut t = Table::new(
                format!("pg_dist_node plan: {}", self.cluster),
                &[
                    "Group", "Scope", "Database", "Row", "Role", "Now", "Wanted", "Action",
                ],
            );
            t.right_align(&[0, 3]);
            for (d, c) in &changes {
                t.row(vec![
                    c.groupid.to_string(),
                    c.scope.clone(),
                    d.database.clone(),
                    c.nodeid
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into()),
                    c.noderole.clone(),
                    c.now.clone().unwrap_or_else(|| "-".into()),
                    c.wanted.clone(),
                    format!("{} ({})", c.action, c.reason),
                ]);
            }
            out.push_str(&t.render());
            for d in &self.plan.databases {
                if !d.steps.is_empty() {
                    out.push_str(&format!(
                        " In {}, one transaction on {}:\n",
                        d.database,
                        self.coordinator.as_deref().unwrap_or("?")
                    ));
                    for s in &d.steps {
                        out.push_str(&format!("   SELECT {};\n", s.describe()));
                    }
                }
            }
        }
        if !self.plan.settings.is_empty() {
            let mut t = Table::new(
                "citus.use_secondary_nodes",
                &["Member", "Now", "Wanted", "Why"],
            );
            for c in &self.plan.settings {
                t.row(vec![
                    c.member.clone(),
                    c.now.clone(),
                    c.wanted.clone(),
                    c.reason.clone(),
                ]);
            }
            out.push_str(&t.render());
        }
        for r in &self.plan.refused {
            out.push_str(&format!(
                "refused: {}: {} (not written)\n",
                r.scope, r.reason
            ));
        }
        for n in &self.plan.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        match (self.outcome.as_str(), &self.error) {
            (_, Some(e)) => out.push_str(&format!("{}: {e}\n", self.outcome)),
            ("nothing to do", None) => {
                out.push_str("pg_dist_node agrees with Patroni and the inventory: nothing to do.\n")
            }
            ("applied", None) => out.push_str(&format!(
                "applied {} change(s); verified: {}\n",
                self.plan.change_count(),
                if self.verified == Some(true) {
                    "ok"
                } else {
                    "NOT ok"
                }
            )),
            ("planned", None) => out.push_str(&format!(
                "{} change(s) planned; nothing written.\n",
                self.plan.change_count()
            )),
            _ => {}
        }
        out
    }

    fn tsv(&self) -> String {
        let mut out = String::from("Group\tScope\tDatabase\tRow\tRole\tNow\tWanted\tAction\n");
        for d in &self.plan.databases {
            for c in &d.changes {
                let cells = [
                    c.groupid.to_string(),
                    c.scope.clone(),
                    d.database.clone(),
                    c.nodeid.map(|n| n.to_string()).unwrap_or_default(),
                    c.noderole.clone(),
                    c.now.clone().unwrap_or_default(),
                    c.wanted.clone(),
                    c.action.to_string(),
                ];
                out.push_str(
                    &cells
                        .iter()
                        .map(|c| output::tsv_field(c))
                        .collect::<Vec<_>>()
                        .join("\t"),
                );
                out.push('\n');
            }
        }
        out
    }
}
