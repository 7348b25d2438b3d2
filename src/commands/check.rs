//! `citusctl check [SCOPE...]`: a doctor for the whole cluster, for a person and for cron.
//!
//! Changes nothing. Reads every member's Patroni state and its own SQL answers, where each VIP
//! lands, every worker leader's `pg_dist_node` and Citus's own health checks on the coordinator
//! leader, then prints one finding per check, scope and member (`crate::doctor` judges).
//! Exit status: 0 when nothing fails (warnings allowed), 1 when anything fails, 3 when no
//! member answered its REST API.

use serde::Serialize;

use crate::context::Context;
use crate::doctor::{self, Finding, Status};
use crate::exit::Exit;
use crate::observe::observe;
use crate::output::{self, Format, Render, Table, tsv_field};
use crate::status;

/// Check the whole cluster: replication, split brain, VIPs, Citus metadata, versions and
/// settings. Changes nothing.
///
/// One row per finding: check, scope, member, status (ok, warn or fail), detail, and a hint
/// for what to do. Checks that need real Citus (worker metadata, Citus's own node health and
/// reachability checks) say `warn` when Citus cannot answer them. Exit status 0 when nothing
/// fails, 1 when anything fails, 3 when no member answers its REST API.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these groups (Patroni scopes); all when none is given. Cluster-wide findings are
    /// always shown.
    pub scopes: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub format_version: u32,
    pub cluster: String,
    /// Nothing failed.
    pub ok: bool,
    /// No member answered its REST API.
    pub unreachable: bool,
    pub counts: Counts,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    ctx.check_scopes(&args.scopes)?;
    let client = ctx.patroni_reader()?;
    let pg = ctx.pg_params()?;
    let probe = observe(&ctx.topo, &client, &pg).await;
    let st = status::build(&ctx.topo, &probe, &args.scopes);
    let gathered = crate::ops::doctor::gather(&ctx.topo, &pg, &probe).await;
    let mut findings = list_findings(&st);
    findings.extend(doctor::judge(&ctx.topo, &gathered, &args.scopes));
    let mut counts = Counts::default();
    for f in &findings {
        match f.status {
            Status::Ok => counts.ok += 1,
            Status::Warn => counts.warn += 1,
            Status::Fail => counts.fail += 1,
        }
    }
    let report = CheckReport {
        format_version: 1,
        cluster: ctx.topo.name.clone(),
        ok: counts.fail == 0 && !st.unreachable,
        unreachable: st.unreachable,
        counts,
        findings,
    };
    output::print(&output::render(&report, args.format))?;
    Ok(if report.unreachable {
        Exit::Unreachable
    } else if report.ok {
        Exit::Ok
    } else {
        Exit::No
    })
}

/// What `list` judges (Patroni health, `pg_dist_node` against Patroni), one finding per problem.
fn list_findings(st: &status::StatusReport) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in &st.groups {
        let f = |status, detail: String| Finding {
            check: "list",
            scope: g.scope.clone(),
            member: None,
            status,
            detail,
            hint: (status != Status::Ok).then(|| format!("citusctl list {}", g.scope)),
        };
        if g.problems.is_empty() {
            out.push(f(
                Status::Ok,
                format!(
                    "leader {}, pg_dist_node {}",
                    g.leader.as_deref().unwrap_or("?"),
                    g.verdict.as_str()
                ),
            ));
        }
        out.extend(g.problems.iter().map(|p| f(Status::Fail, p.clone())));
    }
    let prefixed = |p: &str| {
        st.groups
            .iter()
            .any(|g| p.starts_with(&format!("{}: ", g.scope)))
    };
    out.extend(
        st.problems
            .iter()
            .filter(|p| !prefixed(p))
            .map(|p| Finding {
                check: "list",
                scope: String::new(),
                member: None,
                status: Status::Fail,
                detail: p.clone(),
                hint: Some("citusctl resync --dry-run".into()),
            }),
    );
    out
}

impl Render for CheckReport {
    fn pretty(&self) -> String {
        let mut t = Table::new(
            format!("Citus cluster check: {}", self.cluster),
            &["Check", "Scope", "Member", "Status", "Detail"],
        );
        for f in &self.findings {
            t.row(vec![
                f.check.to_owned(),
                f.scope.clone(),
                f.member.clone().unwrap_or_default(),
                f.status.as_str().to_owned(),
                f.detail.clone(),
            ]);
        }
        let mut out = t.render();
        let mut hints: Vec<String> = Vec::new();
        for f in self.findings.iter().filter(|f| f.status != Status::Ok) {
            if let Some(h) = &f.hint {
                let who = [f.scope.as_str(), f.member.as_deref().unwrap_or_default()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                let line = if who.is_empty() {
                    format!("  - {}: {h}", f.check)
                } else {
                    format!("  - {} {who}: {h}", f.check)
                };
                if !hints.contains(&line) {
                    hints.push(line);
                }
            }
        }
        if !hints.is_empty() {
            out.push_str("\nHints:\n");
            for h in hints {
                out.push_str(&h);
                out.push('\n');
            }
        }
        out.push_str(&format!(
            "\n{} ok, {} warn, {} fail{}\n",
            self.counts.ok,
            self.counts.warn,
            self.counts.fail,
            if self.unreachable {
                ": no member answers its REST API"
            } else {
                ""
            }
        ));
        out
    }

    fn tsv(&self) -> String {
        let mut out = String::from("Check\tScope\tMember\tStatus\tDetail\tHint\n");
        for f in &self.findings {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                f.check,
                f.scope,
                f.member.as_deref().unwrap_or_default(),
                f.status.as_str(),
                tsv_field(&f.detail),
                tsv_field(f.hint.as_deref().unwrap_or_default()),
            ));
        }
        out
    }
}
