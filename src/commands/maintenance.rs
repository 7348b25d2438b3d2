//! `citusctl pause|resume SCOPE...|--all`: Patroni's maintenance mode for whole groups
//! (`PATCH /config {"pause": true|false}`), then waits until `/cluster` shows it.
//! While paused, Patroni does not fail over or restart PostgreSQL on its own.

use std::time::{Duration, Instant};

use super::groups::{ActionReport, Selection, confirm};
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{self, Format};
use crate::patroni::PatroniClient;
use crate::topology::Group;

/// Put groups into (or take them out of) Patroni's maintenance mode.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub groups: Selection,
    /// Do not ask.
    #[arg(short = 'y', long, alias = "force")]
    pub yes: bool,
    /// Do not wait until every member reports the new mode.
    #[arg(long)]
    pub no_wait: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

pub async fn run(ctx: Context, args: Args, pause: bool) -> anyhow::Result<Exit> {
    let groups = args.groups.resolve(&ctx.topo)?;
    let client = ctx.patroni_writer()?;
    let verb = if pause { "pause" } else { "resume" };
    let names: Vec<&str> = groups.iter().map(|g| g.scope.as_str()).collect();
    let what = if pause {
        "Put {} into maintenance mode (no automatic failover)?"
    } else {
        "Take {} out of maintenance mode?"
    };
    if !confirm(args.yes, what.replace("{}", &names.join(", "))).await? {
        return Ok(Exit::No);
    }
    let mut report = ActionReport::new(verb);
    let spinner = crate::ui::wants_spinner(args.format == Format::Pretty);
    for g in groups {
        let _spinner = crate::ui::Spinner::start(
            spinner,
            &format!(
                "{} {}: waiting until every member shows it",
                if pause { "pausing" } else { "resuming" },
                g.scope
            ),
        );
        let (member, r) = set_pause(&client, g, pause, !args.no_wait).await;
        report.push(&g.scope, &member, r);
    }
    output::print(&output::render(&report, args.format))?;
    Ok(report.exit())
}

async fn set_pause(
    client: &PatroniClient,
    g: &Group,
    pause: bool,
    wait: bool,
) -> (String, Result<(u16, String), String>) {
    let body = serde_json::json!({ "pause": pause });
    let mut last = String::from("no member answers");
    for m in &g.members {
        match client
            .send(
                reqwest::Method::PATCH,
                &m.api,
                "config",
                Some(&body),
                Duration::from_secs(10),
            )
            .await
        {
            Ok((200, _)) => {
                if !wait {
                    return (
                        m.name.clone(),
                        Ok((
                            200,
                            format!("{} requested", if pause { "pause" } else { "resume" }),
                        )),
                    );
                }
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if let Ok(doc) = client.cluster(&m.api).await
                        && doc.pause == pause
                    {
                        let msg = if pause {
                            "maintenance mode on"
                        } else {
                            "maintenance mode off"
                        };
                        return (m.name.clone(), Ok((200, msg.into())));
                    }
                    if Instant::now() > deadline {
                        return (
                            m.name.clone(),
                            Err(
                                "Patroni accepted it, but /cluster does not show it after 30 s"
                                    .into(),
                            ),
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Ok((code, text)) => return (m.name.clone(), Ok((code, text))),
            Err(e) => last = format!("{}: {e}", m.name),
        }
    }
    ("-".into(), Err(last))
}
