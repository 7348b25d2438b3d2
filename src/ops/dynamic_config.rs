//! Every scope's Patroni dynamic configuration (`GET /config`), from the first member of the
//! scope that answers. Read-only.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::patroni::PatroniClient;
use crate::topology::{Group, GroupKind, Topology};

/// One scope's dynamic configuration, or why no member gave it.
#[derive(Debug, Clone)]
pub struct ScopeConfig {
    pub scope: String,
    pub group: i32,
    pub kind: GroupKind,
    /// The member that answered.
    pub member: Option<String>,
    pub config: Result<serde_json::Value, String>,
}

/// The scopes named (all when none), in inventory order. Each scope's members are asked at
/// once; the first answer wins. Bounded: each call by the client's timeout, and the whole by
/// that timeout and a second.
pub async fn scope_configs(
    topo: &Topology,
    client: &PatroniClient,
    scopes: &[String],
) -> Vec<ScopeConfig> {
    let groups = topo
        .groups
        .iter()
        .filter(|g| scopes.is_empty() || scopes.contains(&g.scope));
    futures::future::join_all(groups.map(|g| first_answer(client, g))).await
}

async fn first_answer(client: &PatroniClient, g: &Group) -> ScopeConfig {
    let mut out = ScopeConfig {
        scope: g.scope.clone(),
        group: g.group_id,
        kind: g.kind,
        member: None,
        config: Err("no member".into()),
    };
    let ask = async {
        let mut pending: FuturesUnordered<_> = g
            .members
            .iter()
            .map(|m| async move { (m, client.config(&m.api).await) })
            .collect();
        let mut errors = Vec::new();
        while let Some((m, r)) = pending.next().await {
            match r {
                Ok(v) => return Ok((m.name.clone(), v)),
                Err(e) => errors.push(format!("{}: {e}", m.name)),
            }
        }
        errors.sort();
        Err(errors.join("; "))
    };
    let limit = client.timeout() + Duration::from_secs(1);
    match tokio::time::timeout(limit, ask).await {
        Ok(Ok((member, v))) => {
            out.member = Some(member);
            out.config = Ok(v);
        }
        Ok(Err(e)) => out.config = Err(e),
        Err(_) => {
            out.config = Err(format!(
                "no answer within {}",
                humantime::format_duration(limit)
            ))
        }
    }
    out
}
