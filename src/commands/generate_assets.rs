//! `citusctl generate-assets DIR` (hidden): write completions and man pages from the clap
//! definition into DIR/completions and DIR/man. The committed copies are checked by a test.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Project root to write completions/ and man/ under.
    pub dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    for (name, content) in assets()? {
        let path = args.dir.join(&name);
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Exit::Ok)
}

/// Every generated file, as (relative path, content).
pub fn assets() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "citusctl.bash"),
        (Shell::Zsh, "_citusctl"),
        (Shell::Fish, "citusctl.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "citusctl", &mut buf);
        out.push((format!("completions/{file}"), buf));
    }
    // The short version only: the long one names the commit, which would make every commit stale.
    let cmd = Cli::command().long_version(None);
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    out.push(("man/citusctl.1".into(), buf));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name: &'static str = Box::leak(format!("citusctl-{}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).bin_name(name);
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub).render(&mut buf)?;
        out.push((format!("man/{name}.1"), buf));
    }
    Ok(out)
}
