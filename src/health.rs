//! Interpreting what members said: one consistent view per group, its leader, its problems.
//!
//! Pure functions over probes, unit-tested without a network.

use crate::observe::GroupProbe;
use crate::patroni::{ApiError, MemberDoc, Role};
use crate::topology::{Endpoint, Group};

#[derive(Debug, Clone)]
pub struct MemberView {
    pub name: String,
    pub endpoint: Endpoint,
    pub in_inventory: bool,
    /// This member's own REST call failed.
    pub api_error: Option<ApiError>,
    /// The member as the group's DCS view describes it (None: not in that view).
    pub doc: Option<MemberDoc>,
}

impl MemberView {
    pub fn role(&self) -> Option<Role> {
        self.doc.as_ref().map(MemberDoc::role)
    }
}

#[derive(Debug, Clone)]
pub struct GroupView {
    pub scope: String,
    pub members: Vec<MemberView>,
    /// Distinct member names that any answering member reports as leader.
    pub leaders: Vec<String>,
    pub paused: bool,
    pub answered: usize,
    /// Patroni names a streaming replica's state `streaming` (3.0.4+; known for sure when the
    /// answer carries `scope`, 3.2+): a replica that is only `running` then does not stream.
    pub states_streaming: bool,
}

impl GroupView {
    /// The one leader, or why there is none to trust.
    pub fn single_leader(&self) -> Result<&MemberView, String> {
        if self.answered == 0 {
            return Err(format!("no member of {} answers its REST API", self.scope));
        }
        match self.leaders.as_slice() {
            [] => Err(format!("{} has no leader", self.scope)),
            [one] => match self.members.iter().find(|m| &m.name == one) {
                // Never written into pg_dist_node nor trusted: the inventory is the contract.
                Some(m) if !m.in_inventory => Err(format!(
                    "{}'s leader {one} is not in the inventory: add it, or switch the group back to a member that is",
                    self.scope
                )),
                Some(m) => Ok(m),
                None => Err(format!(
                    "{} reports leader {one}, which it does not list",
                    self.scope
                )),
            },
            many => Err(format!(
                "{} has {} leaders: {}",
                self.scope,
                many.len(),
                many.join(", ")
            )),
        }
    }

    /// Everything an operator should look at, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(why) = self.single_leader() {
            out.push(why);
        }
        for m in &self.members {
            if let Some(e) = &m.api_error {
                out.push(format!("{}: REST API {}", m.name, e));
            }
            match &m.doc {
                None if m.in_inventory && self.answered > 0 => out.push(format!(
                    "{}: not known to Patroni scope {}",
                    m.name, self.scope
                )),
                Some(d) if !d.is_healthy() => out.push(format!(
                    "{}: {} is {}",
                    m.name,
                    d.role().title().to_lowercase(),
                    d.state
                )),
                Some(d) => out.extend(self.not_replicating(d)),
                _ => {}
            }
            if !m.in_inventory {
                out.push(format!(
                    "{}: member of {} but not in the inventory",
                    m.name, self.scope
                ));
            }
        }
        out
    }
}

impl GroupView {
    /// A replica Patroni calls healthy that does not replicate: on an older timeline than its
    /// leader (it cannot take over), or only `running` where Patroni would say `streaming`.
    pub fn not_replicating(&self, d: &MemberDoc) -> Option<String> {
        if !d.role().is_replica() {
            return None;
        }
        let leader_tl = self
            .single_leader()
            .ok()
            .and_then(|l| l.doc.as_ref()?.timeline);
        if let (Some(tl), Some(ltl)) = (d.timeline, leader_tl)
            && tl < ltl
        {
            return Some(format!(
                "{}: replica on timeline {tl}, its leader on {ltl}: not replicating",
                d.name
            ));
        }
        (self.states_streaming && d.state == "running")
            .then(|| format!("{}: replica is running but not streaming", d.name))
    }
}

/// Every group's view, in the topology's order.
pub fn group_views(topo: &crate::topology::Topology, probes: &[GroupProbe]) -> Vec<GroupView> {
    topo.groups
        .iter()
        .zip(probes)
        .map(|(g, p)| group_view(g, p))
        .collect()
}

