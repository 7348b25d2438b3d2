//! Planning `add-worker`: register one worker group in `pg_dist_node`, or say why not.
//!
//! Pure: the facts (who leads, what each VIP lands on) are gathered by the command and
//! passed in, so every refusal is unit-tested without a network.

use super::{Change, DatabasePlan, MetadataPlan, Step};
use crate::citus::DistNode;
use crate::member_sql::Landing;
use crate::topology::{COORDINATOR_GROUP, Endpoint, Group};

/// What the command observed before planning.
#[derive(Debug, Clone)]
pub struct AddWorkerFacts {
    /// The group's single leader (name, address), or why there is none.
    pub leader: Result<(String, Endpoint), String>,
    /// What the leader says about itself over SQL.
    pub leader_sql: Result<Landing, String>,
    /// Replicas Patroni calls healthy (name, address).
    pub replicas: Vec<(String, Endpoint)>,
    /// VIP mode: where a connection through each VIP lands.
    pub rw: Option<Result<Landing, String>>,
    pub ro: Option<Result<Landing, String>>,
    /// The coordinator's own address for a missing group 0 row (leader, or its RW VIP).
    pub coordinator: Endpoint,
}

pub fn plan_add_worker(
    g: &Group,
    facts: &AddWorkerFacts,
    tables: &[(String, Vec<DistNode>)],
    with_secondaries: bool,
) -> Result<MetadataPlan, String> {
    let (leader_name, leader_ep) = facts.leader.clone()?;
    let leader = facts
        .leader_sql
        .as_ref()
        .map_err(|e| format!("cannot connect to the leader {leader_name}: {e}"))?;
    if leader.in_recovery {
        return Err(format!(
            "the leader {leader_name} answers pg_is_in_recovery() = true (not promoted yet)"
        ));
    }

    let mut targets: Vec<(Endpoint, &'static str, String)> = Vec::new();
    match &g.vip {
        Some(v) => {
            let rw = facts
                .rw
                .as_ref()
                .expect("VIP facts are gathered in VIP mode");
            check_vip("RW", &v.rw, rw, leader, |l| {
                (!l.in_recovery)
                    .then_some(())
                    .ok_or_else(|| "a server in recovery (a replica), not the leader".to_owned())
            })?;
            targets.push((v.rw.clone(), "primary", "RW VIP".into()));
            if let (Some(ro_ep), Some(ro)) = (&v.ro, &facts.ro) {
                check_vip("RO", ro_ep, ro, leader, |l| {
                    if l.in_recovery || facts.replicas.is_empty() {
                        Ok(())
                    } else {
                        Err(format!(
                            "the leader although replica {} is up (it must prefer a replica)",
                            facts
                                .replicas
                                .iter()
                                .map(|r| r.0.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                })?;
                targets.push((ro_ep.clone(), "secondary", "RO VIP".into()));
            }
        }
        None => {
            targets.push((
                leader_ep.clone(),
                "primary",
                format!("{leader_name} leads {}", g.scope),
            ));
            if with_secondaries {
                for (n, ep) in &facts.replicas {
                    targets.push((ep.clone(), "secondary", format!("replica {n}")));
                }
            }
        }
    }

    let mut plan = MetadataPlan::default();
    for (db, rows) in tables {
        let mut dbp = DatabasePlan {
            database: db.clone(),
            ..Default::default()
        };
        if !rows.iter().any(|r| r.groupid == COORDINATOR_GROUP) {
            let c = &facts.coordinator;
            dbp.changes.push(change(
                g,
                None,
                "primary",
                c,
                crate::plan::Action::RegisterCoordinator,
                "the coordinator is not registered".into(),
                COORDINATOR_GROUP,
            ));
            dbp.steps.push(Step::SetCoordinatorHost {
                host: c.host.clone(),
                port: c.port,
            });
        }
        for (ep, role, why) in &targets {
            match rows.iter().find(|r| r.endpoint().as_ref() == Some(ep)) {
                Some(r) if r.groupid == g.group_id && r.noderole == *role => continue,
                Some(r) => {
                    return Err(format!(
                        "{db}: {ep} is already registered as row {} (group {}, {}); Citus allows one row per address",
                        r.nodeid, r.groupid, r.noderole
                    ));
                }
                None => {}
            }
            if *role == "primary"
                && let Some(p) = rows
                    .iter()
                    .find(|r| r.groupid == g.group_id && r.is_primary())
            {
                return Err(format!(
                    "{db}: group {} already has primary row {} at {}:{}; `citusctl resync` repoints it",
                    g.group_id, p.nodeid, p.nodename, p.nodeport
                ));
            }
            dbp.changes.push(change(
                g,
                None,
                role,
                ep,
                crate::plan::Action::Add,
                why.clone(),
                g.group_id,
            ));
            dbp.steps.push(Step::AddNode {
                host: ep.host.clone(),
                port: ep.port,
                groupid: g.group_id,
                noderole: (*role).into(),
            });
        }
        plan.databases.push(dbp);
    }
    Ok(plan)
}

fn change(
    g: &Group,
    nodeid: Option<i32>,
    role: &str,
    ep: &Endpoint,
    action: crate::plan::Action,
    reason: String,
    groupid: i32,
) -> Change {
    Change {
        scope: if groupid == COORDINATOR_GROUP {
            "(coordinator)".into()
        } else {
            g.scope.clone()
        },
        groupid,
        nodeid,
        noderole: role.into(),
        now: None,
        wanted: ep.to_string(),
        action,
        reason,
    }
}

/// A VIP must land on a member of this group (same system identifier) in the right role.
fn check_vip(
    which: &str,
    ep: &Endpoint,
    landed: &Result<Landing, String>,
    leader: &Landing,
    role_ok: impl Fn(&Landing) -> Result<(), String>,
) -> Result<(), String> {
    let l = landed
        .as_ref()
        .map_err(|e| format!("cannot connect through the {which} VIP {ep}: {e}"))?;
    if l.system_identifier != leader.system_identifier {
        return Err(format!(
            "the {which} VIP {ep} lands on a server of another cluster (system identifier {}, the group's is {})",
            l.system_identifier, leader.system_identifier
        ));
    }
    role_ok(l).map_err(|why| {
        let at = l
            .server_addr
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        format!("the {which} VIP {ep} lands on {why}{at}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::tests::group;
    use crate::topology::Vips;

    fn landing(in_recovery: bool, sysid: &str) -> Landing {
        Landing {
            in_recovery,
            system_identifier: sysid.into(),
            server_addr: None,
        }
    }

    use crate::citus::test_row as row;

    fn wk2_vip() -> Group {
        let mut g = group("wk2", 2, &[("pg5", "10.0.0.5"), ("pg6", "10.0.0.6")]);
        g.vip = Some(Vips {
            rw: Endpoint::new("10.0.1.20", 5432),
            ro: Some(Endpoint::new("10.0.1.21", 5432)),
        });
        g
    }

    fn facts(rw: Landing, ro: Landing) -> AddWorkerFacts {
        AddWorkerFacts {
            leader: Ok(("pg5".into(), Endpoint::new("10.0.0.5", 5432))),
            leader_sql: Ok(landing(false, "7001")),
            replicas: vec![("pg6".into(), Endpoint::new("10.0.0.6", 5432))],
            rw: Some(Ok(rw)),
            ro: Some(Ok(ro)),
            coordinator: Endpoint::new("10.0.0.1", 5432),
        }
    }

    fn cn_only() -> Vec<(String, Vec<DistNode>)> {
        vec![("postgres".into(), vec![row(1, 0, "10.0.0.1", "primary")])]
    }

    #[test]
    fn vip_mode_registers_rw_as_primary_and_ro_as_secondary() {
        let p = plan_add_worker(
            &wk2_vip(),
            &facts(landing(false, "7001"), landing(true, "7001")),
            &cn_only(),
            false,
        )
        .unwrap();
        assert_eq!(
            p.databases[0].steps,
            vec![
                Step::AddNode {
                    host: "10.0.1.20".into(),
                    port: 5432,
                    groupid: 2,
                    noderole: "primary".into()
                },
                Step::AddNode {
                    host: "10.0.1.21".into(),
                    port: 5432,
                    groupid: 2,
                    noderole: "secondary".into()
                },
            ]
        );
    }

    #[test]
    fn vip_on_the_wrong_role_or_cluster_is_refused() {
        let e = plan_add_worker(
            &wk2_vip(),
            &facts(landing(true, "7001"), landing(true, "7001")),
            &cn_only(),
            false,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "the RW VIP 10.0.1.20:5432 lands on a server in recovery (a replica), not the leader"
        );
        let e = plan_add_worker(
            &wk2_vip(),
            &facts(landing(false, "7001"), landing(false, "7001")),
            &cn_only(),
            false,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "the RO VIP 10.0.1.21:5432 lands on the leader although replica pg6 is up (it must prefer a replica)"
        );
        let e = plan_add_worker(
            &wk2_vip(),
            &facts(landing(false, "9999"), landing(true, "7001")),
            &cn_only(),
            false,
        )
        .unwrap_err();
        assert!(
            e.starts_with("the RW VIP 10.0.1.20:5432 lands on a server of another cluster"),
            "{e}"
        );
        // The RO VIP may fall back to the leader when no replica is up.
        let mut f = facts(landing(false, "7001"), landing(false, "7001"));
        f.replicas.clear();
        assert!(plan_add_worker(&wk2_vip(), &f, &cn_only(), false).is_ok());
    }

    #[test]
    fn idempotent_and_conflicts_are_refused_with_what_is_there() {
        let f = facts(landing(false, "7001"), landing(true, "7001"));
        let done = vec![(
            "postgres".into(),
            vec![
                row(1, 0, "10.0.0.1", "primary"),
                row(5, 2, "10.0.1.20", "primary"),
                row(6, 2, "10.0.1.21", "secondary"),
            ],
        )];
        assert!(
            plan_add_worker(&wk2_vip(), &f, &done, false)
                .unwrap()
                .is_empty()
        );
        let direct = vec![(
            "postgres".into(),
            vec![
                row(1, 0, "10.0.0.1", "primary"),
                row(3, 2, "10.0.0.5", "primary"),
            ],
        )];
        let e = plan_add_worker(&wk2_vip(), &f, &direct, false).unwrap_err();
        assert_eq!(
            e,
            "postgres: group 2 already has primary row 3 at 10.0.0.5:5432; `citusctl resync` repoints it"
        );
        let taken = vec![(
            "postgres".into(),
            vec![
                row(1, 0, "10.0.0.1", "primary"),
                row(4, 7, "10.0.1.20", "primary"),
            ],
        )];
        let e = plan_add_worker(&wk2_vip(), &f, &taken, false).unwrap_err();
        assert_eq!(
            e,
            "postgres: 10.0.1.20:5432 is already registered as row 4 (group 7, primary); Citus allows one row per address"
        );
    }

    #[test]
    fn direct_mode_registers_the_leader_and_optionally_replicas_and_the_coordinator() {
        let g = group("wk2", 2, &[("pg5", "10.0.0.5"), ("pg6", "10.0.0.6")]);
        let mut f = facts(landing(false, "7001"), landing(true, "7001"));
        f.rw = None;
        f.ro = None;
        let p = plan_add_worker(&g, &f, &[("postgres".into(), vec![])], true).unwrap();
        assert_eq!(
            p.databases[0].steps,
            vec![
                Step::SetCoordinatorHost {
                    host: "10.0.0.1".into(),
                    port: 5432
                },
                Step::AddNode {
                    host: "10.0.0.5".into(),
                    port: 5432,
                    groupid: 2,
                    noderole: "primary".into()
                },
                Step::AddNode {
                    host: "10.0.0.6".into(),
                    port: 5432,
                    groupid: 2,
                    noderole: "secondary".into()
                },
            ]
        );
        f.leader_sql = Ok(landing(true, "7001"));
        assert!(
            plan_add_worker(&g, &f, &[("postgres".into(), vec![])], false)
                .unwrap_err()
                .contains("not promoted yet")
        );
    }
}
