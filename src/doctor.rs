//! `check`'s judgement: what was gathered (Patroni views, each member's own SQL answers, where
//! each VIP lands, the Citus metadata on workers, Citus's own health checks) -> one finding per
//! check, scope and member, `ok`, `warn` or `fail`.
//!
//! Pure functions, unit-tested on hand-built facts. What Citus cannot say (the test stand-in,
//! a Citus without the function) is a `warn` that says so, never a guessed `ok`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::citus::DistNode;
use crate::health::GroupView;
use crate::member_sql::{Landing, MemberFacts};
use crate::patroni::Role;
use crate::topology::{Endpoint, Group, GroupKind, Topology};

/// A finding's status; the order is the severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    /// The Patroni scope, or empty for the cluster as a whole.
    pub scope: String,
    pub member: Option<String>,
    pub status: Status,
    pub detail: String,
    pub hint: Option<String>,
}

fn finding(check: &'static str, scope: &str, member: Option<&str>, status: Status) -> Finding {
    Finding {
        check,
        scope: scope.to_owned(),
        member: member.map(str::to_owned),
        status,
        detail: String::new(),
        hint: None,
    }
}

impl Finding {
    fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = d.into();
        self
    }
    fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
}

/// The answer of a Citus function or catalog that may not exist where it is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum CitusAnswer<T> {
    Got(T),
    /// Not there (no Citus, the stand-in, an older Citus): the check cannot be made.
    Absent(String),
    Failed(String),
}

/// One member's own answers.
#[derive(Debug, Clone)]
pub struct MemberSeen {
    pub scope: String,
    pub name: String,
    pub endpoint: Endpoint,
    pub sql: Result<MemberFacts, String>,
}

/// Where one VIP lands.
#[derive(Debug, Clone)]
pub struct VipSeen {
    pub scope: String,
    /// `rw` or `ro`.
    pub which: &'static str,
    pub endpoint: Endpoint,
    pub landing: Result<Landing, String>,
}

/// One `citus_check_cluster_node_health()` row: from, to, result (None: Citus could not tell).
pub type HealthRow = (String, String, Option<bool>);

/// Everything `check` gathered; built by `ops::doctor`.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// Same order as `Topology::groups`.
    pub views: Vec<GroupView>,
    pub members: Vec<MemberSeen>,
    pub vips: Vec<VipSeen>,
    /// The coordinator leader's `pg_dist_node` per database (as `list` read it).
    pub coordinator_rows: Vec<(String, Vec<DistNode>)>,
    /// Each worker group leader's own `pg_dist_node`: (scope, member, database, rows).
    pub worker_rows: Vec<(String, String, String, CitusAnswer<Vec<DistNode>>)>,
    /// `citus_check_cluster_node_health()` on the coordinator leader, per database.
    pub node_health: Vec<(String, CitusAnswer<Vec<HealthRow>>)>,
    /// `citus_check_connection_to_node()` from the coordinator leader to every member.
    pub reach: Vec<(String, String, CitusAnswer<bool>)>,
}

impl Gathered {
    fn facts(&self, scope: &str, name: &str) -> Option<&MemberFacts> {
        self.members
            .iter()
            .find(|m| m.scope == scope && m.name == name)
            .and_then(|m| m.sql.as_ref().ok())
    }
}

/// Every check, in the order they are shown.
pub fn judge(topo: &Topology, g: &Gathered, scopes: &[String]) -> Vec<Finding> {
    let wanted = |s: &str| scopes.is_empty() || scopes.iter().any(|x| x == s) || s.is_empty();
    let mut out = Vec::new();
    out.extend(reachable_sql(g));
    for (group, view) in topo.groups.iter().zip(&g.views) {
        out.extend(replication(view, g));
        out.extend(split_brain(view, g));
        out.extend(vips(group, view, g));
    }
    out.extend(settings(topo, g));
    out.extend(prepared(g));
    out.extend(patroni_citus_mode(g));
    out.extend(worker_metadata(g));
    out.extend(node_health(g));
    out.extend(reach(g));
    out.retain(|f| wanted(&f.scope));
    out
}

/// Every member answers SQL (the other checks need it).
fn reachable_sql(g: &Gathered) -> Vec<Finding> {
    g.members
        .iter()
        .filter_map(|m| {
            m.sql.as_ref().err().map(|e| {
                finding("sql", &m.scope, Some(&m.name), Status::Fail)
                    .detail(format!(
                        "cannot read from PostgreSQL at {}: {e}",
                        m.endpoint
                    ))
                    .hint("the checks that need this member's own answers were skipped for it")
            })
        })
        .collect()
}

/// Lag above which a streaming replica is worth a look.
pub const LAG_WARN_BYTES: u64 = 16 << 20;

