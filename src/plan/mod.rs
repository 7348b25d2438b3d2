//! Plan: the `pg_dist_node` the inventory and Patroni call for, as ordered Citus calls.
//!
//! Pure: `plan_metadata` takes what was observed and returns what to do, per database, and which
//! groups must not be touched and why. Swaps (a secondary row holding the new leader's address)
//! go through a placeholder name inside the one transaction, because Citus keeps
//! `(nodename, nodeport)` unique at every statement; no other session sees the middle state.

use serde::Serialize;

use crate::citus::DistNode;
use crate::health::GroupView;
use crate::topology::{COORDINATOR_GROUP, Endpoint, Group, Topology};

mod add_worker;
mod secondary_setting;
pub mod switchover;
pub use add_worker::{AddWorkerFacts, plan_add_worker};
pub use secondary_setting::{SettingChange, plan_use_secondary_nodes};

/// One Citus call, in the order it must run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Step {
    /// `citus_update_node(nodeid, host, port)`
    UpdateNode {
        nodeid: i32,
        host: String,
        port: u16,
    },
    /// `citus_add_node(host, port, groupid, noderole)`
    AddNode {
        host: String,
        port: u16,
        groupid: i32,
        noderole: String,
    },
    /// `citus_set_coordinator_host(host, port)`
    SetCoordinatorHost { host: String, port: u16 },
    /// `citus_activate_node(host, port)`
    ActivateNode { host: String, port: u16 },
}

/// What a change does to a row (JSON: the quoted names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "add")]
    Add,
    #[serde(rename = "update")]
    Update,
    #[serde(rename = "activate")]
    Activate,
    #[serde(rename = "register coordinator")]
    RegisterCoordinator,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Add => "add",
            Action::Update => "update",
            Action::Activate => "activate",
            Action::RegisterCoordinator => "register coordinator",
        })
    }
}

/// A change as people read it: one row, from what to what, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub scope: String,
    pub groupid: i32,
    pub nodeid: Option<i32>,
    pub noderole: String,
    pub now: Option<String>,
    pub wanted: String,
    pub action: Action,
    pub reason: String,
}

