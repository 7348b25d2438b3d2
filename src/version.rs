//! The one version line: `citusctl --version` prints it (clap's `long_version`); a command that
//! reports the version shows [`version_line`]. The commit and the glibc come from build.rs.

/// What `--version` shows after the name: version, git commit, and the oldest glibc the binary
/// runs on (`no glibc` for a target without it).
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CITUSCTL_COMMIT"),
    ", ",
    env!("CITUSCTL_LIBC"),
    ")"
);

/// `citusctl 0.1.0 (commit 0123456789ab, glibc >= 2.17)`.
pub fn version_line() -> String {
    format!("citusctl {LONG_VERSION}")
}
