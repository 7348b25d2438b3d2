//! `citusctl history [SCOPE...]`: the failover/switchover history of every group (Patroni's
//! `GET /history`), as patronictl prints it, with the group in front. Changes nothing.

use serde::Serialize;

use crate::context::Context;
use crate::exit::Exit;
use crate::output::{self, Format, Render, Table, tsv_field};

/// Show every group's timeline history.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these groups; all when none is given.
    pub scopes: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryReport {
    pub format_version: u32,
    pub cluster: String,
    pub entries: Vec<Entry>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub scope: String,
    pub group: i32,
    pub timeline: i64,
    pub lsn: i64,
    pub reason: String,
    pub timestamp: Option<String>,
    pub new_leader: Option<String>,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    ctx.check_scopes(&args.scopes)?;
    let client = ctx.patroni_reader()?;
    let groups: Vec<_> = ctx
        .topo
        .groups
        .iter()
        .filter(|g| args.scopes.is_empty() || args.scopes.contains(&g.scope))
        .collect();
    let answers = futures::future::join_all(groups.iter().map(|g| {
        let client = &client;
        async move {
            let mut last = None;
            for m in &g.members {
                match client.history(&m.api).await {
                    Ok(h) => return (g, Ok(h)),
                    Err(e) => last = Some(format!("{}: {e}", m.name)),
                }
            }
            (g, Err(last.unwrap_or_default()))
        }
    }))
    .await;
    let mut report = HistoryReport {
        format_version: crate::status::FORMAT_VERSION,
        cluster: ctx.topo.name.clone(),
        entries: vec![],
        errors: vec![],
    };
    for (g, a) in answers {
        match a {
            Ok(rows) => {
                for r in rows {
                    let a = r.as_array().cloned().unwrap_or_default();
                    report.entries.push(Entry {
                        scope: g.scope.clone(),
                        group: g.group_id,
                        timeline: a.first().and_then(|v| v.as_i64()).unwrap_or(0),
                        lsn: a.get(1).and_then(|v| v.as_i64()).unwrap_or(0),
                        reason: a.get(2).and_then(|v| v.as_str()).unwrap_or("").to_owned(),
                        timestamp: a.get(3).and_then(|v| v.as_str()).map(str::to_owned),
                        new_leader: a.get(4).and_then(|v| v.as_str()).map(str::to_owned),
                    });
                }
            }
            Err(e) => report.errors.push(format!("{}: {e}", g.scope)),
        }
    }
    output::print(&output::render(&report, args.format))?;
    Ok(if report.errors.is_empty() {
        Exit::Ok
    } else {
        Exit::No
    })
}

fn lsn(v: i64) -> String {
    format!("{:X}/{:X}", (v as u64) >> 32, (v as u64) & 0xFFFF_FFFF)
}

impl Render for HistoryReport {
    fn pretty(&self) -> String {
        let mut t = Table::new(
            format!("Citus cluster: {} history", self.cluster),
            &[
                "Group",
                "Scope",
                "TL",
                "LSN",
                "Reason",
                "Timestamp",
                "New Leader",
            ],
        );
        t.right_align(&[0, 2, 3]);
        for e in &self.entries {
            t.row(vec![
                e.group.to_string(),
                e.scope.clone(),
                e.timeline.to_string(),
                lsn(e.lsn),
                e.reason.clone(),
                e.timestamp.clone().unwrap_or_default(),
                e.new_leader.clone().unwrap_or_default(),
            ]);
        }
        let mut out = t.render();
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        out
    }
    fn tsv(&self) -> String {
        let mut out = String::from("Group\tScope\tTL\tLSN\tReason\tTimestamp\tNew Leader\n");
        for e in &self.entries {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                e.group,
                e.scope,
                e.timeline,
                lsn(e.lsn),
                tsv_field(&e.reason),
                e.timestamp.clone().unwrap_or_default(),
                e.new_leader.clone().unwrap_or_default()
            ));
        }
        out
    }
}
