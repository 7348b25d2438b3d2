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
    let mut field = String::new();
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, raw::RawInventory>(de).map_err(|e| {
            // Spanned<T> shows up as a `.value` step; `?` is serde's "no path".
            field = e.path().to_string().replace(".value", "").replace('?', "");
            e.into_inner()
        })
    });
    let raw = parsed.map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        InventoryError {
            file: path.to_owned(),
            line,
            column,
            field: if field == "." {
                String::new()
            } else {
                field.clone()
            },
            message: yaml_message(&e),
            hint: None,
        }
    })?;
    validate(path, raw)
}

/// serde-saphyr's message, without its own position prefix (reported separately) and without
/// any quoted source text (which could hold a secret).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let mut msg = full.lines().next().unwrap_or("invalid YAML").trim();
    {
        let prefix = "error: ";
        msg = msg.strip_prefix(prefix).unwrap_or(msg);
    }
    if let Some(rest) = msg.strip_prefix("line ") {
        // "line 3 column 9: invalid u16"
        if let Some((_, tail)) = rest.split_once(": ") {
            msg = tail;
        }
    }
    let msg = msg.split(", set DuplicateKeyPolicy").next().unwrap_or(msg);
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    match msg {
        "invalid u16" => "expected a port number from 1 to 65535".to_owned(),
        m if m.starts_with("invalid i64") || m.starts_with("invalid i32") => {
            "expected a whole number".to_owned()
        }
        m => m.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Endpoint, GroupKind};

    #[test]
    fn the_documented_example_parses_into_the_model() {
        let path = Path::new("tests/inventory/valid/example.yml");
        let text = std::fs::read_to_string(path).unwrap();
        let t = parse(path, &text).unwrap();
        assert_eq!(t.name, "prod");
        assert_eq!(t.databases, vec!["postgres"]);
        assert_eq!(t.scopes(), vec!["cn", "wk1", "wk2"]);
        let cn = t.coordinator();
        assert_eq!((cn.group_id, cn.kind), (0, GroupKind::Coordinator));
        assert_eq!(
            cn.vip.as_ref().unwrap().ro,
            Some(Endpoint::new("10.10.10.141", 5432))
        );
        let wk1 = t.group_by_scope("wk1").unwrap();
        assert_eq!(wk1.group_id, 1);
        let pg4 = wk1.member("pg4").unwrap();
        assert_eq!(pg4.pg, Endpoint::new("10.10.10.133", 5433));
        assert_eq!(pg4.api.as_str(), "https://10.10.10.133:8009/");
        assert_eq!(
            wk1.member("pg3").unwrap().api.as_str(),
            "http://10.10.10.132:8008/"
        );
        assert!(t.group_by_scope("wk2").unwrap().vip.is_none());
        assert_eq!(t.patroni.timeout, std::time::Duration::from_secs(2));
        assert_eq!(t.patroni.username.as_deref(), Some("patroni"));
    }

    #[test]
    fn single_database_string_and_host_port_vips() {
        let text = "name: x\ndatabases: app\ncoordinator:\n  scope: cn\n  vip: { rw: '[::1]:6432', ro: '[::1]:6433' }\n  members: [{ name: a, host: '::1', port: 5433 }]\n";
        let t = parse(Path::new("x.yml"), text).unwrap();
        assert_eq!(t.databases, vec!["app"]);
        let v = t.coordinator().vip.clone().unwrap();
        assert_eq!(v.rw.to_string(), "[::1]:6432");
        assert_eq!(
            t.coordinator().members[0].api.as_str(),
            "http://[::1]:8008/"
        );
    }
}
