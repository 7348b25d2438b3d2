//! The report of a `pg_dist_node` plan and its application: `resync` and `add-worker` print it.

use serde::Serialize;

use crate::output::{self, Render, Table};
use crate::plan::MetadataPlan;

/// Without a terminal to ask on.
pub const CONFIRM_HINT: &str = "this changes the cluster and stdin is not a terminal: pass --yes to apply, or --dry-run to look";

/// How a `pg_dist_node` plan ended (JSON: the quoted names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MetadataOutcome {
    /// Shown, not applied (dry run, check).
    #[serde(rename = "planned")]
    Planned,
    #[serde(rename = "nothing to do")]
    NothingToDo,
    #[serde(rename = "applied")]
    Applied,
    /// The write rolled back: nothing changed.
    #[serde(rename = "failed")]
    Failed,
    /// Not written: the cluster is in a state that must not be written to.
    #[serde(rename = "refused")]
    Refused,
    /// The cluster moved while the operator was deciding: nothing written.
    #[serde(rename = "changed")]
    Changed,
}

impl MetadataOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataOutcome::Planned => "planned",
            MetadataOutcome::NothingToDo => "nothing to do",
            MetadataOutcome::Applied => "applied",
            MetadataOutcome::Failed => "failed",
            MetadataOutcome::Refused => "refused",
            MetadataOutcome::Changed => "changed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MetadataReport {
    pub format_version: u32,
    pub cluster: String,
    /// The coordinator member whose pg_dist_node was planned against.
    pub coordinator: Option<String>,
    pub plan: MetadataPlan,
    pub outcome: MetadataOutcome,
    /// After applying: pg_dist_node read back agrees with the plan's goal.
    pub verified: Option<bool>,
    pub error: Option<String>,
    /// `add-worker --rebalance`: the rebalance that followed the registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<crate::ops::rebalance::RebalanceSummary>,
}

impl MetadataReport {
    /// The plan to look at before the prompt: on stdout in the pretty format, else on stderr,
    /// so that stdout keeps only the chosen format.
    pub fn show_before_prompt(&self, format: output::Format) -> anyhow::Result<()> {
        let plan = output::render(self, output::Format::Pretty);
        if format == output::Format::Pretty {
            output::print(&plan)?;
        } else {
            crate::ui::say(plan.trim_end());
        }
        Ok(())
    }

    pub fn new(cluster: &str) -> Self {
        MetadataReport {
            format_version: crate::status::FORMAT_VERSION,
            cluster: cluster.to_owned(),
            coordinator: None,
            plan: MetadataPlan::default(),
            outcome: MetadataOutcome::Planned,
            verified: None,
            error: None,
            rebalance: None,
        }
    }
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
        match (self.outcome, &self.error) {
            (o, Some(e)) => out.push_str(&format!("{}: {e}\n", o.as_str())),
            (MetadataOutcome::NothingToDo, None) => {
                out.push_str("pg_dist_node agrees with Patroni and the inventory: nothing to do.\n")
            }
            (MetadataOutcome::Applied, None) => out.push_str(&format!(
                "applied {} change(s); verified: {}\n",
                self.plan.change_count(),
                if self.verified == Some(true) {
                    "ok"
                } else {
                    "NOT ok"
                }
            )),
            (MetadataOutcome::Planned, None) => out.push_str(&format!(
                "{} change(s) planned; nothing written.\n",
                self.plan.change_count()
            )),
            _ => {}
        }
        if let Some(r) = &self.rebalance {
            out.push_str(&r.pretty());
            out.push_str(&format!("rebalance: {}\n", r.outcome.as_str()));
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
