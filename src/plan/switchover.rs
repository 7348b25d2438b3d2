//! Planning a switchover or failover of one group: who may take over, and what the metadata
//! must look like afterwards. Pure; the command gathers the views and runs the plan.

use serde::Serialize;

use crate::health::{GroupView, MemberView};
use crate::patroni::Role;

/// One member considered as the new leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub name: String,
    pub role: String,
    pub state: String,
    pub lag: Option<u64>,
    /// None when eligible, else why not.
    pub refused: Option<String>,
}

/// Every non-leader member, best first, with why it may or may not take over.
pub fn candidates(view: &GroupView, max_lag: u64) -> Vec<Candidate> {
    let leader = view.single_leader().ok().map(|l| l.name.clone());
    let mut out: Vec<(u8, Candidate)> = view
        .members
        .iter()
        .filter(|m| Some(&m.name) != leader.as_ref())
        .map(|m| {
            let d = m.doc.as_ref();
            let lag = d.and_then(|d| d.lag_bytes());
            let c = Candidate {
                name: m.name.clone(),
                role: d.map(|d| d.role.clone()).unwrap_or_default(),
                state: d
                    .map(|d| d.state.clone())
                    .unwrap_or_else(|| "unreachable".into()),
                lag,
                refused: why_not(m, max_lag),
            };
            let rank = match m.role() {
                Some(Role::SyncStandby) => 0,
                Some(Role::QuorumStandby) => 1,
                _ => 2,
            };
            (rank, c)
        })
        .collect();
    out.sort_by(|a, b| {
        (
            a.1.refused.is_some(),
            a.0,
            a.1.lag.unwrap_or(u64::MAX),
            &a.1.name,
        )
            .cmp(&(
                b.1.refused.is_some(),
                b.0,
                b.1.lag.unwrap_or(u64::MAX),
                &b.1.name,
            ))
    });
    out.into_iter().map(|(_, c)| c).collect()
}

fn why_not(m: &MemberView, max_lag: u64) -> Option<String> {
    if !m.in_inventory {
        return Some("not in the inventory".into());
    }
    let Some(d) = &m.doc else {
        return Some("not known to Patroni".into());
    };
    if m.api_error.is_some() {
        return Some("its REST API does not answer".into());
    }
    if !d.role().is_replica() {
        return Some(format!("role {}", d.role));
    }
    if !d.is_healthy() {
        return Some(format!("state {}", d.state));
    }
    if d.tags
        .as_ref()
        .and_then(|t| t.get("nofailover"))
        .and_then(|v| v.as_bool())
        == Some(true)
    {
        return Some("tagged nofailover".into());
    }
    match d.lag_bytes() {
        None => Some("lag unknown".into()),
        Some(l) if l > max_lag => Some(format!("lag {l} bytes > {max_lag}")),
        Some(_) => None,
    }
}

/// The candidate to use: the requested one if eligible, else the best eligible one.
pub fn choose(view: &GroupView, requested: Option<&str>, max_lag: u64) -> Result<String, String> {
    let cands = candidates(view, max_lag);
    match requested {
        Some(name) => match cands.iter().find(|c| c.name == name) {
            None => Err(format!(
                "{name} is not a replica of {} (members: {})",
                view.scope,
                names(view)
            )),
            Some(Candidate {
                refused: Some(why), ..
            }) => Err(format!("{name} cannot take over: {why}")),
            Some(c) => Ok(c.name.clone()),
        },
        None => cands
            .iter()
            .find(|c| c.refused.is_none())
            .map(|c| c.name.clone())
            .ok_or_else(|| {
                format!(
                    "{} has no healthy candidate: {}",
                    view.scope,
                    summary(&cands)
                )
            }),
    }
}

fn names(view: &GroupView) -> String {
    view.members
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(c: &[Candidate]) -> String {
    if c.is_empty() {
        return "no replica".into();
    }
    c.iter()
        .map(|c| format!("{} ({})", c.name, c.refused.as_deref().unwrap_or("ok")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The group as it will look once `candidate` leads (to plan the metadata after the switch).
pub fn view_after(view: &GroupView, candidate: &str) -> GroupView {
    let mut v = view.clone();
    for m in &mut v.members {
        if let Some(d) = &mut m.doc {
            if m.name == candidate {
                d.role = "leader".into();
                d.state = "running".into();
            } else if d.role().is_leader() {
                d.role = "replica".into();
                d.state = "streaming".into();
            }
        }
    }
    v.leaders = vec![candidate.to_owned()];
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::group_view;
    use crate::health::tests::{group, probe};
    use crate::patroni::ClusterDoc;

    fn wk(members: &str) -> GroupView {
        let g = group(
            "wk1",
            1,
            &[
                ("pg3", "10.0.0.3"),
                ("pg4", "10.0.0.4"),
                ("pg9", "10.0.0.9"),
            ],
        );
        let d: ClusterDoc = serde_json::from_str(&format!(r#"{{"members":[{members}]}}"#)).unwrap();
        group_view(&g, &probe("wk1", vec![("pg3", Ok(d))]))
    }

    #[test]
    fn the_best_healthy_replica_is_chosen() {
        let v = wk(r#"{"name":"pg3","role":"leader","state":"running"},
                      {"name":"pg4","role":"replica","state":"streaming","lag":2048},
                      {"name":"pg9","role":"sync_standby","state":"streaming","lag":4096}"#);
        assert_eq!(choose(&v, None, 1 << 20).unwrap(), "pg9");
        assert_eq!(choose(&v, Some("pg4"), 1 << 20).unwrap(), "pg4");
        assert_eq!(
            choose(&v, Some("pg4"), 1000).unwrap_err(),
            "pg4 cannot take over: lag 2048 bytes > 1000"
        );
        assert_eq!(
            choose(&v, Some("pg3"), 1 << 20).unwrap_err(),
            "pg3 is not a replica of wk1 (members: pg3, pg4, pg9)"
        );
    }

    #[test]
    fn stopped_unknown_lag_and_nofailover_members_are_not_candidates() {
        let v = wk(r#"{"name":"pg3","role":"leader","state":"running"},
                      {"name":"pg4","role":"replica","state":"stopped","lag":"unknown"},
                      {"name":"pg9","role":"replica","state":"running","lag":0,"tags":{"nofailover":true}}"#);
        assert_eq!(
            choose(&v, None, 1 << 20).unwrap_err(),
            "wk1 has no healthy candidate: pg9 (tagged nofailover), pg4 (state stopped)"
        );
    }

    #[test]
    fn view_after_makes_the_candidate_lead() {
        let v = wk(r#"{"name":"pg3","role":"leader","state":"running"},
                      {"name":"pg4","role":"replica","state":"streaming","lag":0}"#);
        let after = view_after(&v, "pg4");
        assert_eq!(after.single_leader().unwrap().name, "pg4");
        assert_eq!(after.members[0].role(), Some(Role::Replica));
    }

    #[test]
    fn a_replica_outside_the_inventory_is_never_a_candidate() {
        let v = wk(r#"{"name":"pg3","role":"leader","state":"running"},
                      {"name":"pgx","role":"sync_standby","state":"streaming","lag":0}"#);
        let c = candidates(&v, 1 << 20);
        let x = c.iter().find(|c| c.name == "pgx").unwrap();
        assert_eq!(x.refused.as_deref(), Some("not in the inventory"));
        assert!(choose(&v, None, 1 << 20).is_err());
    }
}
