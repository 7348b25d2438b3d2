//! The report of a switchover or a failover: what happened, Patroni's words, how long writes were
//! held, the rows that changed. `format_version` as in `list`; fields are only ever added.

use serde::Serialize;

use crate::exit::Exit;
use crate::ops::switchover::{Outcome, Switchover};
use crate::output::Render;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SwitchoverReport {
    pub format_version: u32,
    pub scope: String,
    #[serde(flatten)]
    pub result: Switchover,
    pub total_ms: u64,
    /// When the exit status is not the outcome's (an unreachable coordinator: 3).
    #[serde(skip)]
    pub exit_override: Option<Exit>,
}

impl SwitchoverReport {
    pub fn new(scope: &str) -> Self {
        SwitchoverReport {
            format_version: crate::status::FORMAT_VERSION,
            scope: scope.to_owned(),
            ..Default::default()
        }
    }

    /// The exit status the outcome calls for.
    pub fn exit(&self) -> Exit {
        if let Some(e) = self.exit_override {
            return e;
        }
        match self.result.outcome {
            Outcome::Planned | Outcome::Scheduled => Exit::Ok,
            Outcome::Switched if self.result.error.is_none() => Exit::Ok,
            Outcome::Refused => Exit::Refused,
            Outcome::Interrupted => Exit::Interrupted,
            Outcome::Switched
            | Outcome::SwitchedWithoutPause
            | Outcome::RolledBack
            | Outcome::Failed
            | Outcome::Changed => Exit::No,
        }
    }
}

impl Render for SwitchoverReport {
    fn pretty(&self) -> String {
        let mut out = String::new();
        match self.result.outcome {
            Outcome::Switched | Outcome::SwitchedWithoutPause => {
                out.push_str(&format!(
                    "Switched {} over{}: {} -> {}\n",
                    self.scope,
                    if self.result.outcome == Outcome::SwitchedWithoutPause {
                        " WITHOUT the pause (writes failed for a while)"
                    } else {
                        ""
                    },
                    self.result.old_leader,
                    self.result.new_leader.as_deref().unwrap_or("?")
                ));
                if let Some(p) = self.result.paused_ms {
                    match self
                        .result
                        .pause
                        .as_ref()
                        .and_then(|r| r.held_relations.as_ref())
                    {
                        Some(rels) if !rels.is_empty() => out.push_str(&format!(
                            "  writes held: {p} ms; reads through the coordinator held too, on {}\n",
                            rels.join(", ")
                        )),
                        _ => out.push_str(&format!("  writes held: {p} ms\n")),
                    }
                }
                if let Some(w) = self.result.writable_after_ms {
                    out.push_str(&format!("  new leader writable after: {w} ms\n"));
                }
                for r in &self.result.rows_changed {
                    out.push_str(&format!("  {r}\n"));
                }
            }
            Outcome::Planned => out.push_str(&format!(
                "planned: {} -> {}; nothing done\n",
                self.result.old_leader,
                self.result.new_leader.as_deref().unwrap_or("?")
            )),
            other => out.push_str(&format!("{}\n", other.as_str())),
        }
        if let Some(p) = &self.result.patroni {
            out.push_str(&format!("  Patroni: {p}\n"));
        }
        if let Some(e) = &self.result.error {
            out.push_str(&format!("  {e}\n"));
        }
        out.push_str(&format!("  total: {} ms\n", self.total_ms));
        out
    }
    fn tsv(&self) -> String {
        format!(
            "scope\told_leader\tnew_leader\toutcome\tpaused_ms\n{}\t{}\t{}\t{}\t{}\n",
            self.scope,
            self.result.old_leader,
            self.result.new_leader.as_deref().unwrap_or(""),
            self.result.outcome.as_str(),
            self.result
                .paused_ms
                .map(|p| p.to_string())
                .unwrap_or_default()
        )
    }
}