/// Every replica streams from its leader, on the leader's timeline.
pub fn replication(view: &GroupView, g: &Gathered) -> Vec<Finding> {
    let scope = view.scope.as_str();
    let leader = match view.single_leader() {
        Ok(l) => l,
        Err(why) => {
            return vec![
                finding("replication", scope, None, Status::Fail)
                    .detail(why)
                    .hint(format!("citusctl list {scope}")),
            ];
        }
    };
    let leader_tl = leader.doc.as_ref().and_then(|d| d.timeline);
    let leader_facts = g.facts(scope, &leader.name);
    let mut out = Vec::new();
    for m in &view.members {
        let Some(doc) = &m.doc else {
            if m.in_inventory {
                out.push(
                    finding("replication", scope, Some(&m.name), Status::Fail)
                        .detail(match &m.api_error {
                            Some(e) => format!("not known to Patroni; its REST API: {e}"),
                            None => "not known to Patroni".into(),
                        })
                        .hint("start it (systemctl start patroni) or remove it from the inventory"),
                );
            }
            continue;
        };
        if !doc.role().is_replica() {
            if doc.role() == Role::Unknown {
                out.push(
                    finding("replication", scope, Some(&m.name), Status::Fail)
                        .detail(format!("Patroni role {} ({})", doc.role, doc.state)),
                );
            }
            continue;
        }
        let f = finding("replication", scope, Some(&m.name), Status::Fail);
        if !matches!(doc.state.as_str(), "running" | "streaming") {
            out.push(
                f.detail(format!("replica is {}", doc.state))
                    .hint("start it; if it does not come back: patronictl reinit"),
            );
            continue;
        }
        if let (Some(tl), Some(ltl)) = (doc.timeline, leader_tl)
            && tl < ltl
        {
            out.push(
                f.detail(format!(
                    "on timeline {tl}, its leader {} on {ltl}: not replicating, cannot take over",
                    leader.name
                ))
                .hint(format!("patronictl reinit {scope} {}", m.name)),
            );
            continue;
        }
        // The leader's pg_stat_replication is the truth (Patroni names each sender after the
        // member); Patroni's `streaming` state is what is left when the leader cannot be asked.
        let sender = leader_facts.map(|lf| {
            lf.senders
                .iter()
                .any(|(app, state)| app == &m.name && state == "streaming")
        });
        let lag = match &doc.lag {
            Some(crate::patroni::Lag::Bytes(b)) => format!("lag {b} bytes"),
            Some(crate::patroni::Lag::Other(s)) => format!("lag {s}"),
            None => "lag unknown".into(),
        };
        let tl = doc
            .timeline
            .map(|t| format!("timeline {t}"))
            .unwrap_or_else(|| "timeline unknown".into());
        match (sender, doc.state.as_str()) {
            (Some(false), _) => out.push(
                f.detail(format!(
                    "Patroni says {} but {}'s pg_stat_replication has no streaming sender for it ({tl}, {lag})",
                    doc.state, leader.name
                ))
                .hint(format!(
                    "look at {}'s PostgreSQL log (primary_conninfo, pg_hba, replication slot); patronictl reinit {scope} {} if it cannot catch up",
                    m.name, m.name
                )),
            ),
            (None, "running") => out.push(
                finding("replication", scope, Some(&m.name), Status::Warn)
                    .detail(format!(
                        "Patroni says running, and the leader {} cannot be asked whether it streams ({tl}, {lag})",
                        leader.name
                    )),
            ),
            _ => {
                let far = doc.lag_bytes().is_some_and(|b| b > LAG_WARN_BYTES)
                    || matches!(doc.lag, Some(crate::patroni::Lag::Other(_)));
                let status = if far { Status::Warn } else { Status::Ok };
                out.push(
                    finding("replication", scope, Some(&m.name), status)
                        .detail(format!("streams from {} ({tl}, {lag})", leader.name)),
                );
            }
        }
    }
    out
}

/// At most one writable member per group, and it is Patroni's leader.
pub fn split_brain(view: &GroupView, g: &Gathered) -> Vec<Finding> {
    let scope = view.scope.as_str();
    let writable: Vec<&str> = g
        .members
        .iter()
        .filter(|m| m.scope == scope)
        .filter(|m| m.sql.as_ref().is_ok_and(|f| !f.in_recovery))
        .map(|m| m.name.as_str())
        .collect();
    let leader = view.single_leader().ok().map(|l| l.name.as_str());
    let mut out = Vec::new();
    if writable.len() > 1 {
        out.push(
            finding("split-brain", scope, None, Status::Fail)
                .detail(format!(
                    "{} members answer writable: {}",
                    writable.len(),
                    writable.join(", ")
                ))
                .hint(
                    "stop the one that is not Patroni's leader at once; then patronictl reinit it",
                ),
        );
    }
    for w in &writable {
        if leader.is_some_and(|l| l != *w) {
            out.push(
                finding("split-brain", scope, Some(w), Status::Fail)
                    .detail(format!(
                        "answers writable, but Patroni's leader is {}",
                        leader.unwrap_or_default()
                    ))
                    .hint("stop it; then patronictl reinit it"),
            );
        }
    }
    if out.is_empty()
        && let [one] = writable.as_slice()
    {
        out.push(
            finding("split-brain", scope, None, Status::Ok)
                .detail(format!("one writable member: {one}")),
        );
    }
    out
}

