//! What the cluster-wide Patroni operations share: choosing groups (`SCOPE...` or `--all`, in a
//! safe order), asking, and the per-member report they print.

use anyhow::bail;
use serde::Serialize;

use crate::exit::Exit;
use crate::output::{Render, Table, tsv_field};
use crate::topology::{Group, GroupKind, Topology};

#[derive(Debug, clap::Args)]
pub struct Selection {
    /// Groups (Patroni scopes) to act on.
    pub scopes: Vec<String>,

    /// Act on every group of the inventory.
    #[arg(long, conflicts_with = "scopes")]
    pub all: bool,
}

impl Selection {
    /// The chosen groups, workers first and the coordinator last.
    pub fn resolve<'a>(&self, topo: &'a Topology) -> anyhow::Result<Vec<&'a Group>> {
        if self.scopes.is_empty() && !self.all {
            bail!(crate::UsageError(format!(
                "name the groups to act on, or pass --all (groups: {})",
                topo.scopes().join(", ")
            )));
        }
        for s in &self.scopes {
            if topo.group_by_scope(s).is_none() {
                bail!(crate::UsageError(format!(
                    "no group with scope `{s}` (known: {})",
                    topo.scopes().join(", ")
                )));
            }
        }
        let chosen = |g: &&Group| self.all || self.scopes.contains(&g.scope);
        let mut out: Vec<&Group> = topo
            .groups
            .iter()
            .filter(|g| g.kind == GroupKind::Worker)
            .filter(chosen)
            .collect();
        out.extend(
            topo.groups
                .iter()
                .filter(|g| g.kind == GroupKind::Coordinator)
                .filter(chosen),
        );
        Ok(out)
    }
}

/// Ask on a terminal; without one, `--yes` is required.
pub async fn confirm(yes: bool, question: String) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    crate::ops::confirm::ask(
        &question,
        "this changes the cluster and stdin is not a terminal: pass --yes",
    )
    .await
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    pub format_version: u32,
    pub action: String,
    pub results: Vec<ActionResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    pub scope: String,
    pub member: String,
    /// `ok`, `refused` (Patroni said no), `failed` (no answer, or it did not happen).
    pub status: String,
    pub http_status: Option<u16>,
    /// Patroni's words, or what went wrong.
    pub message: String,
    /// The Citus pause this member's restart was held in (a worker leader).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<crate::pause::PauseReport>,
}

impl ActionReport {
    pub fn new(action: &str) -> Self {
        ActionReport {
            format_version: crate::status::FORMAT_VERSION,
            action: action.into(),
            results: vec![],
        }
    }
    pub fn push(&mut self, scope: &str, member: &str, r: Result<(u16, String), String>) {
        let (status, http_status, message) = match r {
            Ok((code, text)) if (200..300).contains(&code) => ("ok", Some(code), text),
            Ok((code, text)) => ("refused", Some(code), text),
            Err(e) => ("failed", None, e),
        };
        self.results.push(ActionResult {
            scope: scope.into(),
            member: member.into(),
            status: status.into(),
            http_status,
            message,
            pause: None,
        });
    }
    /// citusctl itself said no (the cluster's state made it unsafe): exit 4.
    pub fn refuse(&mut self, scope: &str, member: &str, why: String) {
        self.results.push(ActionResult {
            scope: scope.into(),
            member: member.into(),
            status: "refused".into(),
            http_status: None,
            message: why,
            pause: None,
        });
    }
    pub fn exit(&self) -> Exit {
        if self.results.iter().any(|r| r.status == "refused") {
            Exit::Refused
        } else if self.results.iter().any(|r| r.status == "failed") {
            Exit::No
        } else {
            Exit::Ok
        }
    }
}

impl Render for ActionReport {
    fn pretty(&self) -> String {
        let mut t = Table::new(
            format!("citusctl {}", self.action),
            &["Scope", "Member", "Result", "Patroni says"],
        );
        for r in &self.results {
            let code = r.http_status.map(|c| format!(" ({c})")).unwrap_or_default();
            t.row(vec![
                r.scope.clone(),
                r.member.clone(),
                format!("{}{code}", r.status),
                r.message.clone(),
            ]);
        }
        t.render()
    }
    fn tsv(&self) -> String {
        let mut out = String::from("Scope\tMember\tResult\tHTTP\tMessage\n");
        for r in &self.results {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                r.scope,
                r.member,
                r.status,
                r.http_status.map(|c| c.to_string()).unwrap_or_default(),
                tsv_field(&r.message)
            ));
        }
        out
    }
}