/// Merge the members' answers into one view of the group.
pub fn group_view(group: &Group, probe: &GroupProbe) -> GroupView {
    // An answer for another scope (Patroni 3.2+ names it) is no answer about this group.
    let wrong_scope = |d: &crate::patroni::ClusterDoc| {
        d.scope
            .as_ref()
            .filter(|s| **s != group.scope)
            .map(|s| ApiError::WrongScope {
                got: s.clone(),
                want: group.scope.clone(),
            })
    };
    let answers: Vec<(&str, &crate::patroni::ClusterDoc)> = probe
        .members
        .iter()
        .filter_map(|p| p.answer.as_ref().ok().map(|d| (p.name.as_str(), d)))
        .filter(|(_, d)| wrong_scope(d).is_none())
        .collect();
    // Prefer the view of a member that says it leads: it is the one that writes the DCS.
    let authoritative = answers
        .iter()
        .find(|(name, doc)| {
            doc.members
                .iter()
                .any(|m| m.name == *name && m.role().is_leader())
        })
        .or(answers.first())
        .map(|(_, d)| *d);

    let mut leaders: Vec<String> = Vec::new();
    for (_, doc) in &answers {
        for m in &doc.members {
            if m.role().is_leader() && !leaders.contains(&m.name) {
                leaders.push(m.name.clone());
            }
        }
    }
    // A member whose own /patroni role disagrees is caught by its own /cluster answer only when
    // it runs a separate DCS view; the union above is what makes two leaders visible.

    let mut members: Vec<MemberView> = group
        .members
        .iter()
        .map(|m| MemberView {
            name: m.name.clone(),
            endpoint: m.pg.clone(),
            in_inventory: true,
            api_error: probe
                .members
                .iter()
                .find(|p| p.name == m.name)
                .and_then(|p| match &p.answer {
                    Err(e) => Some(e.clone()),
                    Ok(d) => wrong_scope(d),
                }),
            doc: authoritative.and_then(|d| d.members.iter().find(|x| x.name == m.name).cloned()),
        })
        .collect();
    if let Some(doc) = authoritative {
        for extra in doc
            .members
            .iter()
            .filter(|x| group.member(&x.name).is_none())
        {
            members.push(MemberView {
                name: extra.name.clone(),
                endpoint: Endpoint::new(
                    extra.host.clone().unwrap_or_default(),
                    extra.port.unwrap_or(5432),
                ),
                in_inventory: false,
                api_error: None,
                doc: Some(extra.clone()),
            });
        }
    }
    GroupView {
        scope: group.scope.clone(),
        members,
        leaders,
        paused: authoritative.is_some_and(|d| d.pause),
        answered: answers.len(),
        states_streaming: authoritative.is_some_and(|d| d.scope.is_some()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::observe::MemberProbe;
    use crate::patroni::ClusterDoc;
    use crate::topology::{GroupKind, Member};

    pub fn group(scope: &str, id: i32, names: &[(&str, &str)]) -> Group {
        Group {
            scope: scope.into(),
            group_id: id,
            kind: if id == 0 {
                GroupKind::Coordinator
            } else {
                GroupKind::Worker
            },
            vip: None,
            members: names
                .iter()
                .map(|(n, h)| Member {
                    name: (*n).into(),
                    pg: Endpoint::new(*h, 5432),
                    api: format!("http://{h}:8008/").parse().unwrap(),
                })
                .collect(),
        }
    }

    pub fn doc(members: &[(&str, &str, &str)]) -> ClusterDoc {
        let ms: Vec<String> = members
            .iter()
            .map(|(n, role, state)| {
                format!(
                    r#"{{"name":"{n}","role":"{role}","state":"{state}","timeline":2,"lag":0}}"#
                )
            })
            .collect();
        serde_json::from_str(&format!(r#"{{"members":[{}]}}"#, ms.join(","))).unwrap()
    }

    pub fn probe(scope: &str, answers: Vec<(&str, Result<ClusterDoc, ApiError>)>) -> GroupProbe {
        GroupProbe {
            scope: scope.into(),
            members: answers
                .into_iter()
                .map(|(n, a)| MemberProbe {
                    name: n.into(),
                    answer: a,
                })
                .collect(),
        }
    }

    #[test]
    fn one_leader_from_any_answer() {
        let g = group("wk1", 1, &[("a", "10.0.0.1"), ("b", "10.0.0.2")]);
        let d = doc(&[("a", "leader", "running"), ("b", "replica", "streaming")]);
        let v = group_view(
            &g,
            &probe(
                "wk1",
                vec![
                    ("a", Err(ApiError::Connect("refused".into()))),
                    ("b", Ok(d)),
                ],
            ),
        );
        assert_eq!(v.single_leader().unwrap().name, "a");
        assert_eq!(
            v.problems(),
            vec!["a: REST API cannot connect: refused".to_string()]
        );
    }

    #[test]
    fn two_leaders_is_reported() {
        let g = group("wk1", 1, &[("a", "10.0.0.1"), ("b", "10.0.0.2")]);
        let da = doc(&[("a", "leader", "running"), ("b", "replica", "streaming")]);
        let db = doc(&[("a", "replica", "running"), ("b", "leader", "running")]);
        let v = group_view(&g, &probe("wk1", vec![("a", Ok(da)), ("b", Ok(db))]));
        assert_eq!(v.single_leader().unwrap_err(), "wk1 has 2 leaders: a, b");
    }

    #[test]
    fn no_leader_and_nobody_answering() {
        let g = group("wk1", 1, &[("a", "10.0.0.1"), ("b", "10.0.0.2")]);
        let d = doc(&[("a", "replica", "stopped"), ("b", "replica", "running")]);
        let v = group_view(&g, &probe("wk1", vec![("a", Ok(d.clone())), ("b", Ok(d))]));
        assert_eq!(v.single_leader().unwrap_err(), "wk1 has no leader");
        assert!(v.problems().contains(&"a: replica is stopped".to_string()));
        let t = ApiError::Timeout(std::time::Duration::from_secs(2));
        let v = group_view(
            &g,
            &probe("wk1", vec![("a", Err(t.clone())), ("b", Err(t))]),
        );
        assert_eq!(
            v.single_leader().unwrap_err(),
            "no member of wk1 answers its REST API"
        );
    }

    #[test]
    fn a_replica_that_does_not_stream_is_a_problem() {
        let g = group("wk1", 1, &[("a", "10.0.0.1"), ("b", "10.0.0.2")]);
        // Seen after a double stop: `running`, lag 0, on an older timeline than its leader.
        let d: ClusterDoc = serde_json::from_str(
            r#"{"members":[{"name":"a","role":"leader","state":"running","timeline":3},
                           {"name":"b","role":"replica","state":"running","timeline":2,"lag":0}]}"#,
        )
        .unwrap();
        let v = group_view(&g, &probe("wk1", vec![("a", Ok(d.clone()))]));
        assert_eq!(
            v.problems(),
            vec!["b: replica on timeline 2, its leader on 3: not replicating".to_string()]
        );
        // Patroni 3.2+ (its answer names the scope) says `streaming` when it streams.
        let mut d4 = doc(&[("a", "leader", "running"), ("b", "replica", "running")]);
        d4.scope = Some("wk1".into());
        let v = group_view(&g, &probe("wk1", vec![("a", Ok(d4))]));
        assert_eq!(
            v.problems(),
            vec!["b: replica is running but not streaming".to_string()]
        );
        // Patroni 3.0 says `running` for a streaming replica: not a problem by itself.
        let d3 = doc(&[("a", "leader", "running"), ("b", "replica", "running")]);
        let v = group_view(&g, &probe("wk1", vec![("a", Ok(d3))]));
        assert!(v.problems().is_empty(), "{:?}", v.problems());
    }

    #[test]
    fn a_leader_outside_the_inventory_is_never_trusted() {
        let g = group("wk1", 1, &[("a", "10.0.0.1")]);
        let d = doc(&[("a", "replica", "streaming"), ("x", "leader", "running")]);
        let v = group_view(&g, &probe("wk1", vec![("a", Ok(d))]));
        let why = v.single_leader().unwrap_err();
        assert!(why.contains("x is not in the inventory"), "{why}");
        assert!(
            v.problems()
                .iter()
                .any(|p| p == "x: member of wk1 but not in the inventory"),
            "{:?}",
            v.problems()
        );
    }

    #[test]
    fn an_answer_for_another_scope_is_not_about_this_group() {
        let g = group("wk1", 1, &[("a", "10.0.0.1"), ("b", "10.0.0.2")]);
        let mut other = doc(&[("a", "leader", "running")]);
        other.scope = Some("wk2".into());
        let mine = doc(&[("a", "replica", "streaming"), ("b", "leader", "running")]);
        let v = group_view(&g, &probe("wk1", vec![("a", Ok(other)), ("b", Ok(mine))]));
        assert_eq!(v.single_leader().unwrap().name, "b");
        assert_eq!(v.answered, 1);
        let a = v.members.iter().find(|m| m.name == "a").unwrap();
        assert_eq!(
            a.api_error.as_ref().unwrap().to_string(),
            "answers for Patroni scope wk2, not wk1: check the inventory"
        );
    }
}