/// The RW VIP lands on the writable leader, the RO VIP on a replica (the leader when none).
pub fn vips(group: &Group, view: &GroupView, g: &Gathered) -> Vec<Finding> {
    let scope = group.scope.as_str();
    let leader_facts = view
        .single_leader()
        .ok()
        .and_then(|l| g.facts(scope, &l.name));
    let replica_up = g
        .members
        .iter()
        .any(|m| m.scope == scope && m.sql.as_ref().is_ok_and(|f| f.in_recovery));
    let mut out = Vec::new();
    for v in g.vips.iter().filter(|v| v.scope == scope) {
        let f = |s| finding("vip", scope, None, s);
        let l = match &v.landing {
            Err(e) => {
                out.push(f(Status::Fail).detail(format!(
                    "cannot connect through the {} VIP {}: {e}",
                    v.which, v.endpoint
                )));
                continue;
            }
            Ok(l) => l,
        };
        let at = l
            .server_addr
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        let Some(lf) = leader_facts else {
            out.push(f(Status::Warn).detail(format!(
                "the {} VIP {} lands on a server{at}, but the group has no leader to compare with",
                v.which, v.endpoint
            )));
            continue;
        };
        if l.system_identifier != lf.system_identifier {
            out.push(
                f(Status::Fail)
                    .detail(format!(
                        "the {} VIP {} lands on a server of another cluster{at} (system identifier {}, the group's is {})",
                        v.which, v.endpoint, l.system_identifier, lf.system_identifier
                    ))
                    .hint("fix the VIP's configuration (keepalived, haproxy, vip-manager)"),
            );
            continue;
        }
        let wrong = match (v.which, l.in_recovery) {
            ("rw", true) => Some("a replica"),
            ("ro", false) if replica_up => Some("the writable leader, while a replica is up"),
            _ => None,
        };
        out.push(match wrong {
            Some(what) => f(Status::Fail)
                .detail(format!("the {} VIP {} lands on {what}{at}", v.which, v.endpoint))
                .hint("fix the VIP's health check or callback (Patroni 4 says primary where 3 said master)"),
            None => f(Status::Ok).detail(format!(
                "the {} VIP {} lands on the {}{at}",
                v.which,
                v.endpoint,
                if l.in_recovery { "replica" } else { "writable leader" }
            )),
        });
    }
    out
}

/// Settings that are per member by design and are not compared.
const PER_MEMBER: &[&str] = &["citus.local_hostname", "citus.use_secondary_nodes"];

