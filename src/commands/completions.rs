//! `citusctl completions SHELL`: print a shell completion script. Changes nothing.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::exit::Exit;

/// Print the shell completion script for SHELL to stdout.
///
/// bash: `citusctl completions bash > /etc/bash_completion.d/citusctl`;
/// zsh: `citusctl completions zsh > "${fpath[1]}/_citusctl"`;
/// fish: `citusctl completions fish > ~/.config/fish/completions/citusctl.fish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    pub shell: Shell,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "citusctl", &mut buf);
    crate::output::print(&String::from_utf8_lossy(&buf))?;
    Ok(Exit::Ok)
}
