//! Gathering for `check` (and `version`): every member's own answers, where each VIP lands,
//! each worker leader's `pg_dist_node`, and Citus's own checks on the coordinator leader, all
//! at once, each bounded. Reads only; `crate::doctor` judges.

use futures::future::join_all;

use crate::citus::{self, CitusError};
use crate::doctor::{CitusAnswer, Gathered, HealthRow, MemberSeen, VipSeen};
use crate::health::{GroupView, group_views};
use crate::member_sql;
use crate::observe::{ClusterProbe, MetadataProbe};
use crate::patroni::{ApiError, PatroniClient, PatroniStatus};
use crate::pg::{self, PgError, PgParams};
use crate::topology::{Endpoint, GroupKind, Topology};

/// How long Citus may try to reach a node on our behalf (its default is 30 s).
const CITUS_CONNECT_MS: u32 = 3000;

/// Members whose reachability one coordinator session checks (one after the other).
const REACH_PER_SESSION: usize = 8;

/// Every inventory member's own SQL answers, at once.
pub async fn member_facts(topo: &Topology, pg: &PgParams) -> Vec<MemberSeen> {
    let db = &topo.databases[0];
    let limit = pg.connect_timeout + 2 * pg::READ_LIMIT;
    let all = topo.groups.iter().flat_map(|g| {
        g.members.iter().map(move |m| async move {
            let what = format!("PostgreSQL at {}", m.pg);
            let sql = pg::bounded(limit, &what, member_sql::facts(pg, &m.pg, db))
                .await
                .map_err(|e| e.to_string());
            MemberSeen {
                scope: g.scope.clone(),
                name: m.name.clone(),
                endpoint: m.pg.clone(),
                sql,
            }
        })
    });
    join_all(all).await
}

/// Every inventory member's `GET /patroni`, at once: (scope, member, answer).
pub async fn patroni_statuses(
    topo: &Topology,
    client: &PatroniClient,
) -> Vec<(String, String, Result<PatroniStatus, ApiError>)> {
    let all = topo.groups.iter().flat_map(|g| {
        g.members.iter().map(move |m| async move {
            (
                g.scope.clone(),
                m.name.clone(),
                client.patroni_status(&m.api).await,
            )
        })
    });
    join_all(all).await
}

/// Everything `check` judges; `probe` is what `observe` saw (Patroni and the coordinator's rows).
pub async fn gather(topo: &Topology, pg: &PgParams, probe: &ClusterProbe) -> Gathered {
    let views = group_views(topo, &probe.groups);
    let coordinator_rows: Vec<(String, Vec<citus::DistNode>)> = match &probe.metadata {
        MetadataProbe::Read { databases, .. } => databases
            .iter()
            .filter_map(|(db, r)| r.as_ref().ok().map(|m| (db.clone(), m.nodes.clone())))
            .collect(),
        MetadataProbe::NoLeader(_) => vec![],
    };
    let cn_leader = views
        .first()
        .and_then(|v| v.single_leader().ok())
        .map(|m| m.endpoint.clone());
    let (members, vips, worker_rows, node_health, reach) = tokio::join!(
        member_facts(topo, pg),
        vip_landings(topo, pg),
        worker_rows(topo, pg, &views, &coordinator_rows),
        node_health(topo, pg, cn_leader.as_ref()),
        reach(topo, pg, cn_leader.as_ref()),
    );
    Gathered {
        views,
        members,
        vips,
        coordinator_rows,
        worker_rows,
        node_health,
        reach,
    }
}

async fn vip_landings(topo: &Topology, pg: &PgParams) -> Vec<VipSeen> {
    let db = &topo.databases[0];
    let limit = pg.connect_timeout + pg::READ_LIMIT;
    let all = topo.groups.iter().flat_map(|g| {
        let v = g.vip.as_ref();
        let rw = v.map(|v| ("rw", v.rw.clone()));
        let ro = v.and_then(|v| v.ro.clone().map(|e| ("ro", e)));
        rw.into_iter().chain(ro).map(move |(which, ep)| async move {
            let landing = pg::bounded(
                limit,
                &format!("the VIP {ep}"),
                member_sql::landing(pg, &ep, db),
            )
            .await
            .map_err(|e| e.to_string());
            VipSeen {
                scope: g.scope.clone(),
                which,
                endpoint: ep,
                landing,
            }
        })
    });
    join_all(all).await
}

/// Each worker group leader's own `pg_dist_node`, in every database the coordinator answered for.
async fn worker_rows(
    topo: &Topology,
    pg: &PgParams,
    views: &[GroupView],
    coordinator_rows: &[(String, Vec<citus::DistNode>)],
) -> Vec<(String, String, String, CitusAnswer<Vec<citus::DistNode>>)> {
    let limit = pg.connect_timeout + pg::READ_LIMIT;
    let mut futs = Vec::new();
    for (g, v) in topo.groups.iter().zip(views) {
        if g.kind != GroupKind::Worker {
            continue;
        }
        let Ok(leader) = v.single_leader() else {
            continue;
        };
        for (db, _) in coordinator_rows {
            let ep = leader.endpoint.clone();
            let name = leader.name.clone();
            futs.push(async move {
                let read = async {
                    let c = pg::connect(pg, &ep, db).await.map_err(|e| e.to_string())?;
                    match citus::read_metadata(&c, db).await {
                        Ok(m) => Ok(CitusAnswer::Got(m.nodes)),
                        Err(CitusError::NotInstalled(_)) => Ok(CitusAnswer::Absent(format!(
                            "no pg_dist_node on {name} (not a Citus node with metadata)"
                        ))),
                        Err(e) => Err(e.to_string()),
                    }
                };
                let answer = match tokio::time::timeout(limit, read).await {
                    Ok(Ok(a)) => a,
                    Ok(Err(e)) => CitusAnswer::Failed(e),
                    Err(_) => CitusAnswer::Failed(format!(
                        "PostgreSQL at {ep} did not answer within {}",
                        humantime::format_duration(limit)
                    )),
                };
                (g.scope.clone(), name, db.clone(), answer)
            });
        }
    }
    join_all(futs).await
}

