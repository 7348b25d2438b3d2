//! `citusctl show-config [SCOPE...] [--diff]`: each scope's Patroni dynamic configuration
//! (`GET /config`, as `patronictl show-config` shows one scope's), and with `--diff` only the
//! keys on which separately configured worker scopes differ. Changes nothing.

use serde::Serialize;

use crate::config_diff::{self, KeyDiff};
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{self, Format, Render, Table, tsv_field};
use crate::topology::GroupKind;

/// Show each scope's Patroni dynamic configuration, or where worker scopes differ.
///
/// Each scope's configuration comes from the first of its members that answers GET /config
/// (it is the same on every member: Patroni keeps it in the DCS). With --diff, only the keys
/// whose values differ between the worker scopes, as flat dotted keys (e.g.
/// postgresql.parameters.max_connections) with each scope's value; a key a scope lacks is
/// shown as absent. A string and a number with the same text ("100" and 100) are the same
/// value, as they are to Patroni. Exit status 0, 1 when some scope did not answer, 3 when none
/// did.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these groups (Patroni scopes); all when none is given. With --diff, the scopes
    /// named are compared whatever their kind (the coordinator too).
    pub scopes: Vec<String>,

    /// Only the keys that differ between the worker scopes (or between the scopes named).
    #[arg(long)]
    pub diff: bool,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub format_version: u32,
    pub cluster: String,
    pub scopes: Vec<ScopeEntry>,
    /// With --diff: the scopes compared and the keys on which they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScopeEntry {
    pub scope: String,
    pub group: i32,
    pub kind: GroupKind,
    /// The member that answered.
    pub member: Option<String>,
    /// Patroni's dynamic configuration; absent with --diff (see `diff`) or when no member
    /// answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// The scopes compared (those that answered).
    pub compared: Vec<String>,
    pub keys: Vec<KeyDiff>,
}

pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Exit> {
    ctx.check_scopes(&args.scopes)?;
    let client = ctx.patroni_reader()?;
    let configs = crate::ops::dynamic_config::scope_configs(&ctx.topo, &client, &args.scopes).await;
    let answered = configs.iter().filter(|c| c.config.is_ok()).count();
    let diff = args.diff.then(|| {
        let flat: Vec<(&str, _)> = configs
            .iter()
            .filter(|c| !args.scopes.is_empty() || c.kind == GroupKind::Worker)
            .filter_map(|c| {
                c.config
                    .as_ref()
                    .ok()
                    .map(|v| (c.scope.as_str(), config_diff::flatten(v)))
            })
            .collect();
        let refs: Vec<(&str, &_)> = flat.iter().map(|(s, m)| (*s, m)).collect();
        DiffReport {
            compared: flat.iter().map(|(s, _)| (*s).to_owned()).collect(),
            keys: config_diff::diff(&refs),
        }
    });
    let report = ConfigReport {
        format_version: crate::status::FORMAT_VERSION,
        cluster: ctx.topo.name.clone(),
        scopes: configs
            .into_iter()
            .map(|c| {
                let (config, error) = match c.config {
                    Ok(v) => ((!args.diff).then_some(v), None),
                    Err(e) => (None, Some(e)),
                };
                ScopeEntry {
                    scope: c.scope,
                    group: c.group,
                    kind: c.kind,
                    member: c.member,
                    config,
                    error,
                }
            })
            .collect(),
        diff,
    };
    output::print(&output::render(&report, args.format))?;
    Ok(if answered == 0 {
        Exit::Unreachable
    } else if answered < report.scopes.len() {
        Exit::No
    } else {
        Exit::Ok
    })
}

fn kind(k: GroupKind) -> &'static str {
    match k {
        GroupKind::Coordinator => "coordinator",
        GroupKind::Worker => "worker",
    }
}

impl ConfigReport {
    fn errors(&self) -> String {
        self.scopes
            .iter()
            .filter_map(|s| {
                s.error
                    .as_ref()
                    .map(|e| format!("error: {}: {e}\n", s.scope))
            })
            .collect()
    }
}

impl Render for ConfigReport {
    fn pretty(&self) -> String {
        let mut out = String::new();
        match &self.diff {
            None => {
                for s in &self.scopes {
                    let Some(config) = &s.config else { continue };
                    out.push_str(&format!(
                        "# {} ({} group {}, from {})\n",
                        s.scope,
                        kind(s.kind),
                        s.group,
                        s.member.as_deref().unwrap_or("-")
                    ));
                    out.push_str(&serde_saphyr::to_string(config).expect("JSON values serialize"));
                    out.push('\n');
                }
            }
            Some(d) if d.keys.is_empty() => {
                out.push_str(&match d.compared.len() {
                    0 | 1 => format!(
                        "Nothing to compare: {} scope(s) answered ({}).\n",
                        d.compared.len(),
                        d.compared.join(", ")
                    ),
                    n if n <= 6 => {
                        format!("No differences between {}.\n", d.compared.join(", "))
                    }
                    n => format!(
                        "No differences between the {n} scopes ({} ... {}).\n",
                        d.compared[0],
                        d.compared[n - 1]
                    ),
                });
            }
            Some(d) => {
                let mut headers = vec!["Key"];
                headers.extend(d.compared.iter().map(String::as_str));
                let mut t = Table::new(format!("Citus cluster: {}", self.cluster), &headers);
                for k in &d.keys {
                    let mut row = vec![k.key.clone()];
                    row.extend(
                        k.values
                            .iter()
                            .map(|v| v.value.clone().unwrap_or_else(|| "(absent)".into())),
                    );
                    t.row(row);
                }
                out.push_str(&t.render());
            }
        }
        out.push_str(&self.errors());
        out
    }

    fn tsv(&self) -> String {
        match &self.diff {
            None => {
                let mut out = String::from("Scope\tKey\tValue\n");
                for s in &self.scopes {
                    let Some(config) = &s.config else { continue };
                    for (k, v) in config_diff::flatten(config) {
                        out.push_str(&format!(
                            "{}\t{}\t{}\n",
                            s.scope,
                            tsv_field(&k),
                            tsv_field(&v)
                        ));
                    }
                }
                out
            }
            Some(d) => {
                let mut out = String::from("Key");
                for s in &d.compared {
                    out.push_str(&format!("\t{s}"));
                }
                out.push('\n');
                for k in &d.keys {
                    out.push_str(&tsv_field(&k.key));
                    for v in &k.values {
                        out.push('\t');
                        out.push_str(&tsv_field(v.value.as_deref().unwrap_or("(absent)")));
                    }
                    out.push('\n');
                }
                out
            }
        }
    }
}