/// Versions and settings across all members.
pub fn settings(topo: &Topology, g: &Gathered) -> Vec<Finding> {
    let mut out = Vec::new();
    let answering: Vec<(&MemberSeen, &MemberFacts)> = g
        .members
        .iter()
        .filter_map(|m| m.sql.as_ref().ok().map(|f| (m, f)))
        .collect();
    if answering.is_empty() {
        return out;
    }
    // PostgreSQL major.
    let majors = spread(
        answering
            .iter()
            .map(|(m, f)| (m.name.as_str(), (f.server_version_num / 10000).to_string())),
    );
    out.push(if majors.len() > 1 {
        finding("version", "", None, Status::Fail).detail(format!(
            "PostgreSQL major versions differ: {}",
            show_spread(&majors)
        ))
    } else {
        finding("version", "", None, Status::Ok).detail(format!(
            "PostgreSQL {} on every member",
            majors.keys().next().cloned().unwrap_or_default()
        ))
    });
    // Citus: installed here, preloaded, library and extension versions agree.
    let without: Vec<&str> = answering
        .iter()
        .filter(|(_, f)| f.citus_available.is_none())
        .map(|(m, _)| m.name.as_str())
        .collect();
    if !without.is_empty() {
        out.push(
            finding("citus", "", None, Status::Warn)
                .detail(format!(
                    "Citus is not installed on {} (no citus in pg_available_extensions): its Citus checks are skipped",
                    without.join(", ")
                )),
        );
    }
    for (m, f) in answering
        .iter()
        .filter(|(_, f)| f.citus_available.is_some())
    {
        let c = |s| finding("citus", &m.scope, Some(&m.name), s);
        let spl = f
            .settings
            .get("shared_preload_libraries")
            .map(String::as_str)
            .unwrap_or_default();
        if !spl.split(',').any(|l| l.trim() == "citus") {
            out.push(
                c(Status::Fail)
                    .detail(format!(
                        "citus is not in shared_preload_libraries ({spl:?})"
                    ))
                    .hint("shared_preload_libraries = 'citus' (first), then restart"),
            );
            continue;
        }
        let ext = f.citus_extversion.as_deref();
        let lib = f.citus_library.as_deref();
        let disk = f.citus_available.as_deref().unwrap_or_default();
        match (ext, lib) {
            (None, _) => out.push(c(Status::Warn).detail(format!(
                "the citus extension is not created in database {} (installed: {disk})",
                topo.databases[0]
            ))),
            (Some(e), Some(l)) if !library_matches(l, e) => out.push(
                c(Status::Fail)
                    .detail(format!("library {l:?} against extension {e}"))
                    .hint("ALTER EXTENSION citus UPDATE on the leader, or install the matching package"),
            ),
            (Some(e), _) if e != disk => out.push(
                c(Status::Warn)
                    .detail(format!("extension {e}, but this host's package installs {disk}"))
                    .hint("ALTER EXTENSION citus UPDATE on the leader once every member has the package"),
            ),
            (Some(e), l) => out.push(c(Status::Ok).detail(format!(
                "extension {e}, library {}",
                l.map(short_citus_version).unwrap_or("?")
            ))),
        }
    }
    // Settings that must agree across members.
    let mut names: Vec<String> = crate::member_sql::COMPARED_SETTINGS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for (_, f) in &answering {
        for k in f.settings.keys() {
            if k.starts_with("citus.") && !PER_MEMBER.contains(&k.as_str()) && !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let mut differing = 0;
    for name in &names {
        let values = spread(answering.iter().map(|(m, f)| {
            (
                m.name.as_str(),
                f.settings
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "(unset)".into()),
            )
        }));
        if values.len() > 1 {
            differing += 1;
            out.push(
                finding("setting", "", None, Status::Warn)
                    .detail(format!("{name} differs: {}", show_spread(&values)))
                    .hint("the same value on every member (patronictl edit-config, or postgresql.conf), then reload or restart"),
            );
        }
    }
    for (m, f) in &answering {
        let s = |k: &str| f.settings.get(k).map(String::as_str);
        if s("max_prepared_transactions") == Some("0") {
            out.push(
                finding("setting", &m.scope, Some(&m.name), Status::Fail)
                    .detail("max_prepared_transactions = 0: Citus cannot commit across nodes")
                    .hint("max_prepared_transactions = 2 * max_connections, then restart"),
            );
        }
        if s("wal_level") == Some("minimal") {
            out.push(
                finding("setting", &m.scope, Some(&m.name), Status::Fail)
                    .detail("wal_level = minimal: no replication"),
            );
        }
    }
    out.extend(use_secondary_nodes(topo, g));
    out.extend(pool_size(topo, g));
    if differing == 0 {
        out.push(finding("setting", "", None, Status::Ok).detail(format!(
            "{} settings agree on {} members",
            names.len(),
            answering.len()
        )));
    }
    out
}

/// The coordinator leader must run `citus.use_secondary_nodes = never` (replicas are `resync`'s
/// business: their value depends on the metadata).
fn use_secondary_nodes(topo: &Topology, g: &Gathered) -> Vec<Finding> {
    let cn = topo.coordinator();
    let Some(view) = g.views.first() else {
        return vec![];
    };
    let Ok(leader) = view.single_leader() else {
        return vec![];
    };
    let Some(f) = g.facts(&cn.scope, &leader.name) else {
        return vec![];
    };
    match f.settings.get("citus.use_secondary_nodes").map(String::as_str) {
        Some("never") | None => vec![],
        Some(other) => vec![
            finding("setting", &cn.scope, Some(&leader.name), Status::Fail)
                .detail(format!(
                    "citus.use_secondary_nodes = {other} on the coordinator leader: its writes would go to worker replicas"
                ))
                .hint("citusctl resync --yes"),
        ],
    }
}

/// The coordinator's `citus.max_shared_pool_size` against each worker's `max_connections`.
fn pool_size(topo: &Topology, g: &Gathered) -> Vec<Finding> {
    let cn = topo.coordinator();
    let Some(leader) = g.views.first().and_then(|v| v.single_leader().ok()) else {
        return vec![];
    };
    let Some(cf) = g.facts(&cn.scope, &leader.name) else {
        return vec![];
    };
    let num = |f: &MemberFacts, k: &str| f.settings.get(k).and_then(|v| v.parse::<i64>().ok());
    let Some(pool) = num(cf, "citus.max_shared_pool_size") else {
        return vec![];
    };
    // 0: the coordinator's own max_connections; -1: no limit.
    let pool = if pool == 0 {
        num(cf, "max_connections").unwrap_or(0)
    } else {
        pool
    };
    let mut out = Vec::new();
    for m in g.members.iter().filter(|m| {
        topo.group_by_scope(&m.scope)
            .is_some_and(|gr| gr.kind == GroupKind::Worker)
    }) {
        let Some(mc) = m.sql.as_ref().ok().and_then(|f| num(f, "max_connections")) else {
            continue;
        };
        if pool < 0 || pool > mc {
            out.push(
                finding("setting", &m.scope, Some(&m.name), Status::Warn)
                    .detail(format!(
                        "max_connections = {mc}, below the coordinator's citus.max_shared_pool_size ({})",
                        if pool < 0 { "no limit".to_string() } else { pool.to_string() }
                    ))
                    .hint("raise the worker's max_connections, or lower citus.max_shared_pool_size on the coordinator"),
            );
        }
    }
    out
}

/// Prepared transactions older than a minute.
pub fn prepared(g: &Gathered) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &g.members {
        let Ok(f) = &m.sql else { continue };
        for (gid, db, age) in &f.old_prepared {
            out.push(
                finding("prepared-xacts", &m.scope, Some(&m.name), Status::Warn)
                    .detail(format!(
                        "prepared transaction {gid} in {db} is {} old",
                        humantime::format_duration(std::time::Duration::from_secs(*age as u64))
                    ))
                    .hint("on the coordinator leader: SELECT recover_prepared_transactions();"),
            );
        }
    }
    out
}

