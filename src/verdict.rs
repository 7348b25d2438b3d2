//! Does `pg_dist_node` agree with Patroni? One verdict per row, pure and unit-tested.
//!
//! Direct mode: a group's `primary` row must be its Patroni leader's address; `secondary` rows
//! must be non-leader members. VIP mode: the `primary` row is the RW VIP and the `secondary`
//! row the RO VIP, whoever leads. A row that cannot be judged (no single leader) is `unknown`.

use serde::Serialize;

use crate::citus::DistNode;
use crate::health::GroupView;
use crate::topology::{Endpoint, Group};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// Cannot tell: the group has no single leader.
    Unknown,
    /// Points at a member that is not what the row's role calls for (e.g. a replica as primary).
    Stale,
    /// Registered but `isactive = false`.
    Inactive,
    /// A row the inventory and Patroni do not call for.
    Unexpected,
    /// A row that should exist does not.
    Missing,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Unknown => "unknown",
            Verdict::Stale => "stale",
            Verdict::Inactive => "inactive",
            Verdict::Unexpected => "unexpected",
            Verdict::Missing => "missing",
        }
    }
}

/// One row's verdict (or a missing row, with `nodeid = None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowCheck {
    pub database: String,
    pub nodeid: Option<i32>,
    pub groupid: i32,
    pub nodename: Option<String>,
    pub nodeport: Option<i32>,
    pub noderole: String,
    pub isactive: Option<bool>,
    pub verdict: Verdict,
    /// What the row should hold, when that is known.
    pub expected: Option<String>,
    pub note: String,
    /// The inventory's spelling of the row's address, when the row spells it otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
}

impl RowCheck {
    fn of(
        db: &str,
        row: &DistNode,
        verdict: Verdict,
        expected: Option<&Endpoint>,
        note: String,
    ) -> Self {
        let note = match &row.same_as {
            Some(same) => format!("{} = {same}: {note}", row.nodename),
            None => note,
        };
        RowCheck {
            database: db.to_owned(),
            nodeid: Some(row.nodeid),
            groupid: row.groupid,
            nodename: Some(row.nodename.clone()),
            nodeport: Some(row.nodeport),
            noderole: row.noderole.clone(),
            isactive: Some(row.isactive),
            verdict,
            expected: expected.map(ToString::to_string),
            note,
            same_as: row.same_as.clone(),
        }
    }

    fn missing(
        db: &str,
        groupid: i32,
        role: &str,
        expected: Option<&Endpoint>,
        note: String,
    ) -> Self {
        RowCheck {
            database: db.to_owned(),
            nodeid: None,
            groupid,
            nodename: None,
            nodeport: None,
            noderole: role.to_owned(),
            isactive: None,
            verdict: Verdict::Missing,
            expected: expected.map(ToString::to_string),
            note,
            same_as: None,
        }
    }

    /// The address of the server the row stands for, in the inventory's spelling (to match
    /// it with a member); `address()` is the row's own spelling.
    pub fn member_address(&self) -> Option<String> {
        match (
            &self.same_as,
            self.nodeport.and_then(|p| u16::try_from(p).ok()),
        ) {
            (Some(h), Some(p)) => Some(Endpoint::new(h.clone(), p).to_string()),
            _ => self.address(),
        }
    }

    pub fn address(&self) -> Option<String> {
        match (&self.nodename, self.nodeport) {
            (Some(h), Some(p)) => Some(match u16::try_from(p) {
                Ok(p) => Endpoint::new(h.clone(), p).to_string(),
                Err(_) => format!("{h}:{p}"),
            }),
            _ => None,
        }
    }
}

/// Judge the rows of one group in one database. `rows` holds only this group's rows.
pub fn check_group(db: &str, group: &Group, view: &GroupView, rows: &[&DistNode]) -> Vec<RowCheck> {
    let mut checks = match &group.vip {
        Some(vips) => check_vip_group(db, group, rows, &vips.rw, vips.ro.as_ref()),
        None => check_direct_group(db, group, view, rows),
    };
    for c in &mut checks {
        accept_clone_row(c);
        if c.verdict == Verdict::Unexpected
            && let Some(name) = &c.nodename
            && name.ends_with(DEMOTED_SUFFIX)
        {
            c.note = format!(
                "left by an interrupted pause: Citus before 12.1 pauses by renaming the row to {name}"
            );
        }
    }
    checks
}

