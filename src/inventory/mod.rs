//! Finding, reading and validating the inventory file.
//!
//! Lookup order: `-i/--inventory FILE`, `$CITUSCTL_INVENTORY`, `./citusctl.yml`,
//! `$XDG_CONFIG_HOME/citusctl/inventory.yml` (`~/.config/citusctl/inventory.yml`).
//! Every error names the file, the line and column, and the field at fault.

mod raw;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::topology::Topology;

pub use validate::validate;

/// A mistake in the inventory, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub file: PathBuf,
    /// 1-based; 0 when the position is unknown (file-level errors).
    pub line: u64,
    pub column: u64,
    /// Dotted path of the field, e.g. `workers[1].vip.ro`; empty for file-level errors.
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InventoryError {}

/// Where the inventory was looked for, and why it was chosen.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, InventoryError> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    if let Some(p) = std::env::var_os("CITUSCTL_INVENTORY").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let local = PathBuf::from("citusctl.yml");
    if local.exists() {
        return Ok(local);
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = xdg {
        let p = dir.join("citusctl").join("inventory.yml");
        if p.exists() {
            return Ok(p);
        }
    }
    Err(InventoryError {
        file: PathBuf::from("citusctl.yml"),
        line: 0,
        column: 0,
        field: String::new(),
        message: "no inventory file found".into(),
        hint: Some(
            "pass -i FILE, set CITUSCTL_INVENTORY, or create ./citusctl.yml or \
             ~/.config/citusctl/inventory.yml (see `citusctl help inventory` in the README)"
                .into(),
        ),
    })
}

/// Read and validate the inventory at `path`.
pub fn load(path: &Path) -> Result<Topology, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| InventoryError {
        file: path.to_owned(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the inventory: {e}"),
        hint: None,
    })?;
    parse(path, &text)
}

/// Validate inventory text as if it came from `path` (used by tests and by `load`).
pub fn parse(path: &Path, text: &str) -> Result<Topology, InventoryError> {
    let raw: raw::RawInventory = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        InventoryError {
            file: path.to_owned(),
            line,
            column,
            field: String::new(),
            message: yaml_message(&e),
            hint: None,
        }
    })?;
    validate(path, raw)
}

/// serde-saphyr's Display can quote the offending source line; that line may hold a secret,
/// so only the first line of the message is kept and the position is reported separately.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("invalid YAML").trim();
    let first = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    first.trim_end_matches(':').to_string()
}
