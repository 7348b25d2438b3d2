//! One file per subcommand: its clap `Args` and its `run`.

pub mod add_worker;
pub mod completions;
pub mod generate_assets;
pub mod list;
pub mod resync;
mod resync_watch;
pub mod switchover;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::exit::Exit;

pub async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let ctx = || Context::load(cli.inventory.as_deref());
    match cli.command {
        Command::List(args) => list::run(ctx()?, args).await,
        Command::Resync(args) => resync::run(ctx()?, args).await,
        Command::AddWorker(args) => add_worker::run(ctx()?, args).await,
        Command::Switchover(args) => switchover::run(ctx()?, args).await,
        Command::Completions(args) => completions::run(args),
        Command::GenerateAssets(args) => generate_assets::run(args),
    }
}