/// A Citus function that may not exist: undefined function (42883) means "not there".
fn absent_or_failed<T>(e: PgError, function: &str) -> CitusAnswer<T> {
    if e.sqlstate() == Some("42883") {
        CitusAnswer::Absent(format!("no {function}() (not Citus, or Citus before 11.0)"))
    } else {
        CitusAnswer::Failed(e.to_string())
    }
}

async fn citus_session(
    pg: &PgParams,
    ep: &Endpoint,
    db: &str,
) -> Result<tokio_postgres::Client, PgError> {
    let c = pg::connect(pg, ep, db).await?;
    pg::within(
        pg::READ_LIMIT,
        &format!("PostgreSQL at {ep}"),
        c.batch_execute(&format!(
            "SET citus.node_connection_timeout = {CITUS_CONNECT_MS}; SET statement_timeout = {}",
            pg::READ_LIMIT.as_millis()
        )),
    )
    .await?;
    Ok(c)
}

async fn node_health(
    topo: &Topology,
    pg: &PgParams,
    cn: Option<&Endpoint>,
) -> Vec<(String, CitusAnswer<Vec<HealthRow>>)> {
    let Some(cn) = cn else { return vec![] };
    let limit = pg.connect_timeout + pg::READ_LIMIT;
    join_all(topo.databases.iter().map(|db| async move {
        let what = format!("PostgreSQL at {cn}");
        let run = async {
            let c = citus_session(pg, cn, db).await?;
            pg::within(
                limit,
                &what,
                c.query(
                    "SELECT from_nodename || ':' || from_nodeport, to_nodename || ':' || to_nodeport, result \
                     FROM pg_catalog.citus_check_cluster_node_health()",
                    &[],
                ),
            )
            .await
        };
        let answer = match pg::bounded(limit + pg.connect_timeout, &what, run).await {
            Ok(rows) => CitusAnswer::Got(
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect(),
            ),
            Err(e) => absent_or_failed(e, "citus_check_cluster_node_health"),
        };
        (db.clone(), answer)
    }))
    .await
}

/// `citus_check_connection_to_node()` from the coordinator leader to every member, at once.
async fn reach(
    topo: &Topology,
    pg: &PgParams,
    cn: Option<&Endpoint>,
) -> Vec<(String, String, CitusAnswer<bool>)> {
    let Some(cn) = cn else { return vec![] };
    let db = &topo.databases[0];
    let members: Vec<(&str, &str, &Endpoint)> = topo
        .groups
        .iter()
        .flat_map(|g| {
            g.members
                .iter()
                .map(move |m| (g.scope.as_str(), m.name.as_str(), &m.pg))
        })
        .collect();
    // A few members per session, the sessions at once: a handful of connections to the
    // coordinator rather than one per member, and a bounded wait when nodes do not answer
    // (Citus tries each for at most CITUS_CONNECT_MS).
    let chunks = members.chunks(REACH_PER_SESSION).map(|chunk| async move {
        let what = format!("PostgreSQL at {cn}");
        let limit = pg.connect_timeout
            + pg::READ_LIMIT
            + std::time::Duration::from_millis(u64::from(CITUS_CONNECT_MS) * chunk.len() as u64);
        let hosts: Vec<String> = chunk.iter().map(|(_, _, ep)| ep.host.clone()).collect();
        let ports: Vec<i32> = chunk.iter().map(|(_, _, ep)| i32::from(ep.port)).collect();
        let run = async {
            let c = citus_session(pg, cn, db).await?;
            // Each node in its own statement, so that statement_timeout bounds one node.
            let mut got = Vec::with_capacity(chunk.len());
            for (h, p) in hosts.iter().zip(&ports) {
                let r = pg::within(
                    limit,
                    &what,
                    c.query_one(
                        "SELECT pg_catalog.citus_check_connection_to_node($1, $2)",
                        &[h, p],
                    ),
                )
                .await?;
                got.push(r.get::<_, bool>(0));
            }
            Ok::<_, PgError>(got)
        };
        let answers: Vec<CitusAnswer<bool>> = match pg::bounded(limit, &what, run).await {
            Ok(got) => got.into_iter().map(CitusAnswer::Got).collect(),
            Err(e) => {
                let a = absent_or_failed::<bool>(e, "citus_check_connection_to_node");
                chunk.iter().map(|_| a.clone()).collect()
            }
        };
        chunk
            .iter()
            .zip(answers)
            .map(|((scope, name, _), a)| ((*scope).to_owned(), (*name).to_owned(), a))
            .collect::<Vec<_>>()
    });
    join_all(chunks).await.into_iter().flatten().collect()
}
