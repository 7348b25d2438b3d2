//! One notion of "the same address": a `pg_dist_node` row that names a member (or a VIP) by
//! another spelling, a host name that resolves to the inventory's IP address or the other way
//! round, *is* that member. Rows are never rewritten only because of their spelling.
//!
//! The edge ([`mark_aliases`]) resolves the names it needs, once each, with a time limit;
//! the matching ([`alias_of`]) is pure. A marked row keeps its own `nodename` (that is what
//! Citus holds, and what the fence compares) and gets `same_as`, the inventory's spelling,
//! which [`crate::citus::DistNode::endpoint`] then answers with.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use crate::citus::DistNode;
use crate::topology::{Endpoint, Topology};

/// How long one name may take to resolve; an unresolvable name is simply not an alias.
const LOOKUP_LIMIT: Duration = Duration::from_secs(1);

/// Every address the inventory knows: members' PostgreSQL endpoints and the VIPs.
pub fn inventory_endpoints(topo: &Topology) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for g in &topo.groups {
        out.extend(g.members.iter().map(|m| m.pg.clone()));
        if let Some(v) = &g.vip {
            out.push(v.rw.clone());
            out.extend(v.ro.clone());
        }
    }
    out
}

/// The inventory endpoint that `(name, port)` is another spelling of, given what each name
/// resolves to (`resolved`; an IP literal stands for itself).
pub fn alias_of<'a>(
    name: &str,
    port: u16,
    inventory: &'a [Endpoint],
    resolved: &HashMap<String, BTreeSet<IpAddr>>,
) -> Option<&'a Endpoint> {
    if inventory.iter().any(|e| e.host == name && e.port == port) {
        return None; // spelled as the inventory spells it
    }
    let ips = |host: &str| -> BTreeSet<IpAddr> {
        match host.parse::<IpAddr>() {
            Ok(ip) => BTreeSet::from([ip]),
            Err(_) => resolved.get(host).cloned().unwrap_or_default(),
        }
    };
    let mine = ips(name);
    if mine.is_empty() {
        return None;
    }
    let mut matches = inventory
        .iter()
        .filter(|e| e.port == port && !ips(&e.host).is_disjoint(&mine));
    let first = matches.next()?;
    // Two inventory entries behind one name (a VIP and a member on one host, say): ambiguous.
    matches.all(|e| e == first).then_some(first)
}

/// Mark the rows that name an inventory address by another spelling (DNS lookups at most once
/// per name, each within [`LOOKUP_LIMIT`], all at once).
pub async fn mark_aliases(topo: &Topology, rows: &mut [DistNode]) {
    let inventory = inventory_endpoints(topo);
    let literal = |r: &DistNode| {
        inventory
            .iter()
            .any(|e| e.host == r.nodename && i32::from(e.port) == r.nodeport)
    };
    if rows.iter().all(literal) {
        return; // the common case: no lookup at all
    }
    let mut names: BTreeSet<String> = rows
        .iter()
        .filter(|r| !literal(r))
        .map(|r| r.nodename.clone())
        .collect();
    names.extend(inventory.iter().map(|e| e.host.clone()));
    names.retain(|n| n.parse::<IpAddr>().is_err());
    let lookups = names.into_iter().map(|n| async move {
        let ips = match tokio::time::timeout(LOOKUP_LIMIT, tokio::net::lookup_host((n.as_str(), 0)))
            .await
        {
            Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
            _ => BTreeSet::new(),
        };
        (n, ips)
    });
    let resolved: HashMap<String, BTreeSet<IpAddr>> = futures::future::join_all(lookups)
        .await
        .into_iter()
        .collect();
    for r in rows.iter_mut() {
        let Ok(port) = u16::try_from(r.nodeport) else {
            continue;
        };
        r.same_as = alias_of(&r.nodename, port, &inventory, &resolved).map(|e| e.host.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(h: &str) -> Endpoint {
        Endpoint::new(h, 5432)
    }
    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_host_name_that_resolves_to_a_members_address_is_that_member() {
        let inv = vec![ep("10.0.0.3"), ep("10.0.0.4")];
        let dns = HashMap::from([
            ("pg3.example".to_owned(), ips(&["10.0.0.3"])),
            ("pg9.example".to_owned(), ips(&["10.0.0.9"])),
        ]);
        assert_eq!(alias_of("pg3.example", 5432, &inv, &dns), Some(&inv[0]));
        // Another port is another server.
        assert_eq!(alias_of("pg3.example", 5433, &inv, &dns), None);
        // A name that resolves elsewhere, or not at all, is no member.
        assert_eq!(alias_of("pg9.example", 5432, &inv, &dns), None);
        assert_eq!(alias_of("gone.example", 5432, &inv, &dns), None);
        // Spelled as the inventory spells it: nothing to mark.
        assert_eq!(alias_of("10.0.0.3", 5432, &inv, &dns), None);
    }

    #[test]
    fn an_ip_row_matches_an_inventory_that_uses_host_names() {
        let inv = vec![ep("pg3.example"), ep("pg4.example")];
        let dns = HashMap::from([
            ("pg3.example".to_owned(), ips(&["10.0.0.3", "fd00::3"])),
            ("pg4.example".to_owned(), ips(&["10.0.0.4"])),
        ]);
        assert_eq!(alias_of("10.0.0.4", 5432, &inv, &dns), Some(&inv[1]));
        assert_eq!(alias_of("fd00::3", 5432, &inv, &dns), Some(&inv[0]));
    }

    #[test]
    fn a_name_behind_two_inventory_addresses_is_ambiguous() {
        let inv = vec![ep("10.0.0.3"), ep("10.0.0.30")];
        let dns = HashMap::from([("both.example".to_owned(), ips(&["10.0.0.3", "10.0.0.30"]))]);
        assert_eq!(alias_of("both.example", 5432, &inv, &dns), None);
    }
}