/// Patroni's own Citus mode (`citus:` in a member's Patroni configuration) writes
/// `pg_dist_node` from the coordinator leader too: two writers that undo each other's rows.
/// Patroni does not say so over its REST API; its handler's connection does, by name.
pub fn patroni_citus_mode(g: &Gathered) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = 0;
    for m in &g.members {
        let Ok(f) = &m.sql else { continue };
        seen += 1;
        for (db, from) in &f.patroni_citus {
            out.push(
                finding("patroni-citus", &m.scope, Some(&m.name), Status::Fail)
                    .detail(format!(
                        "Patroni's own Citus mode is on (a 'Patroni citus' session in {db} from {from}): \
                         Patroni and citusctl would both write pg_dist_node"
                    ))
                    .hint("remove the citus: section from this scope's Patroni configuration and restart Patroni, or leave pg_dist_node to Patroni and do not run citusctl's writers"),
            );
        }
    }
    if out.is_empty() && seen > 0 {
        out.push(
            finding("patroni-citus", "", None, Status::Ok).detail(format!(
                "no member has a Patroni Citus-mode session ({seen} answered)"
            )),
        );
    }
    out
}

/// The columns of a row that must agree between the coordinator and a metadata worker.
fn row_key(n: &DistNode) -> (i32, String, i32, String, i32, bool, bool, bool) {
    (
        n.nodeid,
        n.nodename.clone(),
        n.nodeport,
        n.noderole.clone(),
        n.groupid,
        n.isactive,
        n.hasmetadata,
        n.metadatasynced,
    )
}

fn show_row(n: &DistNode) -> String {
    format!(
        "row {} {}:{} group {} {}{}{}{}",
        n.nodeid,
        n.nodename,
        n.nodeport,
        n.groupid,
        n.noderole,
        if n.isactive { "" } else { " inactive" },
        if n.hasmetadata { " hasmetadata" } else { "" },
        if n.metadatasynced { " synced" } else { "" },
    )
}

/// Each metadata worker's own `pg_dist_node` equals the coordinator's.
pub fn worker_metadata(g: &Gathered) -> Vec<Finding> {
    let mut out = Vec::new();
    for (scope, member, db, answer) in &g.worker_rows {
        let f = |s| finding("metadata", scope, Some(member), s);
        let Some((_, cn_rows)) = g.coordinator_rows.iter().find(|(d, _)| d == db) else {
            continue;
        };
        match answer {
            CitusAnswer::Absent(why) => {
                out.push(f(Status::Warn).detail(format!("{db}: {why}: not compared")));
            }
            CitusAnswer::Failed(e) => {
                out.push(f(Status::Fail).detail(format!("{db}: cannot read pg_dist_node: {e}")));
            }
            CitusAnswer::Got(rows) => {
                let mut mine: Vec<_> = rows.iter().map(row_key).collect();
                let mut theirs: Vec<_> = cn_rows.iter().map(row_key).collect();
                mine.sort();
                theirs.sort();
                if mine == theirs {
                    out.push(f(Status::Ok).detail(format!(
                        "{db}: pg_dist_node equals the coordinator's ({} rows)",
                        rows.len()
                    )));
                    continue;
                }
                let only = |a: &[DistNode], b: &[DistNode]| -> Vec<String> {
                    a.iter()
                        .filter(|x| !b.iter().any(|y| row_key(y) == row_key(x)))
                        .map(show_row)
                        .collect()
                };
                let here = only(rows, cn_rows);
                let there = only(cn_rows, rows);
                out.push(
                    f(Status::Fail)
                        .detail(format!(
                            "{db}: pg_dist_node differs from the coordinator's: here only [{}]; on the coordinator only [{}]",
                            here.join("; "),
                            there.join("; ")
                        ))
                        .hint("SELECT start_metadata_sync_to_node(host, port) on the coordinator leader, or wait for Citus's maintenance daemon"),
                );
            }
        }
    }
    out
}

