//! The command line: global options, the subcommands, and the one dispatch `match`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::exit::EXIT_CODES_HELP;

/// Operate a Citus cluster whose coordinator and worker groups are Patroni clusters:
/// patronictl for the whole Citus cluster.
///
/// One inventory file describes the cluster. citusctl reads every member's Patroni REST API
/// and the coordinator leader's pg_dist_node, and tells you whether they agree.
#[derive(Debug, Parser)]
#[command(
    name = "citusctl",
    version,
    long_version = crate::version::LONG_VERSION,
    propagate_version = true,
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// Inventory file [default: $CITUSCTL_INVENTORY, ./citusctl.yml, ~/.config/citusctl/inventory.yml]
    #[arg(short, long, global = true, value_name = "FILE")]
    pub inventory: Option<PathBuf>,

    /// More detail on stderr (-v: info, -vv: debug). Also: CITUSCTL_LOG=debug.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    List(commands::list::Args),
    Resync(commands::resync::Args),
    AddWorker(commands::add_worker::Args),
    RemoveWorker(commands::remove_worker::Args),
    Rebalance(commands::rebalance::Args),
    Switchover(commands::switchover::Args),
    Failover(commands::failover::Args),
    Restart(commands::restart::Args),
    Reload(commands::reload::Args),
    /// Put groups into Patroni's maintenance mode (no automatic failover).
    Pause(commands::maintenance::Args),
    /// Take groups out of Patroni's maintenance mode.
    Resume(commands::maintenance::Args),
    History(commands::history::Args),
    Check(commands::check::Args),
    ShowConfig(commands::show_config::Args),
    Version(commands::version::Args),
    Completions(commands::completions::Args),
    #[command(hide = true)]
    GenerateAssets(commands::generate_assets::Args),
}
