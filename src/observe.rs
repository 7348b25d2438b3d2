//! Observe: gather the live state of the cluster, concurrently, with a timeout on every call.
//!
//! Every member's `GET /cluster` is fetched at once; then the coordinator leader's
//! `pg_dist_node` is read in every database at once. A member that does not answer costs at
//! most the Patroni timeout and never holds up the others. Nothing here decides anything:
//! `health` and `verdict` interpret what was seen.

use futures::future::join_all;

use crate::citus::{self, CitusError, Metadata};
use crate::patroni::{ApiError, ClusterDoc, PatroniClient};
use crate::pg::{self, PgParams};
use crate::topology::{Group, Topology};

/// One member's answer to `GET /cluster`.
#[derive(Debug, Clone)]
pub struct MemberProbe {
    pub name: String,
    pub answer: Result<ClusterDoc, ApiError>,
}

#[derive(Debug, Clone)]
pub struct GroupProbe {
    pub scope: String,
    pub members: Vec<MemberProbe>,
}

/// The coordinator metadata as read from its leader, per database.
#[derive(Debug, Clone)]
pub enum MetadataProbe {
    /// The coordinator group has no single leader to read from.
    NoLeader(String),
    Read {
        from: String,
        databases: Vec<(String, Result<Metadata, String>)>,
    },
}

#[derive(Debug, Clone)]
pub struct ClusterProbe {
    /// Same order as `Topology::groups`.
    pub groups: Vec<GroupProbe>,
    pub metadata: MetadataProbe,
}

pub async fn probe_groups(client: &PatroniClient, groups: &[&Group]) -> Vec<GroupProbe> {
    let futs = groups.iter().map(|g| async move {
        let members = join_all(g.members.iter().map(|m| async move {
            MemberProbe {
                name: m.name.clone(),
                answer: client.cluster(&m.api).await,
            }
        }))
        .await;
        GroupProbe {
            scope: g.scope.clone(),
            members,
        }
    });
    join_all(futs).await
}

/// Observe the whole cluster: Patroni first, then the coordinator leader's metadata.
pub async fn observe(topo: &Topology, client: &PatroniClient, pg: &PgParams) -> ClusterProbe {
    let all: Vec<&Group> = topo.groups.iter().collect();
    let groups = probe_groups(client, &all).await;
    let cn_view = crate::health::group_view(topo.coordinator(), &groups[0]);
    let metadata = match cn_view.single_leader() {
        Err(why) => MetadataProbe::NoLeader(why),
        Ok(leader) => {
            let member = leader.clone();
            let ep = leader.endpoint.clone();
            let reads = topo.databases.iter().map(|db| {
                let ep = ep.clone();
                async move {
                    let read = async {
                        let c = pg::connect(pg, &ep, db).await.map_err(|e| e.to_string())?;
                        let mut m = citus::read_metadata(&c, db)
                            .await
                            .map_err(|e: CitusError| e.to_string())?;
                        crate::addresses::mark_aliases(topo, &mut m.nodes).await;
                        Ok(m)
                    };
                    let limit = pg.connect_timeout + pg::READ_LIMIT;
                    let r = match tokio::time::timeout(limit, read).await {
                        Ok(r) => r,
                        Err(_) => Err(format!(
                            "PostgreSQL at {ep} did not answer within {}",
                            humantime::format_duration(limit)
                        )),
                    };
                    (db.clone(), r)
                }
            });
            MetadataProbe::Read {
                from: member.name,
                databases: join_all(reads).await,
            }
        }
    };
    ClusterProbe { groups, metadata }
}
