//! One file per subcommand: its clap `Args` and its `run`.

pub mod add_worker;
pub mod check;
pub mod completions;
pub mod failover;
pub mod generate_assets;
mod groups;
pub mod history;
pub mod list;
pub mod maintenance;
mod metadata_report;
pub mod rebalance;
pub mod reload;
pub mod remove_worker;
pub mod restart;
pub mod resync;
mod resync_watch;
pub mod show_config;
pub mod switchover;
mod switchover_report;
pub mod version;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::exit::Exit;

pub async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let ctx = || Context::load(cli.inventory.as_deref());
    match cli.command {
        Command::List(args) => list::run(ctx()?, args).await,
        Command::Resync(args) => resync::run(ctx()?, args).await,
        Command::AddWorker(args) => add_worker::run(ctx()?, args).await,
        Command::RemoveWorker(args) => remove_worker::run(ctx()?, args).await,
        Command::Rebalance(args) => rebalance::run(ctx()?, args).await,
        Command::Switchover(args) => switchover::run(ctx()?, args).await,
        Command::Failover(args) => failover::run(ctx()?, args).await,
        Command::Restart(args) => restart::run(ctx()?, args).await,
        Command::Reload(args) => reload::run(ctx()?, args).await,
        Command::Pause(args) => maintenance::run(ctx()?, args, true).await,
        Command::Resume(args) => maintenance::run(ctx()?, args, false).await,
        Command::History(args) => history::run(ctx()?, args).await,
        Command::Check(args) => check::run(ctx()?, args).await,
        Command::ShowConfig(args) => show_config::run(ctx()?, args).await,
        // Without any inventory to find, citusctl's own version is still an answer.
        Command::Version(args) => match crate::inventory::locate(cli.inventory.as_deref()) {
            Ok(_) => version::run(Some(ctx()?), args).await,
            Err(_) => version::run(None, args).await,
        },
        Command::Completions(args) => completions::run(args),
        Command::GenerateAssets(args) => generate_assets::run(args),
    }
}