/// Citus 13.2's clone rows (`citus_add_clone_node`): `noderole = 'unavailable'`,
/// `isactive = false`, often in a group of their own. They serve no query and are not a fault:
/// say what they are instead of calling them unexpected or inactive.
fn accept_clone_row(c: &mut RowCheck) {
    if c.noderole == "unavailable" {
        c.verdict = Verdict::Ok;
        c.expected = None;
        c.note =
            "clone row (Citus 13.2+, citus_add_clone_node): serves no query until promoted".into();
    }
}

/// What the pause of Citus before 12.1 appends to a primary row's name inside its transaction.
pub const DEMOTED_SUFFIX: &str = "-demoted";

fn check_direct_group(
    db: &str,
    group: &Group,
    view: &GroupView,
    rows: &[&DistNode],
) -> Vec<RowCheck> {
    let leader = view.single_leader();
    let name_at = |ep: &Endpoint| {
        view.members
            .iter()
            .find(|m| &m.endpoint == ep)
            .map(|m| m.name.as_str())
    };
    let mut out = Vec::new();
    for row in rows {
        let ep = row.endpoint();
        let member = ep.as_ref().and_then(name_at);
        let check = match (&leader, row.is_primary(), row.is_secondary()) {
            (Err(why), _, _) => (Verdict::Unknown, None, why.clone()),
            _ if !row.isactive => (Verdict::Inactive, None, "isactive = false".to_owned()),
            (Ok(l), true, _) => match member {
                Some(n) if n == l.name => (Verdict::Ok, None, format!("leader {n}")),
                Some(n) => (
                    Verdict::Stale,
                    Some(&l.endpoint),
                    format!("{n} is not the leader; {} is", l.name),
                ),
                None => (
                    Verdict::Unexpected,
                    Some(&l.endpoint),
                    format!("not a member of {}", group.scope),
                ),
            },
            (Ok(l), false, true) => match member {
                Some(n) if n == l.name => (
                    Verdict::Stale,
                    None,
                    format!("secondary points at the leader {n}"),
                ),
                Some(n) => (Verdict::Ok, None, format!("replica {n}")),
                None => (
                    Verdict::Unexpected,
                    None,
                    format!("not a member of {}", group.scope),
                ),
            },
            (Ok(_), false, false) => (Verdict::Unexpected, None, format!("role {}", row.noderole)),
        };
        out.push(RowCheck::of(db, row, check.0, check.1, check.2));
    }
    if !rows.iter().any(|r| r.is_primary()) {
        let (expected, note) = match &leader {
            Ok(l) => (
                Some(&l.endpoint),
                format!("leader {} is not registered", l.name),
            ),
            Err(why) => (None, why.clone()),
        };
        out.push(RowCheck::missing(
            db,
            group.group_id,
            "primary",
            expected,
            note,
        ));
    }
    out
}

fn check_vip_group(
    db: &str,
    group: &Group,
    rows: &[&DistNode],
    rw: &Endpoint,
    ro: Option<&Endpoint>,
) -> Vec<RowCheck> {
    let mut out = Vec::new();
    for row in rows {
        let ep = row.endpoint();
        let want = if row.is_primary() {
            Some(rw)
        } else if row.is_secondary() {
            ro
        } else {
            None
        };
        let check = match (want, ep.as_ref()) {
            (Some(w), Some(e)) if w == e && row.isactive => (Verdict::Ok, None, "VIP".to_owned()),
            (Some(w), Some(e)) if w == e => {
                (Verdict::Inactive, None, "isactive = false".to_owned())
            }
            (Some(w), _) => (
                Verdict::Unexpected,
                Some(w),
                format!(
                    "{} expects its {} VIP",
                    group.scope,
                    if row.is_primary() { "RW" } else { "RO" }
                ),
            ),
            (None, _) => (
                Verdict::Unexpected,
                None,
                format!("{} has no VIP for this role", group.scope),
            ),
        };
        out.push(RowCheck::of(db, row, check.0, check.1, check.2));
    }
    // A wrong row already says what it should hold; `missing` is for a role with no row at all.
    if !rows.iter().any(|r| r.is_primary()) {
        out.push(RowCheck::missing(
            db,
            group.group_id,
            "primary",
            Some(rw),
            "RW VIP not registered".into(),
        ));
    }
    if let Some(ro) = ro
        && !rows.iter().any(|r| r.is_secondary())
    {
        out.push(RowCheck::missing(
            db,
            group.group_id,
            "secondary",
            Some(ro),
            "RO VIP not registered".into(),
        ));
    }
    out
}

