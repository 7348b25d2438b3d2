//! citusctl: patronictl for Citus clusters whose groups are separate Patroni clusters.
//!
//! Shape (see README, "Architecture"): `inventory` (raw YAML -> validated `topology`),
//! `patroni` and `pg`/`citus` (thin edges), `observe` (concurrent gathering), `health` and
//! `verdict` (pure interpretation), `status` (the report), `output` (the only stdout writer),
//! `commands` (one file per subcommand), `exit` (exit codes).

pub mod addresses;
pub mod apply;
pub mod citus;
pub mod cli;
pub mod commands;
pub mod config_diff;
pub mod context;
pub mod doctor;
pub mod exit;
pub mod health;
pub mod inventory;
pub mod member_sql;
pub mod metrics;
pub mod observe;
pub mod ops;
pub mod output;
pub mod patroni;
pub mod pause;
pub mod pg;
pub mod plan;
pub mod secret;
pub mod status;
pub mod systemd;
pub mod topology;
pub mod ui;
pub mod verdict;
pub mod version;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;
use exit::Exit;

/// A mistake on the command line that clap cannot see (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parse, run on one current-thread runtime, map the outcome to an exit code.
pub fn main_entry() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report_error(&anyhow::anyhow!(e).context("cannot start the runtime")).into();
        }
    };
    let outcome = rt.block_on(commands::dispatch(cli));
    // Do not wait for connection tasks stuck on a hung socket.
    rt.shutdown_background();
    match outcome {
        Ok(exit) => exit.into(),
        Err(e) => report_error(&e).into(),
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("CITUSCTL_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("citusctl={default},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
}

/// `error: ...`, then `Caused by:` lines and a hint; returns the exit code for the error.
#[allow(clippy::print_stderr)]
fn report_error(e: &anyhow::Error) -> Exit {
    let inv = e.downcast_ref::<inventory::InventoryError>();
    eprintln!("error: {e}");
    let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
    if !causes.is_empty() {
        eprintln!("\nCaused by:");
        for c in causes {
            eprintln!("    {c}");
        }
    }
    if let Some(hint) = inv.and_then(|i| i.hint.as_ref()) {
        eprintln!("\nhint: {hint}");
    }
    // Usage and inventory errors, and anything unexpected, share exit status 2; outcomes that
    // mean "no", "unreachable" or "refused" are returned by the commands, not raised.
    Exit::Error
}