impl Change {
    /// One line for summaries: `postgres primary row 2 10.0.0.3:5432 -> 10.0.0.4:5432`.
    pub fn describe(&self, db: &str) -> String {
        format!(
            "{db} {} row {} {} -> {}",
            self.noderole,
            self.nodeid
                .map(|n| n.to_string())
                .unwrap_or_else(|| "(new)".into()),
            self.now.as_deref().unwrap_or("-"),
            self.wanted
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DatabasePlan {
    pub database: String,
    pub changes: Vec<Change>,
    pub steps: Vec<Step>,
}

/// A group that will not be written, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub scope: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetadataPlan {
    pub databases: Vec<DatabasePlan>,
    /// `citus.use_secondary_nodes` on coordinator members (applied after the rows).
    pub settings: Vec<SettingChange>,
    pub refused: Vec<Refusal>,
    /// Rows left alone on purpose (e.g. an unknown secondary), for the operator to look at.
    pub notes: Vec<String>,
}

impl MetadataPlan {
    pub fn is_empty(&self) -> bool {
        self.databases.iter().all(|d| d.steps.is_empty()) && self.settings.is_empty()
    }
    pub fn change_count(&self) -> usize {
        self.databases
            .iter()
            .map(|d| d.changes.len())
            .sum::<usize>()
            + self.settings.len()
    }
    /// What the plan does, one line per change: two plans that read the same do the same.
    pub fn summary(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .databases
            .iter()
            .flat_map(|d| d.changes.iter().map(|c| c.describe(&d.database)))
            .collect();
        out.extend(self.settings.iter().map(|s| {
            format!(
                "{} citus.use_secondary_nodes {} -> {}",
                s.member, s.now, s.wanted
            )
        }));
        out
    }
}

/// Plan every database. `views` follows `topo.groups`; `tables` holds each database's rows.
/// `only`: restrict to these scopes (all when empty).
pub fn plan_metadata(
    topo: &Topology,
    views: &[GroupView],
    tables: &[(String, Vec<DistNode>)],
    only: &[String],
    refused: &[Refusal],
) -> MetadataPlan {
    let mut plan = MetadataPlan {
        refused: refused.to_vec(),
        ..Default::default()
    };
    for (g, view) in topo.groups.iter().zip(views) {
        if !only.is_empty() && !only.contains(&g.scope) {
            continue;
        }
        if g.vip.is_none()
            && !plan.refused.iter().any(|r| r.scope == g.scope)
            && let Err(why) = view.single_leader()
        {
            plan.refused.push(Refusal {
                scope: g.scope.clone(),
                reason: why,
            });
        }
    }
    for (db, rows) in tables {
        let mut dbp = DatabasePlan {
            database: db.clone(),
            ..Default::default()
        };
        let mut updates: Vec<(i32, Endpoint, Endpoint)> = Vec::new();
        let mut tail: Vec<Step> = Vec::new();
        for (g, view) in topo.groups.iter().zip(views) {
            if (!only.is_empty() && !only.contains(&g.scope))
                || plan.refused.iter().any(|r| r.scope == g.scope)
            {
                continue;
            }
            let mine: Vec<&DistNode> = rows.iter().filter(|r| r.groupid == g.group_id).collect();
            let wanted = wanted_rows(g, view);
            group_changes(
                db,
                g,
                &wanted,
                &mine,
                &mut dbp.changes,
                &mut updates,
                &mut tail,
                &mut plan.notes,
            );
        }
        // Another spelling of an inventory address is that address: say so, change nothing.
        for r in rows {
            if let Some(same) = &r.same_as
                && !dbp.changes.iter().any(|c| c.nodeid == Some(r.nodeid))
            {
                plan.notes.push(format!(
                    "{db}: row {} names {}:{}, the same server as {same}:{} in the inventory: left as it is",
                    r.nodeid, r.nodename, r.nodeport, r.nodeport
                ));
            }
        }
        match order_updates(rows, &updates) {
            Ok(steps) => {
                // Adds first: Citus refuses citus_add_node while a metadata worker is out of
                // sync, and every citus_update_node marks them so until the transaction ends.
                dbp.steps = tail;
                dbp.steps.extend(steps);
            }
            Err(why) => {
                plan.refused.push(Refusal {
                    scope: "*".into(),
                    reason: format!("{db}: {why}"),
                });
                dbp.changes.clear();
            }
        }
        plan.databases.push(dbp);
    }
    plan.notes.sort();
    plan.notes.dedup();
    plan
}

/// What a group's rows must be: the primary address, and the secondary address when fixed.
struct Wanted {
    primary: Endpoint,
    /// VIP mode: the RO VIP. Direct mode: None (secondaries are the replicas, whichever).
    secondary: Option<Endpoint>,
    why: String,
    direct: bool,
}

fn wanted_rows(g: &Group, view: &GroupView) -> Wanted {
    match &g.vip {
        Some(v) => Wanted {
            primary: v.rw.clone(),
            secondary: v.ro.clone(),
            why: "VIP from the inventory".into(),
            direct: false,
        },
        None => {
            let l = view.single_leader().expect("refused groups are skipped");
            Wanted {
                primary: l.endpoint.clone(),
                secondary: None,
                why: format!("{} leads {}", l.name, g.scope),
                direct: true,
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn group_changes(
    db: &str,
    g: &Group,
    w: &Wanted,
    rows: &[&DistNode],
    changes: &mut Vec<Change>,
    updates: &mut Vec<(i32, Endpoint, Endpoint)>,
    tail: &mut Vec<Step>,
    notes: &mut Vec<String>,
) {
    let change =
        |row: Option<&DistNode>, role: &str, wanted: &Endpoint, action: Action, reason: String| {
            Change {
                scope: g.scope.clone(),
                groupid: g.group_id,
                nodeid: row.map(|r| r.nodeid),
                noderole: role.into(),
                now: row.map(|r| format!("{}:{}", r.nodename, r.nodeport)),
                wanted: wanted.to_string(),
                action,
                reason,
            }
        };
    let primaries: Vec<&&DistNode> = rows.iter().filter(|r| r.is_primary()).collect();
    let secondaries: Vec<&&DistNode> = rows.iter().filter(|r| r.is_secondary()).collect();

    // The primary row.
    let old_primary = primaries.first().and_then(|p| p.endpoint());
    match primaries.first() {
        None if g.group_id == COORDINATOR_GROUP => {
            changes.push(change(
                None,
                "primary",
                &w.primary,
                Action::RegisterCoordinator,
                w.why.clone(),
            ));
            tail.push(Step::SetCoordinatorHost {
                host: w.primary.host.clone(),
                port: w.primary.port,
            });
        }
        None => {
            changes.push(change(
                None,
                "primary",
                &w.primary,
                Action::Add,
                w.why.clone(),
            ));
            tail.push(Step::AddNode {
                host: w.primary.host.clone(),
                port: w.primary.port,
                groupid: g.group_id,
                noderole: "primary".into(),
            });
        }
        Some(p) if p.endpoint().as_ref() != Some(&w.primary) => {
            changes.push(change(
                Some(p),
                "primary",
                &w.primary,
                Action::Update,
                w.why.clone(),
            ));
            updates.push((
                p.nodeid,
                p.endpoint()
                    .unwrap_or_else(|| Endpoint::new(&p.nodename, 0)),
                w.primary.clone(),
            ));
        }
        Some(p) if !p.isactive => {
            changes.push(change(
                Some(p),
                "primary",
                &w.primary,
                Action::Activate,
                "isactive = false".into(),
            ));
            tail.push(Step::ActivateNode {
                host: w.primary.host.clone(),
                port: w.primary.port,
            });
        }
        Some(_) => {}
    }
    for extra in primaries.iter().skip(1) {
        notes.push(format!(
            "{db}: {}: extra primary row {} left alone",
            g.scope, extra.nodeid
        ));
    }

    // Secondary rows.
    if w.direct {
        for s in &secondaries {
            let at = s.endpoint();
            if at.as_ref() == Some(&w.primary) {
                // The new leader's address is held by a secondary: swap it onto the old leader.
                match old_primary.as_ref().filter(|o| g.member_at(o).is_some()) {
                    Some(old) => {
                        changes.push(change(Some(s), "secondary", old, Action::Update, "swap with the primary row".into()));
                        updates.push((s.nodeid, at.clone().unwrap(), old.clone()));
                    }
                    None => notes.push(format!(
                        "{db}: {}: secondary row {} holds the leader's address and there is no old leader to swap it with: remove it (citus_remove_node)",
                        g.scope, s.nodeid
                    )),
                }
            } else if at.as_ref().and_then(|a| g.member_at(a)).is_none() {
                notes.push(format!(
                    "{db}: {}: secondary row {} ({}:{}) is not a member: left alone",
                    g.scope, s.nodeid, s.nodename, s.nodeport
                ));
            }
        }
    } else if let Some(ro) = &w.secondary {
        match secondaries.first() {
            None => {
                changes.push(change(None, "secondary", ro, Action::Add, w.why.clone()));
                tail.push(Step::AddNode {
                    host: ro.host.clone(),
                    port: ro.port,
                    groupid: g.group_id,
                    noderole: "secondary".into(),
                });
            }
            Some(s) if s.endpoint().as_ref() != Some(ro) => {
                changes.push(change(
                    Some(s),
                    "secondary",
                    ro,
                    Action::Update,
                    w.why.clone(),
                ));
                updates.push((
                    s.nodeid,
                    s.endpoint()
                        .unwrap_or_else(|| Endpoint::new(&s.nodename, 0)),
                    ro.clone(),
                ));
            }
            Some(_) => {}
        }
        for extra in secondaries.iter().skip(1) {
            notes.push(format!(
                "{db}: {}: extra secondary row {} left alone",
                g.scope, extra.nodeid
            ));
        }
    }
}

/// The rows a database will hold once `steps` ran (to plan what depends on the result).
pub fn rows_after(rows: &[DistNode], steps: &[Step]) -> Vec<DistNode> {
    let mut out = rows.to_vec();
    let mut next_id = rows.iter().map(|r| r.nodeid).max().unwrap_or(0) + 1;
    let mut add = |out: &mut Vec<DistNode>, host: &str, port: u16, groupid: i32, role: &str| {
        out.push(DistNode {
            nodeid: next_id,
            groupid,
            nodename: host.to_owned(),
            nodeport: i32::from(port),
            noderole: role.to_owned(),
            nodecluster: "default".into(),
            isactive: true,
            hasmetadata: role == "primary",
            metadatasynced: role == "primary",
            shouldhaveshards: groupid != COORDINATOR_GROUP,
            same_as: None,
        });
        next_id += 1;
    };
    for step in steps {
        match step {
            Step::UpdateNode { nodeid, host, port } => {
                if let Some(r) = out.iter_mut().find(|r| r.nodeid == *nodeid) {
                    r.nodename = host.clone();
                    r.nodeport = i32::from(*port);
                    r.same_as = None;
                }
            }
            Step::AddNode {
                host,
                port,
                groupid,
                noderole,
            } => add(&mut out, host, *port, *groupid, noderole),
            Step::SetCoordinatorHost { host, port } => {
                match out
                    .iter_mut()
                    .find(|r| r.groupid == COORDINATOR_GROUP && r.is_primary())
                {
                    Some(r) => {
                        r.nodename = host.clone();
                        r.nodeport = i32::from(*port);
                        r.same_as = None;
                    }
                    None => add(&mut out, host, *port, COORDINATOR_GROUP, "primary"),
                }
            }
            Step::ActivateNode { host, port } => {
                if let Some(r) = out
                    .iter_mut()
                    .find(|r| r.nodename == *host && r.nodeport == i32::from(*port))
                {
                    r.isactive = true;
                }
            }
        }
    }
    out
}

/// Order `citus_update_node` calls so that no statement collides with a row's current address:
/// rows whose address another row needs move to a placeholder first.
fn order_updates(
    rows: &[DistNode],
    updates: &[(i32, Endpoint, Endpoint)],
) -> Result<Vec<Step>, String> {
    let moving: Vec<i32> = updates.iter().map(|u| u.0).collect();
    for (id, _, to) in updates {
        if updates.iter().filter(|u| &u.2 == to).count() > 1 {
            return Err(format!("two rows would both point at {to}"));
        }
        if let Some(holder) = rows
            .iter()
            .find(|r| r.nodeid != *id && r.endpoint().as_ref() == Some(to))
            && !moving.contains(&holder.nodeid)
        {
            return Err(format!(
                "{to} is already registered as row {} (group {}, {}): Citus allows one row per address",
                holder.nodeid, holder.groupid, holder.noderole
            ));
        }
    }
    // Emit an update as soon as its target is free; break a cycle (a swap) by moving one row
    // to a placeholder.
    let mut at: Vec<(i32, Endpoint)> = updates.iter().map(|u| (u.0, u.1.clone())).collect();
    let mut pending: Vec<&(i32, Endpoint, Endpoint)> = updates.iter().collect();
    let mut steps = Vec::new();
    while !pending.is_empty() {
        let free = pending
            .iter()
            .position(|(id, _, to)| !at.iter().any(|(other, a)| other != id && a == to));
        match free {
            Some(i) => {
                let (id, _, to) = pending.remove(i);
                steps.push(Step::UpdateNode {
                    nodeid: *id,
                    host: to.host.clone(),
                    port: to.port,
                });
                at.retain(|(other, _)| other != id);
            }
            None => {
                // Every pending target is held by another pending row: park the holder of the first.
                let to = &pending[0].2;
                let (holder, addr) = at.iter_mut().find(|(_, a)| a == to).expect("a holder");
                let parked = Endpoint::new(format!("{}-citusctl-{holder}", addr.host), addr.port);
                steps.push(Step::UpdateNode {
                    nodeid: *holder,
                    host: parked.host.clone(),
                    port: parked.port,
                });
                *addr = parked;
            }
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::group_view;
    use crate::health::tests::{doc, group, probe};
    use crate::topology::{GroupKind, Vips};

    use crate::citus::test_row as row;

    fn topo(groups: Vec<Group>) -> Topology {
        Topology::for_tests(groups)
    }

    /// cn led by pg1; wk1 led by `wk1_leader`.
    fn cluster(wk1_leader: &str) -> (Topology, Vec<GroupView>) {
        let cn = group("cn", 0, &[("pg1", "10.0.0.1"), ("pg2", "10.0.0.2")]);
        let wk1 = group("wk1", 1, &[("pg3", "10.0.0.3"), ("pg4", "10.0.0.4")]);
        let cnd = doc(&[
            ("pg1", "leader", "running"),
            ("pg2", "replica", "streaming"),
        ]);
        let other = if wk1_leader == "pg3" { "pg4" } else { "pg3" };
        let wkd = doc(&[
            (wk1_leader, "leader", "running"),
            (other, "replica", "streaming"),
        ]);
        let views = vec![
            group_view(&cn, &probe("cn", vec![("pg1", Ok(cnd))])),
            group_view(&wk1, &probe("wk1", vec![("pg3", Ok(wkd))])),
        ];
        (topo(vec![cn, wk1]), views)
    }

    fn steps(p: &MetadataPlan) -> Vec<Step> {
        p.databases[0].steps.clone()
    }

    fn upd(nodeid: i32, host: &str) -> Step {
        Step::UpdateNode {
            nodeid,
            host: host.into(),
            port: 5432,
        }
    }

    #[test]
    fn nothing_to_do_when_rows_follow_the_leaders() {
        let (t, v) = cluster("pg3");
        let rows = vec![
            row(1, 0, "10.0.0.1", "primary"),
            row(2, 1, "10.0.0.3", "primary"),
        ];
        let p = plan_metadata(&t, &v, &[("postgres".into(), rows)], &[], &[]);
        assert!(p.is_empty(), "{p:?}");
        assert!(p.refused.is_empty());
    }

    /// Rows that name members by host name (marked by `crate::addresses` as the inventory's
    /// IP addresses) are those members: not rewritten for their spelling, and the plan says so.
    #[test]
    fn a_row_named_by_host_name_is_that_member_and_stays_as_it_is() {
        let named = |id, g, host: &str, ip: &str, role| {
            let mut r = row(id, g, host, role);
            r.same_as = Some(ip.to_owned());
            r
        };
        let (t, v) = cluster("pg3");
        let rows = vec![
            named(1, 0, "pg1.example", "10.0.0.1", "primary"),
            named(2, 1, "pg3.example", "10.0.0.3", "primary"),
        ];
        let p = plan_metadata(&t, &v, &[("postgres".into(), rows.clone())], &[], &[]);
        assert!(steps(&p).is_empty(), "{p:?}");
        assert!(
            p.notes.iter().any(|n| n.contains(
                "row 2 names pg3.example:5432, the same server as 10.0.0.3:5432 in the inventory: left as it is"
            )),
            "{:?}",
            p.notes
        );
        // After a switchover it is rewritten, in the inventory's spelling.
        let (t, v) = cluster("pg4");
        let p = plan_metadata(&t, &v, &[("postgres".into(), rows)], &[], &[]);
        assert_eq!(steps(&p), vec![upd(2, "10.0.0.4")]);
    }

    #[test]
    fn stale_primary_follows_the_new_leader() {
        let (t, v) = cluster("pg4");
        let rows = vec![
            row(1, 0, "10.0.0.1", "primary"),
            row(2, 1, "10.0.0.3", "primary"),
        ];
        let p = plan_metadata(&t, &v, &[("postgres".into(), rows)], &[], &[]);
        assert_eq!(steps(&p), vec![upd(2, "10.0.0.4")]);
        let c = &p.databases[0].changes[0];
        assert_eq!(
            (c.now.as_deref(), c.wanted.as_str(), c.action),
            (Some("10.0.0.3:5432"), "10.0.0.4:5432", Action::Update)
        );
    }

    #[test]
    fn primary_and_secondary_swap_through_a_placeholder() {
        let (t, v) = cluster("pg4");
        let rows = vec![
            row(1, 0, "10.0.0.1", "primary"),
            row(2, 1, "10.0.0.3", "primary"),
            row(13, 1, "10.0.0.4", "secondary"),
        ];
        let p = plan_metadata(&t, &v, &[("postgres".into(), rows)], &[], &[]);
        // Exactly the order observed to work on Citus 13.2 (reference §4).
        assert_eq!(
            steps(&p),
            vec![
                upd(13, "10.0.0.4-citusctl-13"),
                upd(2, "10.0.0.4"),
                upd(13, "10.0.0.3")
            ]
        );
    }

    #[test]
    fn missing_rows_are_added_and_the_coordinator_registered() {
        let (t, v) = cluster("pg3");
        let p = plan_metadata(&t, &v, &[("postgres".into(), vec![])], &[], &[]);
        assert_eq!(
            steps(&p),
            vec![
                Step::SetCoordinatorHost {
                    host: "10.0.0.1".into(),
                    port: 5432
                },
                Step::AddNode {
                    host: "10.0.0.3".into(),
                    port: 5432,
                    groupid: 1,
                    noderole: "primary".into()
                },
            ]
        );
    }

    #[test]
    fn a_group_without_a_leader_is_refused_and_others_go_on() {
        let (t, mut v) = cluster("pg4");
        let wk1 = t.group_by_scope("wk1").unwrap();
        let d = doc(&[("pg3", "replica", "stopped"), ("pg4", "replica", "running")]);
        v[1] = group_view(wk1, &probe("wk1", vec![("pg3", Ok(d))]));
        let rows = vec![
            row(1, 0, "10.0.0.2", "primary"),
            row(2, 1, "10.0.0.3", "primary"),
        ];
        let p = plan_metadata(&t, &v, &[("postgres".into(), rows)], &[], &[]);
        assert_eq!(
            p.refused,
            vec![Refusal {
                scope: "wk1".into(),
                reason: "wk1 has no leader".into()
            }]
        );
        assert_eq!(steps(&p), vec![upd(1, "10.0.0.1")]);
    }

    #[test]
    fn vip_rows_are_repaired_not_moved() {
        let (mut t, v) = cluster("pg4");
        t.groups[1].vip = Some(Vips {
            rw: Endpoint::new("10.0.1.1", 5432),
            ro: Some(Endpoint::new("10.0.1.2", 5432)),
        });
        assert_eq!(t.groups[1].kind, GroupKind::Worker);
        // Right rows: nothing to do whoever leads.
        let good = vec![
            row(1, 0, "10.0.0.1", "primary"),
            row(2, 1, "10.0.1.1", "primary"),
            row(3, 1, "10.0.1.2", "secondary"),
        ];
        assert!(plan_metadata(&t, &v, &[("postgres".into(), good)], &[], &[]).is_empty());
        // Edited primary, missing secondary.
        let bad = vec![
            row(1, 0, "10.0.0.1", "primary"),
            row(2, 1, "10.0.0.3", "primary"),
        ];
        let p = plan_metadata(&t, &v, &[("postgres".into(), bad)], &[], &[]);
        assert_eq!(
            steps(&p),
            vec![
                Step::AddNode {
                    host: "10.0.1.2".into(),
                    port: 5432,
                    groupid: 1,
                    noderole: "secondary".into()
                },
                upd(2, "10.0.1.1")
            ]
        );
    }

    #[test]
    fn rows_after_shows_the_result_of_a_plan() {
        let (t, v) = cluster("pg4");
        let rows = vec![
            row(1, 0, "10.0.0.1", "primary"),
            row(2, 1, "10.0.0.3", "primary"),
            row(13, 1, "10.0.0.4", "secondary"),
        ];
        let p = plan_metadata(&t, &v, &[("postgres".into(), rows.clone())], &[], &[]);
        let after = rows_after(&rows, &p.databases[0].steps);
        let got: Vec<(i32, &str, &str)> = after
            .iter()
            .map(|r| (r.nodeid, r.nodename.as_str(), r.noderole.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "10.0.0.1", "primary"),
                (2, "10.0.0.4", "primary"),
                (13, "10.0.0.3", "secondary")
            ]
        );
        // And the plan for the result is empty.
        assert!(plan_metadata(&t, &v, &[("postgres".into(), after)], &[], &[]).is_empty());
    }

    #[test]
    fn an_address_held_by_another_group_is_refused() {
        let (t, v) = cluster("pg4");
        let rows = vec![
            row(1, 0, "10.0.0.1", "primary"),
            row(2, 1, "10.0.0.3", "primary"),
            row(9, 7, "10.0.0.4", "primary"),
        ];
        let p = plan_metadata(&t, &v, &[("postgres".into(), rows)], &[], &[]);
        assert!(p.is_empty());
        assert!(
            p.refused[0]
                .reason
                .contains("10.0.0.4:5432 is already registered as row 9 (group 7, primary)"),
            "{:?}",
            p.refused
        );
    }
}
