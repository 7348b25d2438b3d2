//! `citusctl reload SCOPE...|--all`: Patroni's `POST /reload` on every member (PostgreSQL
//! re-reads its configuration). Changes: configuration reload only; no restart.

use std::time::Duration;

use super::groups::{ActionReport, Selection, confirm};
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{self, Format};

/// Reload the configuration of every member of the chosen groups.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub groups: Selection,
    /// Do not ask.
    #[arg(short = 'y', long, alias = "force")]
    pub yes: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    let groups = args.groups.resolve(&ctx.topo)?;
    let client = ctx.patroni_writer()?;
    let names: Vec<&str> = groups.iter().map(|g| g.scope.as_str()).collect();
    if !confirm(
        args.yes,
        format!("Reload the configuration of {}?", names.join(", ")),
    )
    .await?
    {
        return Ok(Exit::No);
    }
    let mut report = ActionReport::new("reload");
    let calls = groups
        .iter()
        .flat_map(|g| g.members.iter().map(move |m| (g, m)));
    let results = futures::future::join_all(calls.map(|(g, m)| {
        let client = &client;
        async move {
            let r = client
                .send(
                    reqwest::Method::POST,
                    &m.api,
                    "reload",
                    None,
                    Duration::from_secs(10),
                )
                .await
                .map_err(|e| e.to_string());
            (g.scope.clone(), m.name.clone(), r)
        }
    }))
    .await;
    for (scope, member, r) in results {
        report.push(&scope, &member, r);
    }
    output::print(&output::render(&report, args.format))?;
    Ok(report.exit())
}
