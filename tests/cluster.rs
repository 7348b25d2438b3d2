//! `citusctl` against the real local cluster: etcd, Patroni (3.0.x or 4.x), PostgreSQL 15, and
//! Citus or its stand-in, all started by `tests/cluster/cluster.sh` (run by `make test`).
//! The cluster's directory comes in `CITUSCTL_TEST_DIR`. Tests that change the cluster put it
//! back as they found it; they run one at a time (`--test-threads=1`).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Run, citusctl, run};
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

struct Cluster {
    dir: PathBuf,
    env: HashMap<String, String>,
}

fn cluster() -> Cluster {
    let dir = std::env::var_os("CITUSCTL_TEST_DIR")
        .map(PathBuf::from)
        .expect("CITUSCTL_TEST_DIR is not set: run the cluster tests with `make test`");
    let text = std::fs::read_to_string(dir.join("env")).expect("the cluster's env file");
    let env = text
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(|c| c == '\'' || c == '"').to_owned()))
        .collect();
    Cluster { dir, env }
}

impl Cluster {
    fn flavor(&self) -> &str {
        &self.env["CITUSCTL_TEST_FLAVOR"]
    }
    fn addr(&self, member: &str) -> String {
        format!("{}.{}", self.env["CITUSCTL_TEST_NET"], &member[2..])
    }
    fn citusctl(&self) -> Command {
        let mut c = citusctl();
        c.arg("-i").arg(self.dir.join("inventory.yml"));
        for k in ["CITUS_PGPASSWORD", "PATRONI_PASSWORD"] {
            c.env(k, &self.env[k]);
        }
        c
    }
    fn list_json(&self, extra: &[&str]) -> (Run, Value) {
        let r = run(self.citusctl().args(["list", "-f", "json"]).args(extra));
        let v: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", r.stdout, r.stderr));
        (r, v)
    }
    fn harness(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cluster/cluster.sh"))
            .arg(args[0])
            .arg("--dir")
            .arg(&self.dir)
            .args(&args[1..])
            .output()
            .expect("cluster.sh");
        assert!(
            out.status.success(),
            "cluster.sh {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
    fn sql(&self, member: &str, sql: &str) -> String {
        self.harness(&["psql", member, "-XAtc", sql])
    }
    fn leader_of(&self, v: &Value, scope: &str) -> String {
        group(v, scope)["leader"].as_str().unwrap_or_else(|| panic!("{scope} has no leader: {v}")).to_owned()
    }
    /// Wait until `list` says everything is fine (after a test changed the cluster).
    fn wait_ok(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (r, v) = self.list_json(&[]);
            if r.code == 0 {
                return v;
            }
            assert!(Instant::now() < deadline, "cluster did not settle:\n{}", r.stdout);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn group<'a>(v: &'a Value, scope: &str) -> &'a Value {
    v["groups"].as_array().unwrap().iter().find(|g| g["scope"] == scope).unwrap()
}

fn primary_row<'a>(g: &'a Value) -> &'a Value {
    g["pg_dist_node"].as_array().unwrap().iter().find(|r| r["noderole"] == "primary").unwrap()
}

#[test]
fn list_shows_a_healthy_cluster_in_agreement() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["ok"], true);
    let scopes: Vec<&str> = v["groups"].as_array().unwrap().iter().map(|g| g["scope"].as_str().unwrap()).collect();
    assert_eq!(scopes, ["cn", "wk1", "wk2"]);
    for (scope, id, kind) in [("cn", 0, "coordinator"), ("wk1", 1, "worker"), ("wk2", 2, "worker")] {
        let g = group(&v, scope);
        assert_eq!(g["group"], id);
        assert_eq!(g["kind"], kind);
        assert_eq!(g["verdict"], "ok", "{g}");
        let leader = c.leader_of(&v, scope);
        let members = g["members"].as_array().unwrap();
        assert_eq!(members.len(), 2);
        for m in members {
            assert_eq!(m["reachable"], true);
            assert_eq!(m["port"], 5432);
            assert_eq!(m["host"], c.addr(m["name"].as_str().unwrap()));
            if m["name"] == leader.as_str() {
                assert_eq!(m["role"], "leader");
                assert_eq!(m["state"], "running");
            } else {
                assert!(matches!(m["role"].as_str(), Some("replica" | "sync_standby")), "{m}");
                // Patroni 3.0.2 says `running` for a streaming replica; 4.x says `streaming`.
                let want = if c.flavor() == "patroni3" { "running" } else { "streaming" };
                assert_eq!(m["state"], want, "{m}");
            }
            assert!(m["timeline"].as_u64().unwrap() >= 1);
        }
        // The primary row is the leader's real address, as the coordinator's catalog says.
        let row = primary_row(g);
        assert_eq!(row["nodename"], c.addr(&leader));
        assert_eq!(row["verdict"], "ok");
        let in_catalog = c.sql(
            &c.leader_of(&v, "cn"),
            &format!("SELECT nodename FROM pg_dist_node WHERE groupid = {id} AND noderole = 'primary'"),
        );
        assert_eq!(in_catalog, c.addr(&leader));
    }

    let r = run(c.citusctl().arg("list"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with(&format!("+ Citus cluster: test-{} ", c.flavor())), "{}", r.stdout);
    assert!(r.stdout.contains("| Leader "), "{}", r.stdout);
    assert_eq!(r.stdout.matches("primary ok").count(), 3, "{}", r.stdout);
    assert!(!r.stdout.contains("Problems"), "{}", r.stdout);
}

