//! Build facts for `citusctl --version` (src/version.rs): the git commit and the oldest glibc
//! the binary runs on.
//!
//! - CITUSCTL_COMMIT: `git rev-parse --short=12 HEAD`, `-dirty` when tracked files differ from
//!   it; from `.cargo_vcs_info.json` in a crates.io tarball; else `unknown`.
//! - CITUSCTL_LIBC: `glibc >= $CITUSCTL_GLIBC` when the build sets it (scripts/dist.sh links
//!   against glibc 2.17 with cargo-zigbuild and says so); else, for a native glibc build, the
//!   build host's glibc, which such a binary may need; `no glibc` for other targets.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rustc-env=CITUSCTL_COMMIT={}", commit());
    println!("cargo:rustc-env=CITUSCTL_LIBC={}", libc());
    println!("cargo:rerun-if-env-changed=CITUSCTL_GLIBC");
    // The commit is read again when HEAD moves or the sources change (for `-dirty`); cargo
    // reruns a build script whose watched path is missing every time, so only existing ones.
    for path in [
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "src",
        ".cargo_vcs_info.json",
    ] {
        watch(path);
    }
    for git_path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", git_path]) {
            watch(&p);
        }
    }
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &head_ref])
    {
        watch(&p);
    }
}

fn watch(path: &str) {
    if Path::new(path).exists() {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn commit() -> String {
    if let Some(hash) = git(&["rev-parse", "--short=12", "HEAD"]) {
        let dirty = Command::new("git")
            // Porcelain `git diff` refreshes stale stat data first (plumbing `diff-index` would
            // call a freshly checked-out file modified).
            .args(["diff", "--quiet", "HEAD", "--"])
            .status()
            .map(|s| !s.success())
            .unwrap_or(false);
        return if dirty { format!("{hash}-dirty") } else { hash };
    }
    // `cargo package` records the commit it was made from.
    if let Ok(info) = std::fs::read_to_string(".cargo_vcs_info.json")
        && let Some(rest) = info.split("\"sha1\"").nth(1)
        && let Some(sha) = rest.split('"').nth(1)
    {
        return sha.chars().take(12).collect();
    }
    "unknown".into()
}

fn libc() -> String {
    if let Ok(v) = std::env::var("CITUSCTL_GLIBC")
        && !v.is_empty()
    {
        return format!("glibc >= {v}");
    }
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    if target_env != "gnu" {
        return "no glibc".into();
    }
    // `getconf GNU_LIBC_VERSION` prints e.g. `glibc 2.36`.
    if native
        && let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output()
        && let Some(v) = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
    {
        return format!("glibc >= {v}");
    }
    "glibc unknown".into()
}
