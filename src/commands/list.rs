//! `citusctl list [SCOPE...]`: every group and member, and whether `pg_dist_node` agrees.
//!
//! Changes nothing. Reads every member's `GET /cluster` concurrently, then the coordinator
//! leader's `pg_dist_node` in every inventory database. Exit status: 0 when every shown group
//! is healthy and every row `ok`; 1 when anything is degraded or disagrees; 3 when no member
//! answered at all.

use std::time::Duration;

use anyhow::bail;

use crate::context::Context;
use crate::exit::Exit;
use crate::observe::observe;
use crate::output::{self, Format};
use crate::status::{self, StatusReport};

/// Show every group and member, and whether pg_dist_node agrees with Patroni.
///
/// The pg_dist_node column says, for the rows pointing at a member (or that should), `ok`,
/// `stale` (points at a member that is not what its role calls for), `missing`, `unexpected`
/// (an address the inventory does not expect), `inactive` or `unknown` (no single leader).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these groups (Patroni scopes); all when none is given.
    pub scopes: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,

    /// Redraw every 2 seconds until interrupted.
    #[arg(short = 'W', conflicts_with = "watch")]
    pub watch_default: bool,

    /// Redraw every SECONDS until interrupted.
    #[arg(short = 'w', long, value_name = "SECONDS")]
    pub watch: Option<f64>,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    ctx.check_scopes(&args.scopes)?;
    let interval = match (args.watch, args.watch_default) {
        (Some(s), _) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s.max(0.1))),
        (Some(_), _) => bail!(crate::UsageError(
            "--watch needs a positive number of seconds".into()
        )),
        (None, true) => Some(Duration::from_secs(2)),
        (None, false) => None,
    };
    let client = ctx.patroni_reader()?;
    let pg = ctx.pg_params()?;

    let Some(interval) = interval else {
        let report = status::build(
            &ctx.topo,
            &observe(&ctx.topo, &client, &pg).await,
            &args.scopes,
        );
        output::print(&output::render(&report, args.format))?;
        return Ok(exit_for(&report));
    };

    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let report = status::build(
            &ctx.topo,
            &observe(&ctx.topo, &client, &pg).await,
            &args.scopes,
        );
        let text = output::render(&report, args.format);
        if on_terminal && args.format == Format::Pretty {
            output::clear_screen()?;
            output::print(&format!(
                "{}\n",
                humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            ))?;
        }
        output::print(&text)?;
        if !on_terminal {
            output::print("\n")?;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit_for(&report)),
        }
    }
}

pub fn exit_for(report: &StatusReport) -> Exit {
    if report.unreachable {
        Exit::Unreachable
    } else if report.ok {
        Exit::Ok
    } else {
        Exit::No
    }
}
