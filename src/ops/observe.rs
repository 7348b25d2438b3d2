//! The live state a write may be based on: every group's Patroni view and, on the coordinator's
//! single writable leader, every database's `pg_dist_node`. Anything less is a `Blocked` with the
//! exit status it calls for (3 unreachable, 4 refused) and why; nothing is written then.

use crate::citus::DistNode;
use crate::exit::Exit;
use crate::health::{GroupView, group_views};
use crate::observe::{MetadataProbe, observe};
use crate::patroni::PatroniClient;
use crate::pg::PgParams;
use crate::topology::{Endpoint, Topology};

/// Why nothing can be planned at all.
pub struct Blocked {
    pub exit: Exit,
    pub reason: String,
}

/// The live state a write may be based on.
pub struct Observed {
    pub views: Vec<GroupView>,
    pub tables: Vec<(String, Vec<DistNode>)>,
    /// The coordinator leader: its member name and PostgreSQL address.
    pub coordinator: (String, Endpoint),
}

/// Observe, and make sure the coordinator has one writable leader whose metadata we read.
pub async fn observe_for_write(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
) -> Result<Observed, Blocked> {
    let probe = observe(topo, client, pg).await;
    let views = group_views(topo, &probe.groups);
    let cn = &views[0];
    if cn.answered == 0 {
        return Err(Blocked {
            exit: Exit::Unreachable,
            reason: format!(
                "coordinator unreachable: no member of {} answers its REST API; nothing written",
                cn.scope
            ),
        });
    }
    let leader = match cn.single_leader() {
        Ok(l) => l,
        Err(why) => {
            return Err(Blocked {
                exit: Exit::Refused,
                reason: format!("{why}: nothing written"),
            });
        }
    };
    let MetadataProbe::Read { databases, .. } = &probe.metadata else {
        return Err(Blocked {
            exit: Exit::Refused,
            reason: "coordinator metadata not read: nothing written".into(),
        });
    };
    let mut tables = Vec::new();
    for (db, r) in databases {
        match r {
            Ok(m) if m.in_recovery => {
                return Err(Blocked {
                    exit: Exit::Refused,
                    reason: format!(
                        "coordinator leader {} answers pg_is_in_recovery() = true: nothing written",
                        leader.name
                    ),
                });
            }
            Ok(m) => tables.push((db.clone(), m.nodes.clone())),
            Err(e) => {
                return Err(Blocked {
                    exit: Exit::Unreachable,
                    reason: format!(
                        "cannot read pg_dist_node in {db} on {}: {e}; nothing written",
                        leader.name
                    ),
                });
            }
        }
    }
    Ok(Observed {
        coordinator: (leader.name.clone(), leader.endpoint.clone()),
        views,
        tables,
    })
}

/// The same, as (views, tables, coordinator leader's address), or why not.
pub async fn observe_parts(
    topo: &Topology,
    client: &PatroniClient,
    pg: &PgParams,
) -> Result<(Vec<GroupView>, Vec<(String, Vec<DistNode>)>, Endpoint), String> {
    observe_for_write(topo, client, pg)
        .await
        .map(|o| (o.views, o.tables, o.coordinator.1))
        .map_err(|b| b.reason)
}