/// `citus_check_cluster_node_health()` on the coordinator leader.
pub fn node_health(g: &Gathered) -> Vec<Finding> {
    let mut out = Vec::new();
    for (db, answer) in &g.node_health {
        let f = |s| finding("node-health", "", None, s);
        match answer {
            CitusAnswer::Absent(why) => {
                out.push(f(Status::Warn).detail(format!("{db}: {why}: not checked")))
            }
            CitusAnswer::Failed(e) => out.push(f(Status::Fail).detail(format!("{db}: {e}"))),
            CitusAnswer::Got(rows) => {
                let bad: Vec<String> = rows
                    .iter()
                    .filter(|(_, _, ok)| *ok != Some(true))
                    .map(|(from, to, ok)| {
                        format!(
                            "{from} -> {to} {}",
                            if ok.is_none() { "unknown" } else { "fails" }
                        )
                    })
                    .collect();
                out.push(if bad.is_empty() {
                    f(Status::Ok).detail(format!(
                        "{db}: citus_check_cluster_node_health(): {} pairs connect",
                        rows.len()
                    ))
                } else {
                    f(Status::Fail)
                        .detail(format!("{db}: {}", bad.join(", ")))
                        .hint("Citus's nodes must reach each other: pg_hba, pg_dist_authinfo, ssl, firewalls")
                });
            }
        }
    }
    out
}

/// Every member reachable from the coordinator leader with Citus's own credentials.
pub fn reach(g: &Gathered) -> Vec<Finding> {
    let absent: Vec<&str> = g
        .reach
        .iter()
        .filter_map(|(_, _, a)| match a {
            CitusAnswer::Absent(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    if let Some(why) = absent.first() {
        out.push(finding("reach", "", None, Status::Warn).detail(format!(
            "{why}: reachability from the coordinator not checked"
        )));
    }
    for (scope, member, a) in &g.reach {
        let f = |s| finding("reach", scope, Some(member), s);
        match a {
            CitusAnswer::Absent(_) => {}
            CitusAnswer::Got(true) => {
                out.push(f(Status::Ok).detail("the coordinator leader connects as Citus does"))
            }
            CitusAnswer::Got(false) => out.push(
                f(Status::Fail)
                    .detail("the coordinator leader cannot connect to it with Citus's credentials")
                    .hint("pg_hba, pg_dist_authinfo or ~postgres/.pgpass on the coordinator, ssl"),
            ),
            CitusAnswer::Failed(e) => out.push(f(Status::Fail).detail(e.clone())),
        }
    }
    out
}

/// `Citus 11.3.1 on x86_64...` -> `11.3.1`.
pub fn short_citus_version(lib: &str) -> &str {
    lib.strip_prefix("Citus ")
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or(lib)
}

/// The library's major.minor equals the extension's (`11.3.1` against `11.3-2`).
fn library_matches(lib: &str, ext: &str) -> bool {
    let l = short_citus_version(lib);
    let major_minor = |s: &str| s.split(['.', '-']).take(2).collect::<Vec<_>>().join(".");
    !lib.starts_with("error:") && major_minor(l) == major_minor(ext)
}

/// value -> members holding it.
fn spread<'a>(it: impl Iterator<Item = (&'a str, String)>) -> BTreeMap<String, Vec<&'a str>> {
    let mut m: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (name, v) in it {
        m.entry(v).or_default().push(name);
    }
    m
}

