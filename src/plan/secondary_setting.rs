//! Planning `citus.use_secondary_nodes` on the coordinator's members.
//!
//! The coordinator leader must run `never` (it takes writes). Its replicas run `always` when
//! every group with shards has an active `secondary` row, so read-only sessions there read from
//! worker replicas; otherwise `never` (with `always` and a group without a secondary, their
//! queries would fail). Pure; the values are read by the command.

use serde::Serialize;

use crate::citus::DistNode;
use crate::health::GroupView;
use crate::topology::Endpoint;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    pub member: String,
    #[serde(skip)]
    pub endpoint: Endpoint,
    pub now: String,
    pub wanted: String,
    pub reason: String,
}

/// `current`: (member name, address, its `SHOW citus.use_secondary_nodes` or why not read).
pub fn plan_use_secondary_nodes(
    cn: &GroupView,
    current: &[(String, Endpoint, Result<String, String>)],
    tables: &[(String, Vec<DistNode>)],
    notes: &mut Vec<String>,
) -> Vec<SettingChange> {
    let Ok(leader) = cn.single_leader() else {
        return vec![];
    };
    // Every group that holds shards needs an active secondary, in every database.
    let covered = !tables.is_empty()
        && tables.iter().all(|(_, rows)| {
            rows.iter()
                .filter(|r| r.is_primary() && r.shouldhaveshards)
                .all(|p| {
                    rows.iter()
                        .any(|s| s.groupid == p.groupid && s.is_secondary() && s.isactive)
                })
        });
    let mut out = Vec::new();
    for (name, ep, value) in current {
        let (wanted, reason) = if name == &leader.name {
            ("never", "the coordinator leader takes writes".to_owned())
        } else if covered {
            (
                "always",
                "every group with shards has a secondary row".to_owned(),
            )
        } else {
            (
                "never",
                "not every group with shards has a secondary row".to_owned(),
            )
        };
        match value {
            Ok(v) if v == wanted => {}
            Ok(v) => out.push(SettingChange {
                member: name.clone(),
                endpoint: ep.clone(),
                now: v.clone(),
                wanted: wanted.into(),
                reason,
            }),
            Err(e) => notes.push(format!("{name}: citus.use_secondary_nodes not read: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::group_view;
    use crate::health::tests::{doc, group, probe};

    fn row(nodeid: i32, groupid: i32, role: &str) -> DistNode {
        crate::citus::test_row(nodeid, groupid, &format!("10.0.{groupid}.{nodeid}"), role)
    }

    fn cn() -> GroupView {
        let g = group("cn", 0, &[("pg1", "10.0.0.1"), ("pg2", "10.0.0.2")]);
        group_view(
            &g,
            &probe(
                "cn",
                vec![(
                    "pg1",
                    Ok(doc(&[
                        ("pg1", "leader", "running"),
                        ("pg2", "replica", "streaming"),
                    ])),
                )],
            ),
        )
    }

    fn cur(pg1: &str, pg2: &str) -> Vec<(String, Endpoint, Result<String, String>)> {
        vec![
            (
                "pg1".into(),
                Endpoint::new("10.0.0.1", 5432),
                Ok(pg1.into()),
            ),
            (
                "pg2".into(),
                Endpoint::new("10.0.0.2", 5432),
                Ok(pg2.into()),
            ),
        ]
    }

    #[test]
    fn replicas_read_from_secondaries_only_when_every_group_has_one() {
        let mut notes = vec![];
        let with = vec![(
            "postgres".to_owned(),
            vec![
                row(1, 0, "primary"),
                row(2, 1, "primary"),
                row(3, 1, "secondary"),
            ],
        )];
        let ch = plan_use_secondary_nodes(&cn(), &cur("never", "never"), &with, &mut notes);
        assert_eq!(
            ch.iter()
                .map(|c| (c.member.as_str(), c.wanted.as_str()))
                .collect::<Vec<_>>(),
            [("pg2", "always")]
        );
        let without = vec![(
            "postgres".to_owned(),
            vec![
                row(1, 0, "primary"),
                row(2, 1, "primary"),
                row(3, 2, "primary"),
                row(4, 1, "secondary"),
            ],
        )];
        let ch = plan_use_secondary_nodes(&cn(), &cur("always", "always"), &without, &mut notes);
        assert_eq!(
            ch.iter()
                .map(|c| (c.member.as_str(), c.wanted.as_str()))
                .collect::<Vec<_>>(),
            [("pg1", "never"), ("pg2", "never")]
        );
        assert!(
            plan_use_secondary_nodes(&cn(), &cur("never", "always"), &with, &mut notes).is_empty()
        );
    }
}
