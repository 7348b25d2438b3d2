//! `citusctl check` and `citusctl version` against the real cluster: a healthy cluster passes,
//! and each fault the test makes is named (a stopped replica, a replica cut off from its
//! leader, a VIP on the wrong role, a setting changed on one member). Each test puts the
//! cluster back as it found it.

use super::*;

fn check_json(c: &Cluster, inventory: &std::path::Path, extra: &[&str]) -> (Run, Value) {
    let r = run(c
        .citusctl_with(inventory)
        .args(["check", "-f", "json"])
        .args(extra));
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", r.stdout, r.stderr));
    (r, v)
}

fn findings<'a>(v: &'a Value, status: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == status)
        .collect()
}

fn named<'a>(v: &'a Value, check: &str, scope: &str, member: Option<&str>) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check && f["scope"] == scope)
        .filter(|f| member.is_none_or(|m| f["member"] == m))
        .collect()
}

/// Poll `check` until `pred` holds (a fault takes a moment to show in Patroni's state).
fn check_until(
    c: &Cluster,
    inventory: &std::path::Path,
    pred: impl Fn(&Value) -> bool,
) -> (Run, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (r, v) = check_json(c, inventory, &[]);
        if pred(&v) {
            return (r, v);
        }
        assert!(
            Instant::now() < deadline,
            "check never showed it:\n{}",
            r.stdout
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `wait_ok`, and then until `check` itself finds nothing failing: a replica that a previous
/// test restarted may answer `running` a moment before its leader lists it as streaming.
fn wait_check_ok(c: &Cluster) -> Value {
    let v = c.wait_ok();
    let inv = c.dir.join("inventory.yml");
    check_until(c, &inv, |v| v["ok"] == true);
    v
}

#[test]
fn check_passes_on_a_healthy_cluster_and_version_names_every_member() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    wait_check_ok(&c);
    let inv = c.dir.join("inventory.yml");
    let (r, v) = check_json(&c, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["ok"], true);
    assert!(findings(&v, "fail").is_empty(), "{}", r.stdout);
    for (scope, n) in [("cn", 1), ("wk1", 1), ("wk2", 1)] {
        let rep: Vec<_> = named(&v, "replication", scope, None);
        assert_eq!(rep.len(), n, "{}", r.stdout);
        assert_eq!(rep[0]["status"], "ok", "{}", r.stdout);
        assert_eq!(named(&v, "split-brain", scope, None)[0]["status"], "ok");
    }
    // Citus's own checks: real Citus answers them; the stand-in cannot, and says so.
    let health = named(&v, "node-health", "", None);
    assert_eq!(health.len(), 1, "{}", r.stdout);
    let want = if real_citus(&c) { "ok" } else { "warn" };
    assert_eq!(health[0]["status"], want, "{}", r.stdout);

    // One group only: its rows, and the cluster-wide ones.
    let (r, v) = check_json(&c, &inv, &["wk1"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(named(&v, "replication", "wk2", None).is_empty());
    // Pretty: the table and the summary line.
    let r = run(c.citusctl().args(["check"]));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.starts_with("+ Citus cluster check: "),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(" 0 fail\n"), "{}", r.stdout);

    let r = run(c.citusctl().args(["version", "-f", "json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["citusctl"].as_str().unwrap().starts_with("citusctl "));
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 6);
    for m in members {
        assert!(m["patroni"].as_str().is_some_and(|p| !p.is_empty()), "{m}");
        assert!(m["postgresql"].as_str().unwrap().starts_with("15."), "{m}");
    }
}

#[test]
fn check_names_a_stopped_replica() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = wait_check_ok(&c);
    let leader = c.leader_of(&v, "wk2");
    let replica = if leader == "pg5" { "pg6" } else { "pg5" };
    c.harness(&["kill-patroni", replica]);
    let inv = c.dir.join("inventory.yml");
    let (r, v) = check_until(&c, &inv, |v| {
        named(v, "replication", "wk2", Some(replica))
            .iter()
            .any(|f| f["status"] == "fail")
    });
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(v["ok"], false);
    assert!(
        named(&v, "sql", "wk2", Some(replica))[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("cannot read from PostgreSQL"),
        "{}",
        r.stdout
    );
    c.harness(&["start-member", replica]);
    c.wait_ok();
}

#[test]
fn check_names_a_replica_cut_off_from_its_leader() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = wait_check_ok(&c);
    let leader = c.leader_of(&v, "wk1");
    let replica = if leader == "pg3" { "pg4" } else { "pg3" };
    // The replica can no longer log in for replication: it keeps running, it no longer streams.
    c.sql(
        &leader,
        "ALTER ROLE replicator NOLOGIN; SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication",
    );
    let inv = c.dir.join("inventory.yml");
    let (r, v) = check_until(&c, &inv, |v| {
        named(v, "replication", "wk1", Some(replica))
            .iter()
            .any(|f| f["status"] == "fail")
    });
    // `list` judges it the same way where Patroni says `streaming` for a streaming replica.
    let (lr, lv) = c.list_json(&["wk1"]);
    c.sql(&leader, "ALTER ROLE replicator LOGIN");
    if c.flavor() == "patroni4" {
        assert_eq!(lr.code, 1, "{}", lr.stdout);
        let want = format!("wk1: {replica}: replica is running but not streaming");
        assert!(
            lv["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == &want),
            "{lv}"
        );
    }
    assert_eq!(r.code, 1, "{}", r.stdout);
    let f = named(&v, "replication", "wk1", Some(replica))[0];
    assert!(
        f["detail"].as_str().unwrap().contains(&format!(
            "{leader}'s pg_stat_replication has no streaming sender"
        )),
        "{f}"
    );
    c.wait_ok();
}

#[test]
fn check_names_a_vip_on_the_wrong_role() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    c.wait_ok();
    let inv = c.dir.join("inventory-vip.yml");
    let (_, v) = check_json(&c, &inv, &[]);
    let vips = named(&v, "vip", "wk1", None);
    assert_eq!(vips.len(), 2);
    assert!(vips.iter().all(|f| f["status"] == "ok"), "{vips:?}");

    c.harness(&["vip", "wk1", "rw", "wrong"]);
    let (r, v) = check_until(&c, &inv, |v| {
        named(v, "vip", "wk1", None)
            .iter()
            .any(|f| f["status"] == "fail")
    });
    c.harness(&["vip", "wk1", "rw", "right"]);
    assert_eq!(r.code, 1);
    let bad: Vec<_> = named(&v, "vip", "wk1", None)
        .into_iter()
        .filter(|f| f["status"] == "fail")
        .collect();
    assert_eq!(bad.len(), 1, "{}", r.stdout);
    assert!(
        bad[0]["detail"].as_str().unwrap().contains("rw VIP")
            && bad[0]["detail"]
                .as_str()
                .unwrap()
                .contains("lands on a replica"),
        "{}",
        bad[0]
    );
}

#[test]
fn check_names_a_setting_changed_on_one_member() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = wait_check_ok(&c);
    let leader = c.leader_of(&v, "wk2");
    let replica = if leader == "pg5" { "pg6" } else { "pg5" };
    c.sql(
        replica,
        "ALTER SYSTEM SET citus.node_connection_timeout = 4321",
    );
    c.sql(replica, "SELECT pg_reload_conf()");
    let inv = c.dir.join("inventory.yml");
    let (r, v) = check_until(&c, &inv, |v| {
        findings(v, "warn").iter().any(|f| f["check"] == "setting")
    });
    c.sql(replica, "ALTER SYSTEM RESET citus.node_connection_timeout");
    c.sql(replica, "SELECT pg_reload_conf()");
    // A difference is a warning: worth a look, not a failure.
    assert_eq!(r.code, 0, "{}", r.stdout);
    let w: Vec<_> = findings(&v, "warn")
        .into_iter()
        .filter(|f| f["check"] == "setting")
        .collect();
    let d = w[0]["detail"].as_str().unwrap();
    assert!(
        d.starts_with("citus.node_connection_timeout differs: ")
            && d.contains(&format!("\"4321\" on {replica}")),
        "{d}"
    );
}

#[test]
fn check_names_patroni_citus_mode_and_a_worker_row_edited_by_hand() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = wait_check_ok(&c);
    let inv = c.dir.join("inventory.yml");
    let w1 = c.leader_of(&v, "wk1");
    let w2 = c.leader_of(&v, "wk2");
    // Patroni's Citus handler, as it shows on a leader: its connection, named 'Patroni citus'.
    let (mut patroni_citus, pid) =
        open_transaction(&c, &w1, "SET application_name = 'Patroni citus'");
    let (r, v) = check_json(&c, &inv, &[]);
    c.sql(&w1, &format!("SELECT pg_terminate_backend({pid})"));
    let _ = patroni_citus.wait();
    assert_eq!(r.code, 1, "{}", r.stdout);
    let f = named(&v, "patroni-citus", "wk1", Some(&w1));
    assert_eq!(f.len(), 1, "{}", r.stdout);
    assert_eq!(f[0]["status"], "fail");
    assert!(
        f[0]["detail"]
            .as_str()
            .unwrap()
            .contains("both write pg_dist_node"),
        "{}",
        f[0]
    );

    // A worker's own pg_dist_node edited by hand (real Citus keeps metadata on the workers; the
    // stand-in does not, and check says it did not compare).
    if real_citus(&c) {
        let edit =
            "UPDATE pg_dist_node SET nodeport = 6543 WHERE groupid = 1 AND noderole = 'primary'";
        c.sql(&w2, edit);
        let (r, v) = check_json(&c, &inv, &[]);
        c.sql(
            &w2,
            "UPDATE pg_dist_node SET nodeport = 5432 WHERE groupid = 1 AND noderole = 'primary'",
        );
        assert_eq!(r.code, 1, "{}", r.stdout);
        let f = named(&v, "metadata", "wk2", Some(&w2));
        assert_eq!(f[0]["status"], "fail", "{}", r.stdout);
        let d = f[0]["detail"].as_str().unwrap();
        assert!(
            d.contains("differs from the coordinator's") && d.contains("6543"),
            "{d}"
        );
    } else {
        let f = named(&v, "metadata", "wk2", Some(&w2));
        assert_eq!(f[0]["status"], "warn", "{}", r.stdout);
        assert!(f[0]["detail"].as_str().unwrap().contains("not compared"));
    }
    let (r, _) = check_json(&c, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}