/// Rows of groups the inventory does not know.
pub fn check_orphans(db: &str, rows: &[&DistNode]) -> Vec<RowCheck> {
    rows.iter()
        .map(|r| {
            let mut c = RowCheck::of(
                db,
                r,
                Verdict::Unexpected,
                None,
                format!("group {} is not in the inventory", r.groupid),
            );
            accept_clone_row(&mut c);
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::group_view;
    use crate::health::tests::{doc, group, probe};
    use crate::topology::Vips;

    use crate::citus::test_row as row;

    fn wk1_led_by(leader: &str) -> (Group, GroupView) {
        let g = group("wk1", 1, &[("pg3", "10.0.0.3"), ("pg4", "10.0.0.4")]);
        let other = if leader == "pg3" { "pg4" } else { "pg3" };
        let d = doc(&[
            (leader, "leader", "running"),
            (other, "replica", "streaming"),
        ]);
        let v = group_view(
            &g,
            &probe("wk1", vec![("pg3", Ok(d.clone())), ("pg4", Ok(d))]),
        );
        (g, v)
    }

    fn verdicts(checks: &[RowCheck]) -> Vec<(Option<i32>, Verdict)> {
        checks.iter().map(|c| (c.nodeid, c.verdict)).collect()
    }

    #[test]
    fn direct_primary_on_leader_is_ok() {
        let (g, v) = wk1_led_by("pg3");
        let r = row(2, 1, "10.0.0.3", "primary");
        assert_eq!(
            verdicts(&check_group("postgres", &g, &v, &[&r])),
            vec![(Some(2), Verdict::Ok)]
        );
    }

    #[test]
    fn direct_primary_on_replica_after_switchover_is_stale() {
        let (g, v) = wk1_led_by("pg4");
        let r = row(2, 1, "10.0.0.3", "primary");
        let checks = check_group("postgres", &g, &v, &[&r]);
        assert_eq!(verdicts(&checks), vec![(Some(2), Verdict::Stale)]);
        assert_eq!(checks[0].expected.as_deref(), Some("10.0.0.4:5432"));
        assert_eq!(checks[0].note, "pg3 is not the leader; pg4 is");
    }

    #[test]
    fn direct_secondary_on_leader_is_stale_and_on_replica_ok() {
        let (g, v) = wk1_led_by("pg4");
        let p = row(2, 1, "10.0.0.4", "primary");
        let s = row(7, 1, "10.0.0.4", "secondary");
        let s_ok = row(8, 1, "10.0.0.3", "secondary");
        let checks = check_group("postgres", &g, &v, &[&p, &s, &s_ok]);
        assert_eq!(
            verdicts(&checks),
            vec![
                (Some(2), Verdict::Ok),
                (Some(7), Verdict::Stale),
                (Some(8), Verdict::Ok)
            ]
        );
    }

    #[test]
    fn direct_missing_and_unexpected_and_inactive() {
        let (g, v) = wk1_led_by("pg3");
        let checks = check_group("postgres", &g, &v, &[]);
        assert_eq!(verdicts(&checks), vec![(None, Verdict::Missing)]);
        assert_eq!(checks[0].expected.as_deref(), Some("10.0.0.3:5432"));

        let foreign = row(9, 1, "10.9.9.9", "primary");
        assert_eq!(
            verdicts(&check_group("postgres", &g, &v, &[&foreign])),
            vec![(Some(9), Verdict::Unexpected)]
        );

        let mut off = row(2, 1, "10.0.0.3", "primary");
        off.isactive = false;
        assert_eq!(
            verdicts(&check_group("postgres", &g, &v, &[&off])),
            vec![(Some(2), Verdict::Inactive)]
        );
    }

    #[test]
    fn a_demoted_row_is_named_for_the_pause_that_left_it() {
        let (g, v) = wk1_led_by("pg3");
        let r = row(2, 1, "10.0.0.3-demoted", "primary");
        let checks = check_group("postgres", &g, &v, &[&r]);
        assert_eq!(verdicts(&checks), vec![(Some(2), Verdict::Unexpected)]);
        assert_eq!(checks[0].expected.as_deref(), Some("10.0.0.3:5432"));
        assert!(
            checks[0].note.starts_with("left by an interrupted pause"),
            "{}",
            checks[0].note
        );
    }

    #[test]
    fn a_clone_row_of_citus_13_2_is_named_not_flagged() {
        let (g, v) = wk1_led_by("pg3");
        let p = row(2, 1, "10.0.0.3", "primary");
        let mut clone = row(9, 1, "10.0.0.4", "unavailable");
        clone.isactive = false;
        let checks = check_group("postgres", &g, &v, &[&p, &clone]);
        assert_eq!(
            verdicts(&checks),
            vec![(Some(2), Verdict::Ok), (Some(9), Verdict::Ok)]
        );
        assert!(
            checks[1].note.starts_with("clone row"),
            "{}",
            checks[1].note
        );
        // In a group of its own, which the inventory does not know.
        let mut alone = row(10, 7, "10.0.0.4", "unavailable");
        alone.isactive = false;
        let checks = check_orphans("postgres", &[&alone]);
        assert_eq!(checks[0].verdict, Verdict::Ok);
        // Any other row of an unknown group still is unexpected.
        let other = row(11, 7, "10.0.0.5", "primary");
        assert_eq!(
            check_orphans("postgres", &[&other])[0].verdict,
            Verdict::Unexpected
        );
    }

    #[test]
    fn direct_without_leader_is_unknown() {
        let g = group("wk1", 1, &[("pg3", "10.0.0.3"), ("pg4", "10.0.0.4")]);
        let d = doc(&[("pg3", "replica", "stopped"), ("pg4", "replica", "running")]);
        let v = group_view(
            &g,
            &probe("wk1", vec![("pg3", Ok(d.clone())), ("pg4", Ok(d))]),
        );
        let r = row(2, 1, "10.0.0.3", "primary");
        let checks = check_group("postgres", &g, &v, &[&r]);
        assert_eq!(verdicts(&checks), vec![(Some(2), Verdict::Unknown)]);
        assert_eq!(checks[0].note, "wk1 has no leader");
    }

    #[test]
    fn vip_rows_do_not_follow_the_leader() {
        let (mut g, v) = wk1_led_by("pg4");
        g.vip = Some(Vips {
            rw: Endpoint::new("10.0.1.1", 5432),
            ro: Some(Endpoint::new("10.0.1.2", 5432)),
        });
        let p = row(2, 1, "10.0.1.1", "primary");
        let s = row(3, 1, "10.0.1.2", "secondary");
        assert_eq!(
            verdicts(&check_group("postgres", &g, &v, &[&p, &s])),
            vec![(Some(2), Verdict::Ok), (Some(3), Verdict::Ok)]
        );
        // A real address where the VIP belongs, and the RO VIP never added.
        let p = row(2, 1, "10.0.0.4", "primary");
        let checks = check_group("postgres", &g, &v, &[&p]);
        assert_eq!(
            verdicts(&checks),
            vec![(Some(2), Verdict::Unexpected), (None, Verdict::Missing)]
        );
        assert_eq!(checks[1].expected.as_deref(), Some("10.0.1.2:5432"));
    }
}
