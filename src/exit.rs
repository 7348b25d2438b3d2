//! Exit codes: the one place that decides them. Documented in the README and man pages.

use std::process::ExitCode;

/// What a command concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything is as it should be; the change was made.
    Ok = 0,
    /// The answer is no: the cluster is degraded, metadata disagrees with Patroni, a check failed.
    No = 1,
    /// Usage or inventory error, or an error inside citusctl.
    Error = 2,
    /// No member of the cluster could be reached.
    Unreachable = 3,
    /// A change was refused: by Patroni, or because the cluster is in a dangerous state.
    Refused = 4,
    /// Interrupted (Ctrl-C) before the end.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A write to the cluster that failed and rolled back: refused (4) when another citusctl
    /// holds the writer lock or the rows changed since the plan (look again), else the change
    /// simply did not happen (1).
    pub fn for_write_error(e: &crate::pg::PgError) -> Exit {
        match e.sqlstate() {
            Some(crate::apply::BUSY | crate::apply::FENCED) => Exit::Refused,
            _ => Exit::No,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The exit-code table, as the man page and `--help` print it.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0    success: healthy, in agreement, or the change was made
  1    the answer is no: degraded cluster, stale pg_dist_node, failed check
  2    usage or inventory error (or an internal error)
  3    cluster unreachable: no member answered
  4    refused: by Patroni, or the cluster is in a dangerous state
  130  interrupted";
