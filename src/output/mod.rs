//! stdout is the result; this module is the only place that writes it.
//!
//! Every command builds a `Serialize` report; [`render`] turns it into a patronictl-style table,
//! JSON, YAML or TSV. Machine formats come from the report, never from the table.

mod table;

use std::io::Write;

use serde::Serialize;

pub use table::Table;

/// Output format, as patronictl's `-f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// Tables for people.
    #[default]
    Pretty,
    /// One JSON document (with `format_version`).
    Json,
    /// The same document as YAML.
    Yaml,
    /// Tab-separated values, one line per row, with a header line.
    Tsv,
}

/// A report that can be shown to people as well as to programs.
pub trait Render: Serialize {
    fn pretty(&self) -> String;
    fn tsv(&self) -> String;
}

pub fn render<R: Render>(report: &R, format: Format) -> String {
    match format {
        Format::Pretty => report.pretty(),
        Format::Tsv => report.tsv(),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).expect("reports serialize");
            s.push('\n');
            s
        }
        Format::Yaml => serde_saphyr::to_string(report).expect("reports serialize"),
    }
}

/// Write the result to stdout. A closed pipe (`citusctl list | head`) is not an error.
#[allow(clippy::print_stdout)]
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Clear the terminal before a watch-mode redraw.
pub fn clear_screen() -> std::io::Result<()> {
    print("\x1b[H\x1b[2J")
}

/// A TSV field: tabs and newlines would break the format.
pub fn tsv_field(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}