#[test]
fn list_marks_pg_dist_node_stale_after_a_patroni_switchover() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let before = c.wait_ok();
    let old = c.leader_of(&before, "wk1");
    let cn_leader = c.leader_of(&before, "cn");
    let nodeid = primary_row(group(&before, "wk1"))["nodeid"].as_i64().unwrap();

    // Patroni's own REST API, as an operator would do it today.
    c.harness(&["switchover", "wk1"]);

    let (r, v) = c.list_json(&[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let new = c.leader_of(&v, "wk1");
    assert_ne!(new, old);
    let wk1 = group(&v, "wk1");
    assert_eq!(wk1["verdict"], "stale");
    let row = primary_row(wk1);
    assert_eq!(row["nodeid"], nodeid);
    assert_eq!(row["nodename"], c.addr(&old));
    assert_eq!(row["verdict"], "stale");
    assert_eq!(row["expected"], format!("{}:5432", c.addr(&new)));
    assert_eq!(group(&v, "wk2")["verdict"], "ok");
    assert_eq!(v["ok"], false);

    let r = run(c.citusctl().arg("list"));
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("primary stale"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("wk1: pg_dist_node primary row {nodeid} ({}:5432, postgres) is stale: {old} is not the leader; {new} is; should be {}:5432", c.addr(&old), c.addr(&new))),
        "{}",
        r.stdout
    );

    // Put the catalog right by hand, as operators do today; list agrees again.
    c.sql(&cn_leader, &format!("SELECT citus_update_node({nodeid}, '{}', 5432)", c.addr(&new)));
    let after = c.wait_ok();
    assert_eq!(primary_row(group(&after, "wk1"))["nodename"], c.addr(&new));
}

#[test]
fn list_of_some_scopes_in_every_format() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    c.wait_ok();
    let (r, v) = c.list_json(&["wk2"]);
    assert_eq!(r.code, 0);
    assert_eq!(v["groups"].as_array().unwrap().len(), 1);
    assert_eq!(v["groups"][0]["scope"], "wk2");

    let r = run(c.citusctl().args(["list", "wk1", "cn", "-f", "tsv"]));
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "Group\tScope\tMember\tHost\tRole\tState\tTL\tLag in MB\tpg_dist_node");
    assert_eq!(lines.len(), 5, "{}", r.stdout);
    assert!(lines[1..].iter().all(|l| l.split('\t').count() == 9));
    assert!(lines[1].starts_with("0\tcn\tpg1\t") || lines[1].starts_with("0\tcn\tpg2\t"), "{}", r.stdout);

    let r = run(c.citusctl().args(["list", "-f", "yaml"]));
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("format_version: 1"), "{}", r.stdout);
    assert!(r.stdout.contains("verdict: ok"), "{}", r.stdout);
}

#[test]
fn list_reports_a_stopped_member_and_a_wrong_database_password() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let leader = c.leader_of(&v, "wk2");
    let replica = if leader == "pg5" { "pg6" } else { "pg5" };

    c.harness(&["kill-patroni", replica]);
    let (r, v) = c.list_json(&[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let m = group(&v, "wk2")["members"].as_array().unwrap().iter().find(|m| m["name"] == replica).unwrap().clone();
    assert_eq!(m["reachable"], false);
    assert!(m["error"].as_str().unwrap().starts_with("cannot connect"), "{m}");
    // The metadata is still judged: the leader is known.
    assert_eq!(group(&v, "wk2")["verdict"], "ok");
    c.harness(&["start-member", replica]);
    c.wait_ok();

    // A wrong password: Patroni's view is still shown; the metadata error says why; no leak.
    let r = run(c.citusctl().env("CITUS_PGPASSWORD", "wrong-pw-xyz").args(["list", "-f", "json"]));
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let err = v["metadata"]["databases"][0]["error"].as_str().unwrap();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!r.stdout.contains("wrong-pw-xyz") && !r.stderr.contains("wrong-pw-xyz"));
    assert_eq!(group(&v, "wk1")["verdict"], "unknown");
}