fn show_spread(m: &BTreeMap<String, Vec<&str>>) -> String {
    m.iter()
        .map(|(v, who)| format!("{v:?} on {}", who.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::group_view;
    use crate::health::tests::{doc, group, probe};

    fn topology(groups: Vec<Group>) -> Topology {
        use crate::topology::{PatroniSettings, PostgresSettings};
        Topology {
            name: "t".into(),
            databases: vec!["postgres".into()],
            postgres: PostgresSettings {
                user: None,
                password: None,
                sslmode: None,
                sslrootcert: None,
                connect_timeout: None,
            },
            patroni: PatroniSettings {
                username: None,
                password: None,
                timeout: std::time::Duration::from_secs(1),
                cacert: None,
                insecure: false,
            },
            groups,
        }
    }

    fn facts(in_recovery: bool) -> MemberFacts {
        let mut settings = BTreeMap::new();
        settings.insert("max_prepared_transactions".into(), "20".into());
        settings.insert("wal_level".into(), "replica".into());
        MemberFacts {
            in_recovery,
            system_identifier: "7000".into(),
            server_version_num: 150018,
            settings,
            ..MemberFacts::default()
        }
    }

    fn seen(name: &str, f: MemberFacts) -> MemberSeen {
        MemberSeen {
            scope: "wk1".into(),
            name: name.into(),
            endpoint: Endpoint::new(format!("10.0.0.{}", &name[1..]), 5432),
            sql: Ok(f),
        }
    }

    fn gathered(view: GroupView, members: Vec<MemberSeen>) -> Gathered {
        Gathered {
            views: vec![view],
            members,
            vips: vec![],
            coordinator_rows: vec![],
            worker_rows: vec![],
            node_health: vec![],
            reach: vec![],
        }
    }

    fn wk1(states: &[(&str, &str, &str)]) -> GroupView {
        let g = group("wk1", 1, &[("a1", "10.0.0.1"), ("b2", "10.0.0.2")]);
        group_view(&g, &probe("wk1", vec![("a1", Ok(doc(states)))]))
    }

    fn leader_streaming_to(names: &[&str]) -> MemberFacts {
        let mut f = facts(false);
        f.senders = names
            .iter()
            .map(|n| ((*n).into(), "streaming".into()))
            .collect();
        f
    }

    #[test]
    fn a_streaming_replica_is_ok_and_a_stopped_one_fails() {
        let v = wk1(&[("a1", "leader", "running"), ("b2", "replica", "streaming")]);
        let g = gathered(
            v.clone(),
            vec![
                seen("a1", leader_streaming_to(&["b2"])),
                seen("b2", facts(true)),
            ],
        );
        let r = replication(&v, &g);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, Status::Ok, "{r:?}");
        assert!(r[0].detail.starts_with("streams from a1"), "{r:?}");

        let v = wk1(&[("a1", "leader", "running"), ("b2", "replica", "stopped")]);
        let r = replication(&v, &gathered(v.clone(), vec![]));
        assert_eq!(r[0].status, Status::Fail);
        assert_eq!(r[0].detail, "replica is stopped");
    }

    #[test]
    fn a_running_replica_the_leader_does_not_stream_to_fails() {
        // Patroni 3.0 says `running` for every replica: the leader decides.
        let v = wk1(&[("a1", "leader", "running"), ("b2", "replica", "running")]);
        let g = gathered(
            v.clone(),
            vec![
                seen("a1", leader_streaming_to(&[])),
                seen("b2", facts(true)),
            ],
        );
        let r = replication(&v, &g);
        assert_eq!(r[0].status, Status::Fail, "{r:?}");
        assert!(r[0].detail.contains("no streaming sender"), "{r:?}");
        let g = gathered(v.clone(), vec![seen("a1", leader_streaming_to(&["b2"]))]);
        assert_eq!(replication(&v, &g)[0].status, Status::Ok);
        // Without the leader's answer, `running` cannot be confirmed.
        assert_eq!(
            replication(&v, &gathered(v.clone(), vec![]))[0].status,
            Status::Warn
        );
    }

    #[test]
    fn a_replica_on_an_older_timeline_is_not_replicating() {
        let g = group("wk1", 1, &[("a1", "10.0.0.1"), ("b2", "10.0.0.2")]);
        let d: crate::patroni::ClusterDoc = serde_json::from_str(
            r#"{"members":[{"name":"a1","role":"leader","state":"running","timeline":5},
                           {"name":"b2","role":"replica","state":"running","timeline":4,"lag":0}]}"#,
        )
        .unwrap();
        let v = group_view(&g, &probe("wk1", vec![("a1", Ok(d))]));
        let r = replication(&v, &gathered(v.clone(), vec![]));
        assert_eq!(r[0].status, Status::Fail);
        assert_eq!(
            r[0].detail,
            "on timeline 4, its leader a1 on 5: not replicating, cannot take over"
        );
    }

    #[test]
    fn two_writable_members_or_a_writable_non_leader_is_split_brain() {
        let v = wk1(&[("a1", "leader", "running"), ("b2", "replica", "streaming")]);
        let ok = gathered(
            v.clone(),
            vec![seen("a1", facts(false)), seen("b2", facts(true))],
        );
        let r = split_brain(&v, &ok);
        assert_eq!((r.len(), r[0].status), (1, Status::Ok));
        let bad = gathered(
            v.clone(),
            vec![seen("a1", facts(false)), seen("b2", facts(false))],
        );
        let r = split_brain(&v, &bad);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|f| f.status == Status::Fail));
        assert_eq!(r[1].member.as_deref(), Some("b2"));
    }

    #[test]
    fn vips_on_the_wrong_role_or_cluster_fail() {
        let mut gr = group("wk1", 1, &[("a1", "10.0.0.1"), ("b2", "10.0.0.2")]);
        gr.vip = Some(crate::topology::Vips {
            rw: Endpoint::new("10.0.0.110", 5432),
            ro: Some(Endpoint::new("10.0.0.111", 5432)),
        });
        let v = wk1(&[("a1", "leader", "running"), ("b2", "replica", "streaming")]);
        let land = |rec: bool, sys: &str| Landing {
            in_recovery: rec,
            system_identifier: sys.into(),
            server_addr: None,
        };
        let mut g = gathered(
            v.clone(),
            vec![seen("a1", facts(false)), seen("b2", facts(true))],
        );
        let vip = |which, l| VipSeen {
            scope: "wk1".into(),
            which,
            endpoint: Endpoint::new("10.0.0.110", 5432),
            landing: Ok(l),
        };
        g.vips = vec![
            vip("rw", land(false, "7000")),
            vip("ro", land(true, "7000")),
        ];
        assert!(vips(&gr, &v, &g).iter().all(|f| f.status == Status::Ok));
        g.vips = vec![
            vip("rw", land(true, "7000")),
            vip("ro", land(false, "7000")),
        ];
        let r = vips(&gr, &v, &g);
        assert!(r.iter().all(|f| f.status == Status::Fail), "{r:?}");
        assert!(r[0].detail.contains("lands on a replica"), "{r:?}");
        g.vips = vec![vip("rw", land(false, "9999"))];
        assert!(vips(&gr, &v, &g)[0].detail.contains("another cluster"));
    }

    #[test]
    fn a_setting_changed_on_one_member_is_named() {
        let v = wk1(&[("a1", "leader", "running"), ("b2", "replica", "streaming")]);
        let mut odd = facts(true);
        odd.settings
            .insert("citus.node_connection_timeout".into(), "5000".into());
        let mut topo_g = vec![group("cn", 0, &[("c0", "10.0.0.9")])];
        topo_g.push(group("wk1", 1, &[("a1", "10.0.0.1"), ("b2", "10.0.0.2")]));
        let topo = topology(topo_g);
        let g = gathered(v, vec![seen("a1", facts(false)), seen("b2", odd)]);
        let r = settings(&topo, &g);
        let diff: Vec<&Finding> = r.iter().filter(|f| f.status != Status::Ok).collect();
        assert!(
            diff.iter().any(|f| f.detail
                == r#"citus.node_connection_timeout differs: "(unset)" on a1; "5000" on b2"#),
            "{r:?}"
        );
        // Without Citus anywhere, that is said once, as a warning.
        assert!(
            diff.iter()
                .any(|f| f.check == "citus" && f.status == Status::Warn)
        );
    }

    #[test]
    fn library_and_extension_versions() {
        assert!(library_matches(
            "Citus 11.3.1 on x86_64-pc-linux-gnu",
            "11.3-2"
        ));
        assert!(!library_matches("Citus 12.1.5 on x86_64", "11.3-2"));
        assert!(!library_matches("error: no such function", "11.3-2"));
        assert_eq!(short_citus_version("Citus 13.2.0 on x"), "13.2.0");
    }

    #[test]
    fn a_patroni_citus_mode_session_is_two_writers() {
        let view = wk1(&[("a1", "leader", "running"), ("a2", "replica", "streaming")]);
        let mut f = facts(false);
        let g = gathered(
            view.clone(),
            vec![seen("a1", f.clone()), seen("a2", facts(true))],
        );
        let out = patroni_citus_mode(&g);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Ok);
        f.patroni_citus = vec![("postgres".into(), "10.0.0.5".into())];
        let g = gathered(view, vec![seen("a1", f), seen("a2", facts(true))]);
        let out = patroni_citus_mode(&g);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Fail);
        assert_eq!(out[0].member.as_deref(), Some("a1"));
        assert!(out[0].detail.contains("from 10.0.0.5"), "{}", out[0].detail);
    }

    #[test]
    fn worker_metadata_is_compared_row_by_row_and_absence_is_a_warning() {
        let row = |id, name: &str, synced| DistNode {
            nodeid: id,
            groupid: id,
            nodename: name.into(),
            nodeport: 5432,
            noderole: "primary".into(),
            nodecluster: "default".into(),
            isactive: true,
            hasmetadata: true,
            metadatasynced: synced,
            shouldhaveshards: true,
            same_as: None,
        };
        let v = wk1(&[("a1", "leader", "running")]);
        let mut g = gathered(v, vec![]);
        g.coordinator_rows = vec![("postgres".into(), vec![row(1, "10.0.0.1", true)])];
        g.worker_rows = vec![
            (
                "wk1".into(),
                "a1".into(),
                "postgres".into(),
                CitusAnswer::Got(vec![row(1, "10.0.0.1", true)]),
            ),
            (
                "wk2".into(),
                "c3".into(),
                "postgres".into(),
                CitusAnswer::Got(vec![row(1, "10.0.0.7", true)]),
            ),
            (
                "wk3".into(),
                "d4".into(),
                "postgres".into(),
                CitusAnswer::Absent("no pg_dist_node".into()),
            ),
        ];
        let r = worker_metadata(&g);
        assert_eq!(
            r.iter().map(|f| f.status).collect::<Vec<_>>(),
            vec![Status::Ok, Status::Fail, Status::Warn]
        );
        assert!(
            r[1].detail.contains("here only [row 1 10.0.0.7:5432"),
            "{r:?}"
        );
    }
}
