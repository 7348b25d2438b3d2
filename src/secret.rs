//! Secrets: where they come from, and a value type that never prints itself.
//!
//! A [`Secret`] has no `Display`, and its `Debug` is `"<redacted>"`, so neither `{}` nor `{:?}`
//! nor an error chain can leak it. Errors name the *source* (env var, file), never the value.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a password comes from, as the inventory says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    /// Written in the inventory itself (allowed only when the file is private to its owner).
    Inline(Secret),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set (it should hold the password)")]
    EnvMissing(String),
    #[error(
        "password file {} can be read by others (mode {mode:o}): refused, as libpq refuses such a ~/.pgpass; chmod 600 it",
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot read password file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SecretSource {
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Env(name) => std::env::var(name)
                .map(Secret)
                .map_err(|_| SecretError::EnvMissing(name.clone())),
            SecretSource::File(path) => read_secret_file(path),
            SecretSource::Inline(s) => Ok(s.clone()),
        }
    }

    /// What to call it in messages: never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(name) => format!("${name}"),
            SecretSource::File(path) => path.display().to_string(),
            SecretSource::Inline(_) => "the inventory's inline password".into(),
        }
    }
}

fn read_secret_file(path: &Path) -> Result<Secret, SecretError> {
    if readable_by_others(path) {
        return Err(SecretError::Exposed {
            path: path.to_owned(),
            mode: file_mode(path),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
        path: path.to_owned(),
        source,
    })?;
    Ok(Secret(text.trim_end_matches(['\n', '\r']).to_owned()))
}

/// True when a file can be read by its group or by others (as libpq checks `~/.pgpass`).
#[cfg(unix)]
pub fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
pub fn readable_by_others(_path: &Path) -> bool {
    false
}

#[cfg(unix)]
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0)
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> u32 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_password_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("citusctl-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "hunter2\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretSource::File(f.clone())
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("can be read by others (mode 644)"), "{err}");
        assert!(!err.contains("hunter2"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(SecretSource::File(f).resolve().unwrap().expose(), "hunter2");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let src = SecretSource::Inline(s);
        assert!(!format!("{src:?}").contains("hunter2"));
        assert!(!src.describe().contains("hunter2"));
    }
}
