//! The metadata plan checked against live servers (a direct-mode primary row is only pointed at
//! a leader that answers writable), and the `citus.use_secondary_nodes` changes that go with it.

use crate::apply::read_setting;
use crate::citus::DistNode;
use crate::health::GroupView;
use crate::member_sql::is_writable;
use crate::pg::PgParams;
use crate::plan::{MetadataPlan, Refusal, plan_metadata, plan_use_secondary_nodes, rows_after};
use crate::topology::{Endpoint, Topology};

/// Plan, then make sure every direct-mode primary row we would point at a member points at a
/// writable one; a group whose leader is not writable (yet) is refused.
pub async fn plan_checked(
    topo: &Topology,
    views: &[GroupView],
    tables: &[(String, Vec<DistNode>)],
    pg: &PgParams,
    scopes: &[String],
) -> MetadataPlan {
    let first = plan_metadata(topo, views, tables, scopes, &[]);
    let mut targets: Vec<(String, Endpoint)> = Vec::new();
    for db in &first.databases {
        for c in db.changes.iter().filter(|c| c.noderole == "primary") {
            let g = topo.group_by_scope(&c.scope).expect("planned groups exist");
            if g.vip.is_none() {
                let ep = g
                    .members
                    .iter()
                    .find(|m| m.pg.to_string() == c.wanted)
                    .map(|m| m.pg.clone());
                if let Some(ep) = ep
                    && !targets.iter().any(|(s, _)| s == &c.scope)
                {
                    targets.push((c.scope.clone(), ep));
                }
            }
        }
    }
    if targets.is_empty() {
        return first;
    }
    let db = topo.databases[0].clone();
    let checks = futures::future::join_all(targets.iter().map(|(scope, ep)| {
        let db = db.clone();
        async move {
            match is_writable(pg, ep, &db).await {
                Ok(true) => None,
                Ok(false) => Some(Refusal { scope: scope.clone(), reason: format!("{scope}: the leader at {ep} answers pg_is_in_recovery() = true (not promoted yet)") }),
                Err(e) => Some(Refusal { scope: scope.clone(), reason: format!("{scope}: cannot check the leader: {e}") }),
            }
        }
    }))
    .await;
    let refused: Vec<Refusal> = checks.into_iter().flatten().collect();
    if refused.is_empty() {
        first
    } else {
        plan_metadata(topo, views, tables, scopes, &refused)
    }
}

/// Add the `citus.use_secondary_nodes` changes the coordinator members need.
pub async fn plan_settings(
    topo: &Topology,
    views: &[GroupView],
    tables: &[(String, Vec<DistNode>)],
    pg: &PgParams,
    scopes: &[String],
    plan: &mut MetadataPlan,
) {
    let cn = topo.coordinator();
    let skipped = !scopes.is_empty() && !scopes.contains(&cn.scope);
    if skipped || plan.refused.iter().any(|r| r.scope == cn.scope) {
        return;
    }
    let db = &topo.databases[0];
    let members: Vec<_> = views[0]
        .members
        .iter()
        .filter(|m| m.doc.as_ref().is_some_and(|d| d.is_healthy()))
        .collect();
    let current = futures::future::join_all(members.iter().map(|m| async move {
        (
            m.name.clone(),
            m.endpoint.clone(),
            read_setting(pg, &m.endpoint, db).await,
        )
    }))
    .await;
    // Judge the setting against the rows as they will be once this plan ran.
    let after: Vec<(String, Vec<DistNode>)> = tables
        .iter()
        .map(|(db, rows)| {
            let steps = plan
                .databases
                .iter()
                .find(|d| &d.database == db)
                .map(|d| d.steps.as_slice())
                .unwrap_or(&[]);
            (db.clone(), rows_after(rows, steps))
        })
        .collect();
    plan.settings = plan_use_secondary_nodes(&views[0], &current, &after, &mut plan.notes);
}
