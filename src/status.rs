//! The cluster status report: what `list` prints, and what other commands check first.
//!
//! Built by a pure function from the topology and what was observed; rendered by `output`.
//! The JSON shape is versioned by `format_version`: fields are only ever added.

use serde::Serialize;

use crate::citus::DistNode;
use crate::health::{GroupView, group_views};
use crate::observe::{ClusterProbe, MetadataProbe};
use crate::output::{Render, Table, tsv_field};
use crate::patroni::{Lag, Role};
use crate::topology::{GroupKind, Topology};
use crate::verdict::{RowCheck, Verdict, check_group, check_orphans};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub format_version: u32,
    pub cluster: String,
    /// True when every shown group is healthy and every pg_dist_node row is `ok`.
    pub ok: bool,
    /// True when not a single member answered its REST API.
    pub unreachable: bool,
    pub groups: Vec<GroupReport>,
    pub metadata: MetadataReport,
    /// pg_dist_node rows of groups the inventory does not describe.
    pub unknown_groups: Vec<RowCheck>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    pub scope: String,
    pub group: i32,
    pub kind: GroupKind,
    /// `direct` (rows hold member addresses) or `vip` (rows hold the group's VIPs).
    pub mode: &'static str,
    pub vip: Option<VipReport>,
    pub leader: Option<String>,
    pub paused: bool,
    pub healthy: bool,
    /// The worst verdict of the group's rows (`unknown` when metadata could not be read).
    pub verdict: Verdict,
    pub members: Vec<MemberReport>,
    pub pg_dist_node: Vec<RowCheck>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VipReport {
    pub rw: String,
    pub ro: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberReport {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Normalised role (`leader`, `standby_leader`, `sync_standby`, `quorum_standby`, `replica`);
    /// null when Patroni does not describe the member.
    pub role: Option<Role>,
    /// The role string exactly as Patroni sent it.
    pub patroni_role: Option<String>,
    /// Patroni's state (`running`, `streaming`, `stopped`, ...) or `unreachable`.
    pub state: String,
    pub timeline: Option<u64>,
    /// Bytes behind the leader, or `"unknown"` as Patroni says; null for leaders.
    pub lag: Option<Lag>,
    pub reachable: bool,
    pub error: Option<String>,
    pub pending_restart: bool,
    pub in_inventory: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetadataReport {
    /// The coordinator member pg_dist_node was read from.
    pub read_from: Option<String>,
    pub databases: Vec<DatabaseReport>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatabaseReport {
    pub name: String,
    pub error: Option<String>,
}

/// Build the report for the groups named in `scopes` (all when empty).
pub fn build(topo: &Topology, probe: &ClusterProbe, scopes: &[String]) -> StatusReport {
    let views = group_views(topo, &probe.groups);

    let (metadata, tables) = metadata_report(&probe.metadata);
    let mut groups = Vec::new();
    for (g, view) in topo.groups.iter().zip(&views) {
        if !scopes.is_empty() && !scopes.iter().any(|s| s == &g.scope) {
            continue;
        }
        let mut checks = Vec::new();
        let mut problems = view.problems();
        for (db, nodes) in &tables {
            let rows: Vec<&DistNode> = nodes.iter().filter(|n| n.groupid == g.group_id).collect();
            checks.extend(check_group(db, g, view, &rows));
            // Citus refuses DDL and node changes while a metadata worker is out of sync; its
            // maintenance daemon resyncs in the background (usually within a second or two).
            for r in rows
                .iter()
                .filter(|r| r.hasmetadata && !r.metadatasynced && r.isactive)
            {
                problems.push(format!(
                    "pg_dist_node row {} ({}:{}, {db}): Citus metadata not synced to it yet",
                    r.nodeid, r.nodename, r.nodeport
                ));
            }
        }
        for c in checks.iter().filter(|c| c.verdict != Verdict::Ok) {
            problems.push(row_problem(c));
        }
        let verdict = if tables.is_empty() {
            Verdict::Unknown
        } else {
            checks
                .iter()
                .map(|c| c.verdict)
                .max()
                .unwrap_or(Verdict::Ok)
        };
        let healthy = view.problems().is_empty();
        groups.push(GroupReport {
            scope: g.scope.clone(),
            group: g.group_id,
            kind: g.kind,
            mode: if g.vip.is_some() { "vip" } else { "direct" },
            vip: g.vip.as_ref().map(|v| VipReport {
                rw: v.rw.to_string(),
                ro: v.ro.as_ref().map(ToString::to_string),
            }),
            leader: view.single_leader().ok().map(|m| m.name.clone()),
            paused: view.paused,
            healthy,
            verdict,
            members: member_reports(view),
            pg_dist_node: checks,
            problems,
        });
    }

    let mut unknown_groups = Vec::new();
    if scopes.is_empty() {
        for (db, nodes) in &tables {
            let orphans: Vec<&DistNode> = nodes
                .iter()
                .filter(|n| topo.group_by_id(n.groupid).is_none())
                .collect();
            unknown_groups.extend(check_orphans(db, &orphans));
        }
    }

    let mut problems: Vec<String> = groups
        .iter()
        .flat_map(|g| g.problems.iter().map(move |p| format!("{}: {p}", g.scope)))
        .collect();
    problems.extend(unknown_groups.iter().map(row_problem));
    if let Some(e) = &metadata.error {
        problems.push(format!("pg_dist_node: {e}"));
    }
    for d in &metadata.databases {
        if let Some(e) = &d.error {
            problems.push(format!("pg_dist_node in {}: {e}", d.name));
        }
    }
    let unreachable = probe
        .groups
        .iter()
        .all(|g| g.members.iter().all(|m| m.answer.is_err()));
    StatusReport {
        format_version: FORMAT_VERSION,
        cluster: topo.name.clone(),
        ok: problems.is_empty(),
        unreachable,
        groups,
        metadata,
        unknown_groups,
        problems,
    }
}

fn metadata_report(probe: &MetadataProbe) -> (MetadataReport, Vec<(String, Vec<DistNode>)>) {
    match probe {
        MetadataProbe::NoLeader(why) => (
            MetadataReport {
                read_from: None,
                databases: vec![],
                error: Some(format!("not read: {why}")),
            },
            vec![],
        ),
        MetadataProbe::Read { from, databases } => {
            let mut tables = Vec::new();
            let mut reports = Vec::new();
            for (db, r) in databases {
                let error = match r {
                    Ok(m) if m.in_recovery => Some(format!(
                        "{from} is in recovery: Patroni calls it the leader but it is not writable yet"
                    )),
                    Ok(m) => {
                        tables.push((db.clone(), m.nodes.clone()));
                        None
                    }
                    Err(e) => Some(e.clone()),
                };
                reports.push(DatabaseReport {
                    name: db.clone(),
                    error,
                });
            }
            (
                MetadataReport {
                    read_from: Some(from.clone()),
                    databases: reports,
                    error: None,
                },
                tables,
            )
        }
    }
}

fn member_reports(view: &GroupView) -> Vec<MemberReport> {
    view.members
        .iter()
        .map(|m| {
            let d = m.doc.as_ref();
            let state = match (d, &m.api_error) {
                (Some(d), _) => d.state.clone(),
                (None, Some(_)) => "unreachable".into(),
                (None, None) => "unknown".into(),
            };
            MemberReport {
                name: m.name.clone(),
                host: m.endpoint.host.clone(),
                port: m.endpoint.port,
                role: d.map(|d| d.role()),
                patroni_role: d.map(|d| d.role.clone()),
                state,
                timeline: d.and_then(|d| d.timeline),
                lag: d.and_then(|d| {
                    if d.role().is_leader() {
                        None
                    } else {
                        d.lag.clone()
                    }
                }),
                reachable: m.api_error.is_none(),
                error: m.api_error.as_ref().map(ToString::to_string),
                pending_restart: d.is_some_and(|d| d.pending_restart),
                in_inventory: m.in_inventory,
            }
        })
        .collect()
}

fn row_problem(c: &RowCheck) -> String {
    let what = match (c.nodeid, c.address()) {
        (Some(id), Some(addr)) => format!("{} row {id} ({addr}, {})", c.noderole, c.database),
        _ => format!("{} row ({})", c.noderole, c.database),
    };
    let fix = match &c.expected {
        Some(e) => format!("; should be {e}"),
        None => String::new(),
    };
    format!(
        "pg_dist_node {what} is {}: {}{fix}",
        c.verdict.as_str(),
        c.note
    )
}

impl StatusReport {
    /// For each member line, the rows that point at it (or should), e.g. `primary ok`.
    fn rows_for(g: &GroupReport, host: &str, port: u16) -> String {
        let addr = crate::topology::Endpoint::new(host, port).to_string();
        let mut parts: Vec<String> = Vec::new();
        for c in &g.pg_dist_node {
            let at = c.member_address().or_else(|| {
                if c.verdict == Verdict::Missing {
                    c.expected.clone()
                } else {
                    None
                }
            });
            if at.as_deref() == Some(addr.as_str()) {
                let s = format!("{} {}", c.noderole, c.verdict.as_str());
                if !parts.contains(&s) {
                    parts.push(s);
                }
            }
        }
        parts.join(", ")
    }

    /// Rows that point at no member line (VIPs, foreign addresses, unknown expectations).
    fn detached_rows(g: &GroupReport) -> Vec<(String, String)> {
        let member_addrs: Vec<String> = g
            .members
            .iter()
            .map(|m| crate::topology::Endpoint::new(m.host.clone(), m.port).to_string())
            .collect();
        let mut out: Vec<(String, String)> = Vec::new();
        for c in &g.pg_dist_node {
            let at = c.member_address().or_else(|| c.expected.clone());
            if at.as_ref().is_some_and(|a| member_addrs.contains(a)) {
                continue;
            }
            let label = format!("{} {}", c.noderole, c.verdict.as_str());
            let key = (at.unwrap_or_else(|| "-".into()), label);
            if !out.contains(&key) {
                out.push(key);
            }
        }
        out
    }
}

const HEADERS: [&str; 9] = [
    "Group",
    "Scope",
    "Member",
    "Host",
    "Role",
    "State",
    "TL",
    "Lag in MB",
    "pg_dist_node",
];

fn host_cell(host: &str, port: u16) -> String {
    if port == 5432 {
        host.to_owned()
    } else {
        crate::topology::Endpoint::new(host, port).to_string()
    }
}

fn lag_cell(lag: &Option<Lag>) -> String {
    match lag {
        None => String::new(),
        Some(Lag::Bytes(b)) => format!("{}", b / (1024 * 1024)),
        Some(Lag::Other(s)) => s.clone(),
    }
}

impl Render for StatusReport {
    fn pretty(&self) -> String {
        let mut t = Table::new(format!("Citus cluster: {}", self.cluster), &HEADERS);
        t.right_align(&[0, 6, 7]);
        for g in &self.groups {
            let mut first = true;
            let mut head = |t: &mut Table, cells: Vec<String>| {
                let (gid, scope) = if first {
                    (g.group.to_string(), g.scope.clone())
                } else {
                    (String::new(), String::new())
                };
                first = false;
                let mut row = vec![gid, scope];
                row.extend(cells);
                t.row(row);
            };
            for m in &g.members {
                let role = match (m.role, &m.patroni_role) {
                    (Some(Role::Unknown), Some(raw)) => raw.clone(),
                    (Some(r), _) => r.title().to_owned(),
                    (None, _) => String::new(),
                };
                let mut state = m.state.clone();
                if !m.reachable && m.role.is_some() {
                    state.push_str(" (API down)");
                }
                let name = if m.in_inventory {
                    m.name.clone()
                } else {
                    format!("{} (not in inventory)", m.name)
                };
                head(
                    &mut t,
                    vec![
                        name,
                        host_cell(&m.host, m.port),
                        role,
                        state,
                        m.timeline.map(|x| x.to_string()).unwrap_or_default(),
                        lag_cell(&m.lag),
                        Self::rows_for(g, &m.host, m.port),
                    ],
                );
            }
            for (addr, label) in Self::detached_rows(g) {
                let who = if g.vip.is_some() { "(vip)" } else { "(row)" };
                head(
                    &mut t,
                    vec![
                        who.into(),
                        addr,
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        label,
                    ],
                );
            }
        }
        for c in &self.unknown_groups {
            t.row(vec![
                c.groupid.to_string(),
                "?".into(),
                "(row)".into(),
                c.address().unwrap_or_default(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("{} {}", c.noderole, c.verdict.as_str()),
            ]);
        }
        let mut out = t.render();
        let paused: Vec<&str> = self
            .groups
            .iter()
            .filter(|g| g.paused)
            .map(|g| g.scope.as_str())
            .collect();
        if !paused.is_empty() {
            out.push_str(&format!(" Maintenance mode: on ({})\n", paused.join(", ")));
        }
        if !self.problems.is_empty() {
            out.push_str("\nProblems:\n");
            for p in &self.problems {
                out.push_str(&format!("  - {p}\n"));
            }
            if self.groups.iter().any(|g| {
                matches!(
                    g.verdict,
                    Verdict::Stale | Verdict::Missing | Verdict::Unexpected | Verdict::Inactive
                )
            }) {
                out.push_str("\nhint: `citusctl resync --dry-run` shows how to bring pg_dist_node in line with Patroni\n");
            }
        }
        out
    }

    fn tsv(&self) -> String {
        let mut out = HEADERS.join("\t");
        out.push('\n');
        for g in &self.groups {
            for m in &g.members {
                let cells = [
                    g.group.to_string(),
                    g.scope.clone(),
                    m.name.clone(),
                    host_cell(&m.host, m.port),
                    m.role.map(|r| r.title().to_owned()).unwrap_or_default(),
                    m.state.clone(),
                    m.timeline.map(|x| x.to_string()).unwrap_or_default(),
                    lag_cell(&m.lag),
                    Self::rows_for(g, &m.host, m.port),
                ];
                let cells: Vec<String> = cells.iter().map(|c| tsv_field(c)).collect();
                out.push_str(&cells.join("\t"));
                out.push('\n');
            }
        }
        out
    }
}
