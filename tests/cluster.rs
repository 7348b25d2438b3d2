//! `citusctl` against the real local cluster: etcd, Patroni (3.0.x or 4.x), PostgreSQL 15, and
//! Citus or its stand-in, all started by `tests/cluster/cluster.sh` (run by `make test`).
//! The cluster's directory comes in `CITUSCTL_TEST_DIR`. Tests that change the cluster put it
//! back as they found it; they run one at a time (`--test-threads=1`).

#[path = "cluster/check.rs"]
mod check;
mod common;
#[path = "cluster/day2.rs"]
mod day2;
#[path = "cluster/faults.rs"]
mod faults;
#[path = "cluster/rebalance.rs"]
mod rebalance;

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
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.trim_matches(|c| c == '\'' || c == '"').to_owned(),
            )
        })
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
        self.citusctl_with(&self.dir.join("inventory.yml"))
    }
    fn citusctl_with(&self, inventory: &std::path::Path) -> Command {
        let mut c = citusctl();
        c.arg("-i").arg(inventory);
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
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/cluster/cluster.sh"
            ))
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
    /// Like `sql`, but None while the member does not accept connections (restarting).
    fn try_sql(&self, member: &str, sql: &str) -> Option<String> {
        let out = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/cluster/cluster.sh"
            ))
            .args(["psql", "--dir"])
            .arg(&self.dir)
            .args([member, "-XAtc", sql])
            .output()
            .expect("cluster.sh");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
    fn leader_of(&self, v: &Value, scope: &str) -> String {
        group(v, scope)["leader"]
            .as_str()
            .unwrap_or_else(|| panic!("{scope} has no leader: {v}"))
            .to_owned()
    }
    /// Wait until `list` says everything is fine (after a test changed the cluster), and every
    /// replica has caught up: right after a rejoin Patroni 3.0 says lag "unknown" for a moment,
    /// and a restarted replica lags by megabytes; neither is a switchover candidate yet.
    fn wait_ok(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (r, v) = self.list_json(&[]);
            let lags_known = v["groups"].as_array().is_some_and(|gs| {
                gs.iter()
                    .flat_map(|g| g["members"].as_array().into_iter().flatten())
                    .filter(|m| m["role"] == "replica" || m["role"] == "sync_standby")
                    // caught up as a switchover candidate must be (--max-lag's 1 MiB)
                    .all(|m| m["lag"].as_u64().is_some_and(|l| l < 1_048_576))
            });
            // and every leader Patroni names is writable (after an etcd outage Patroni 3.0.2
            // named a leader that was still read-only for a while)
            let leaders_writable = || {
                v["groups"].as_array().is_some_and(|gs| {
                    gs.iter().all(|g| {
                        g["leader"].as_str().is_some_and(|l| {
                            self.try_sql(l, "SELECT pg_is_in_recovery()").as_deref() == Some("f")
                        })
                    })
                })
            };
            // and Citus's metadata syncer (or the stand-in's) is done: after a switchover it
            // still owns `metadatasynced` for a moment, which a "nothing written" snapshot of
            // pg_dist_node must not catch half way.
            let metadata_synced = || {
                let cn = self.leader_of(&v, "cn");
                self.try_sql(
                    &cn,
                    "SELECT count(*) FROM pg_dist_node WHERE hasmetadata AND NOT metadatasynced",
                )
                .as_deref()
                    == Some("0")
            };
            if r.code == 0 && lags_known && leaders_writable() && metadata_synced() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not settle:\n{}",
                r.stdout
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn group<'a>(v: &'a Value, scope: &str) -> &'a Value {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["scope"] == scope)
        .unwrap()
}

fn primary_row(g: &Value) -> &Value {
    g["pg_dist_node"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["noderole"] == "primary")
        .unwrap()
}

#[test]
fn list_shows_a_healthy_cluster_in_agreement() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["ok"], true);
    let scopes: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["cn", "wk1", "wk2"]);
    for (scope, id, kind) in [
        ("cn", 0, "coordinator"),
        ("wk1", 1, "worker"),
        ("wk2", 2, "worker"),
    ] {
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
                assert!(
                    matches!(m["role"].as_str(), Some("replica" | "sync_standby")),
                    "{m}"
                );
                // Patroni 3.0.2 says `running` for a streaming replica; 4.x says `streaming`.
                let want = if c.flavor() == "patroni3" {
                    "running"
                } else {
                    "streaming"
                };
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
            &format!(
                "SELECT nodename FROM pg_dist_node WHERE groupid = {id} AND noderole = 'primary'"
            ),
        );
        assert_eq!(in_catalog, c.addr(&leader));
    }

    let r = run(c.citusctl().arg("list"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with(&format!("+ Citus cluster: test-{} ", c.flavor())),
        "{}",
        r.stdout
    );
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
    let nodeid = primary_row(group(&before, "wk1"))["nodeid"]
        .as_i64()
        .unwrap();

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
    c.sql(
        &cn_leader,
        &format!(
            "SELECT citus_update_node({nodeid}, '{}', 5432)",
            c.addr(&new)
        ),
    );
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
    assert_eq!(
        lines[0],
        "Group\tScope\tMember\tHost\tRole\tState\tTL\tLag in MB\tpg_dist_node"
    );
    assert_eq!(lines.len(), 5, "{}", r.stdout);
    assert!(lines[1..].iter().all(|l| l.split('\t').count() == 9));
    assert!(
        lines[1].starts_with("0\tcn\tpg1\t") || lines[1].starts_with("0\tcn\tpg2\t"),
        "{}",
        r.stdout
    );

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
    let m = group(&v, "wk2")["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == replica)
        .unwrap()
        .clone();
    assert_eq!(m["reachable"], false);
    assert!(
        m["error"].as_str().unwrap().starts_with("cannot connect"),
        "{m}"
    );
    // The metadata is still judged: the leader is known.
    assert_eq!(group(&v, "wk2")["verdict"], "ok");
    c.harness(&["start-member", replica]);
    c.wait_ok();

    // A wrong password: Patroni's view is still shown; the metadata error says why; no leak.
    let r = run(c
        .citusctl()
        .env("CITUS_PGPASSWORD", "wrong-pw-xyz")
        .args(["list", "-f", "json"]));
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let err = v["metadata"]["databases"][0]["error"].as_str().unwrap();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!r.stdout.contains("wrong-pw-xyz") && !r.stderr.contains("wrong-pw-xyz"));
    assert_eq!(group(&v, "wk1")["verdict"], "unknown");
}

// ---- resync -------------------------------------------------------------------------------

fn dist_rows(c: &Cluster, cn_leader: &str) -> String {
    c.sql(cn_leader, "SELECT string_agg(nodeid || ':' || groupid || ':' || nodename || ':' || noderole || ':' || isactive, ' ' ORDER BY nodeid) FROM pg_dist_node")
}

#[test]
fn resync_repairs_a_stale_row_after_a_switchover_and_then_has_nothing_to_do() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let before = c.wait_ok();
    let cn_leader = c.leader_of(&before, "cn");
    let nodeid = primary_row(group(&before, "wk1"))["nodeid"]
        .as_i64()
        .unwrap();
    c.harness(&["switchover", "wk1"]);
    let (_, v) = c.list_json(&[]);
    let new = c.leader_of(&v, "wk1");
    let rows_before = dist_rows(&c, &cn_leader);

    // --check: differs -> 1; --dry-run: shows the one change, writes nothing.
    assert_eq!(run(c.citusctl().args(["resync", "--check"])).code, 1);
    let r = run(c.citusctl().args(["resync", "--dry-run", "-f", "json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan: Value = serde_json::from_str(&r.stdout).unwrap();
    let changes = plan["plan"]["databases"][0]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{plan}");
    assert_eq!(changes[0]["nodeid"], nodeid);
    assert_eq!(changes[0]["wanted"], format!("{}:5432", c.addr(&new)));
    assert_eq!(plan["outcome"], "planned");
    assert_eq!(dist_rows(&c, &cn_leader), rows_before, "dry run wrote");

    // Without a terminal and without --yes: refused as a usage error, nothing written.
    let r = run(c.citusctl().arg("resync"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("pass --yes"), "{}", r.stderr);
    assert_eq!(dist_rows(&c, &cn_leader), rows_before);

    let r = run(c.citusctl().args(["resync", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("applied 1 change(s); verified: ok"),
        "{}",
        r.stdout
    );
    assert_eq!(
        c.sql(
            &cn_leader,
            &format!("SELECT nodename FROM pg_dist_node WHERE nodeid = {nodeid}")
        ),
        c.addr(&new)
    );
    // The rows are right at once; list is all green once the old leader streams again.
    let (_, v) = c.list_json(&[]);
    assert_eq!(group(&v, "wk1")["verdict"], "ok", "{v}");
    c.wait_ok();
    // With real Citus: a distributed write through the coordinator succeeds.
    if c.env.get("CITUSCTL_CITUS").map(String::as_str) == Some("real") {
        c.sql(
            &cn_leader,
            "CREATE TABLE IF NOT EXISTS resync_probe (id bigint PRIMARY KEY, v int)",
        );
        c.sql(&cn_leader, "SELECT create_distributed_table('resync_probe', 'id') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'resync_probe'::regclass)");
        let n = c.sql(&cn_leader, "WITH w AS (INSERT INTO resync_probe SELECT g, 1 FROM generate_series(1, 64) g ON CONFLICT (id) DO UPDATE SET v = resync_probe.v + 1 RETURNING 1) SELECT count(*) FROM w");
        assert_eq!(n, "64");
    }
    // The new primary is writable through the address pg_dist_node now holds.
    let addr = c.sql(
        &cn_leader,
        "SELECT nodename FROM pg_dist_node WHERE groupid = 1 AND noderole = 'primary'",
    );
    let member = format!("pg{}", addr.rsplit('.').next().unwrap());
    assert_eq!(c.sql(&member, "SELECT pg_is_in_recovery()"), "f");

    let r = run(c.citusctl().args(["resync", "--yes"]));
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("nothing to do"), "{}", r.stdout);
    assert_eq!(run(c.citusctl().args(["resync", "--check"])).code, 0);
}

#[test]
fn resync_swaps_primary_and_secondary_rows_in_one_transaction() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn_leader = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk2");
    let replica = if old == "pg5" { "pg6" } else { "pg5" };
    let sec = c.sql(
        &cn_leader,
        &format!(
            "SELECT citus_add_node('{}', 5432, 2, 'secondary')",
            c.addr(replica)
        ),
    );
    assert_eq!(c.wait_ok()["ok"], true, "a secondary on the replica is ok");

    c.harness(&["switchover", "wk2", "--candidate", replica]);
    let (r, v) = c.list_json(&[]);
    assert_eq!(r.code, 1);
    let verdicts: Vec<&str> = group(&v, "wk2")["pg_dist_node"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["stale", "stale"], "{v}");

    let r = run(c.citusctl().args(["resync", "--yes", "wk2"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "citus_update_node({sec}, '{}-citusctl-{sec}', 5432)",
            c.addr(replica)
        )),
        "{}",
        r.stdout
    );
    let p = c.sql(
        &cn_leader,
        "SELECT nodename FROM pg_dist_node WHERE groupid = 2 AND noderole = 'primary'",
    );
    let s = c.sql(
        &cn_leader,
        &format!("SELECT nodename FROM pg_dist_node WHERE nodeid = {sec}"),
    );
    assert_eq!((p, s), (c.addr(replica), c.addr(&old)));
    assert_eq!(c.wait_ok()["ok"], true);
    c.sql(
        &cn_leader,
        &format!("SELECT citus_remove_node('{}', 5432)", c.addr(&old)),
    );
    c.wait_ok();
}

#[test]
fn resync_never_writes_a_group_without_a_leader_or_an_unreachable_coordinator() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn_leader = c.leader_of(&v, "cn");
    // Make wk1's row wrong by hand, so that there is something resync would like to write.
    let wk1_row = primary_row(group(&v, "wk1"))["nodeid"].as_i64().unwrap();
    c.sql(
        &cn_leader,
        &format!("SELECT citus_update_node({wk1_row}, '127.0.99.99', 5432)"),
    );

    // Coordinator unreachable: exit 3, nothing written.
    let inv = std::fs::read_to_string(c.dir.join("inventory.yml")).unwrap();
    let bad = c.dir.join("inventory-cn-down.yml");
    let net = &c.env["CITUSCTL_TEST_NET"];
    let broken = inv
        .replace(
            &format!("{{ name: pg1, host: {net}.1 }}"),
            &format!("{{ name: pg1, host: {net}.1, api: \"http://127.0.0.1:9/\" }}"),
        )
        .replace(
            &format!("{{ name: pg2, host: {net}.2 }}"),
            &format!("{{ name: pg2, host: {net}.2, api: \"http://127.0.0.1:9/\" }}"),
        );
    assert_ne!(broken, inv, "inventory layout changed");
    std::fs::write(&bad, broken).unwrap();
    let before = dist_rows(&c, &cn_leader);
    let r = run(c.citusctl_with(&bad).args(["resync", "--yes"]));
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("coordinator unreachable"), "{}", r.stdout);
    assert_eq!(dist_rows(&c, &cn_leader), before);

    // Two leaders in wk1 (a fault Patroni prevents, so canned /cluster answers stand in for it).
    let two = fake_patroni_pair(
        &[("pg3", "leader"), ("pg4", "replica")],
        &[("pg3", "replica"), ("pg4", "leader")],
    );
    let split = c.dir.join("inventory-split.yml");
    std::fs::write(
        &split,
        inv.replace(
            &format!("{{ name: pg3, host: {net}.3 }}"),
            &format!("{{ name: pg3, host: {net}.3, api: \"{}\" }}", two.0),
        )
        .replace(
            &format!("{{ name: pg4, host: {net}.4 }}"),
            &format!("{{ name: pg4, host: {net}.4, api: \"{}\" }}", two.1),
        ),
    )
    .unwrap();
    let r = run(c.citusctl_with(&split).args(["resync", "--yes"]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("refused: wk1: wk1 has 2 leaders: pg3, pg4 (not written)"),
        "{}",
        r.stdout
    );
    assert_eq!(dist_rows(&c, &cn_leader), before);

    // No leader: stop both members of wk1.
    c.harness(&["kill-patroni", "pg4"]);
    c.harness(&["kill-patroni", "pg3"]);
    let r = run(c.citusctl().args(["resync", "--yes", "-f", "json"]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rep["plan"]["refused"][0]["scope"], "wk1", "{rep}");
    assert_eq!(dist_rows(&c, &cn_leader), before);
    c.harness(&["start-member", "pg3"]);
    c.harness(&["start-member", "pg4"]);

    // Back to normal: resync repairs the hand-made damage.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = run(c.citusctl().args(["resync", "--yes"]));
        if r.code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{}\n{}", r.stdout, r.stderr);
        std::thread::sleep(Duration::from_millis(500));
    }
    let v = c.wait_ok();
    let now = primary_row(group(&v, "wk1"))["nodename"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(now, c.addr(&c.leader_of(&v, "wk1")));
}

#[test]
fn resync_watch_repairs_a_switchover_by_itself_and_stops_on_sigterm() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let old = c.leader_of(&v, "wk2");
    let child = c
        .citusctl()
        .args(["resync", "--watch", "--interval", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.harness(&["switchover", "wk2"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let (r, v) = c.list_json(&[]);
        if r.code == 0 && c.leader_of(&v, "wk2") != old {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "controller did not repair: {}",
            r.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let new = c.leader_of(&v, "wk2");
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("resync controller for"), "{log}");
    assert!(
        log.contains("wk2 primary row") && log.contains(&format!("-> {}:5432", c.addr(&new))),
        "{log}"
    );
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    assert!(out.stdout.is_empty());
}

/// Two canned Patroni REST APIs whose /cluster documents disagree about the leader.
fn fake_patroni_pair(a: &[(&str, &str)], b: &[(&str, &str)]) -> (String, String) {
    fn serve(members: Vec<(String, String)>) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let ms: Vec<String> = members
            .iter()
            .map(|(n, r)| {
                format!(r#"{{"name":"{n}","role":"{r}","state":"running","timeline":1,"lag":0}}"#)
            })
            .collect();
        let body = format!(r#"{{"members":[{}]}}"#, ms.join(","));
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for mut s in l.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
                );
            }
        });
        format!("http://{addr}/")
    }
    let own = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(n, r)| (n.to_string(), r.to_string()))
            .collect()
    };
    (serve(own(a)), serve(own(b)))
}

fn setting(c: &Cluster, member: &str) -> String {
    c.try_sql(
        member,
        "SELECT current_setting('citus.use_secondary_nodes', true)",
    )
    .unwrap_or_else(|| "(down)".into())
}

#[test]
fn resync_sets_use_secondary_nodes_and_follows_a_coordinator_switchover() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let (l, r) = {
        let l = c.leader_of(&v, "cn");
        let r = if l == "pg1" {
            "pg2".to_owned()
        } else {
            "pg1".to_owned()
        };
        (l, r)
    };
    let replica_of = |scope: &str| {
        let leader = c.leader_of(&v, scope);
        group(&v, scope)["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .find(|n| *n != leader)
            .unwrap()
    };
    let (s1, s2) = (replica_of("wk1"), replica_of("wk2"));
    c.sql(&l, &format!("SELECT citus_add_node('{}', 5432, 1, 'secondary'), citus_add_node('{}', 5432, 2, 'secondary')", c.addr(&s1), c.addr(&s2)));
    assert_eq!(setting(&c, &r), "never");

    // Every worker group has a secondary: the coordinator replica should read from them.
    let rep = run(c.citusctl().args(["resync", "--yes", "-f", "json"]));
    assert_eq!(rep.code, 0, "{}\n{}", rep.stdout, rep.stderr);
    let j: Value = serde_json::from_str(&rep.stdout).unwrap();
    assert_eq!(j["plan"]["settings"][0]["member"], r.as_str(), "{j}");
    assert_eq!(j["plan"]["settings"][0]["wanted"], "always");
    assert!(
        j["plan"]["notes"]
            .to_string()
            .contains("applies to new sessions only"),
        "{j}"
    );
    assert_eq!(setting(&c, &r), "always");
    assert_eq!(setting(&c, &l), "never");

    // Switch the coordinator over: its own row (group 0) and the setting must follow.
    c.harness(&["switchover", "cn"]);
    let (_, v2) = c.list_json(&[]);
    assert_eq!(c.leader_of(&v2, "cn"), r);
    assert_eq!(primary_row(group(&v2, "cn"))["verdict"], "stale", "{v2}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The old leader comes back as a replica; until it streams, it is not planned for.
        let out = run(c.citusctl().args(["resync", "--yes"]));
        assert!(
            out.code == 0 || out.code == 4,
            "{}\n{}",
            out.stdout,
            out.stderr
        );
        if out.code == 0 && setting(&c, &l) == "always" && setting(&c, &r) == "never" {
            break;
        }
        assert!(Instant::now() < deadline, "{}\n{}", out.stdout, out.stderr);
        std::thread::sleep(Duration::from_millis(500));
    }
    let v3 = c.wait_ok();
    assert_eq!(primary_row(group(&v3, "cn"))["nodename"], c.addr(&r));

    // Without secondaries, replicas go back to `never`.
    c.sql(
        &r,
        &format!(
            "SELECT citus_remove_node('{}', 5432), citus_remove_node('{}', 5432)",
            c.addr(&s1),
            c.addr(&s2)
        ),
    );
    let out = run(c.citusctl().args(["resync", "--yes"]));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(setting(&c, &l), "never");
    c.wait_ok();
}

// ---- VIP mode: add-worker and resync ------------------------------------------------------

#[test]
fn vip_mode_add_worker_checks_where_the_vips_land_and_resync_converts_rows() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let vip = c.dir.join("inventory-vip.yml");
    let net = c.env["CITUSCTL_TEST_NET"].clone();
    let cn_leader = c.leader_of(&v, "cn");
    let vip_list = || {
        let r = run(c.citusctl_with(&vip).args(["list", "-f", "json"]));
        let j: Value = serde_json::from_str(&r.stdout).unwrap();
        (r.code, j)
    };

    // Rows registered with real addresses: in VIP mode they are wrong, and add-worker says so.
    let r = run(c.citusctl_with(&vip).args(["add-worker", "wk2", "--yes"]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("group 2 already has primary row"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("`citusctl resync` repoints it"),
        "{}",
        r.stdout
    );

    // resync converts them: primary rows to RW VIPs, RO VIPs added as secondaries.
    let r = run(c
        .citusctl_with(&vip)
        .args(["resync", "--dry-run", "-f", "json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan: Value = serde_json::from_str(&r.stdout).unwrap();
    let wanted: Vec<String> = plan["plan"]["databases"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}:{}:{}",
                c["scope"].as_str().unwrap(),
                c["noderole"].as_str().unwrap(),
                c["wanted"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        format!("cn:primary:{net}.100:5432"),
        format!("wk1:primary:{net}.110:5432"),
        format!("wk1:secondary:{net}.111:5432"),
        format!("wk2:primary:{net}.120:5432"),
        format!("wk2:secondary:{net}.121:5432"),
    ] {
        assert!(wanted.contains(&want), "{want} not in {wanted:?}");
    }
    let r = run(c.citusctl_with(&vip).args(["resync", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // Every row is right at once; list is green once Citus has synced its metadata (~1 s).
    let (_, j) = vip_list();
    for scope in ["cn", "wk1", "wk2"] {
        assert_eq!(group(&j, scope)["verdict"], "ok", "{j}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let j = loop {
        let (code, j) = vip_list();
        if code == 0 {
            break j;
        }
        assert!(Instant::now() < deadline, "{j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(group(&j, "wk1")["mode"], "vip");
    let r = run(c.citusctl_with(&vip).args(["add-worker", "wk1", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("already registered"), "{}", r.stderr);

    // The VIPs must land on the right roles; that is checked before anything is registered.
    // Real Citus keeps copies of pg_dist_node on its workers, so a group can only be made
    // "never registered" by hand on the stand-in; elsewhere the checks run on wk2 as it is.
    let from_scratch = c.env.get("CITUSCTL_CITUS").map(String::as_str) != Some("real");
    let rows_wk2 = || {
        c.sql(
            &cn_leader,
            "SELECT count(*) FROM pg_dist_node WHERE groupid = 2",
        )
    };
    if from_scratch {
        c.sql(&cn_leader, "DELETE FROM pg_dist_node WHERE groupid = 2");
        let (code, j) = vip_list();
        assert_eq!(code, 1);
        assert_eq!(group(&j, "wk2")["verdict"], "missing");
    }
    let before_wk2 = rows_wk2();
    c.harness(&["vip", "wk2", "rw", "wrong"]);
    let r = run(c.citusctl_with(&vip).args(["add-worker", "wk2", "--yes"]));
    c.harness(&["vip", "wk2", "rw", "right"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let want = format!(
        "the RW VIP {net}.120:5432 lands on a server in recovery (a replica), not the leader"
    );
    assert!(r.stdout.contains(&want), "{}", r.stdout);
    assert_eq!(rows_wk2(), before_wk2);
    c.harness(&["vip", "wk2", "ro", "wrong"]);
    let r = run(c.citusctl_with(&vip).args(["add-worker", "wk2", "--yes"]));
    c.harness(&["vip", "wk2", "ro", "right"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let want = format!("the RO VIP {net}.121:5432 lands on the leader although replica");
    assert!(r.stdout.contains(&want), "{}", r.stdout);
    assert_eq!(rows_wk2(), before_wk2);

    if from_scratch {
        let r = run(c
            .citusctl_with(&vip)
            .args(["add-worker", "wk2", "--yes", "-f", "json"]));
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let rep: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(rep["verified"], true);
    }
    assert_eq!(
        c.sql(&cn_leader, "SELECT string_agg(nodename || ':' || noderole, ' ' ORDER BY noderole) FROM pg_dist_node WHERE groupid = 2"),
        format!("{net}.120:primary {net}.121:secondary")
    );
    let r = run(c.citusctl_with(&vip).args(["add-worker", "wk2", "--yes"]));
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("already registered"));

    // A switchover moves the VIPs, not the rows: still ok once the old leader is a replica.
    c.harness(&["switchover", "wk1"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, j) = vip_list();
        if code == 0 {
            assert_eq!(
                primary_row(group(&j, "wk1"))["nodename"],
                format!("{net}.110")
            );
            break;
        }
        assert!(Instant::now() < deadline, "{j}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        run(c.citusctl_with(&vip).args(["resync", "--check"])).code,
        0
    );

    // Back to direct mode for the other tests.
    let leader = c.leader_of(&vip_list().1, "cn");
    c.sql(&leader, &format!("SELECT citus_remove_node('{net}.101', 5432), citus_remove_node('{net}.111', 5432), citus_remove_node('{net}.121', 5432)"));
    let r = run(c.citusctl().args(["resync", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    c.wait_ok();
}

// ---- switchover, failover and the cluster-wide operations --------------------------------

fn other_member(v: &Value, scope: &str, not: &str) -> String {
    group(v, scope)["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .find(|n| n != not)
        .unwrap()
}

#[test]
fn switchover_of_a_worker_pauses_it_and_leaves_every_row_ok() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let old = c.leader_of(&v, "wk1");
    let want = other_member(&v, "wk1", &old);
    let r = run(c
        .citusctl()
        .args(["switchover", "wk1", "--yes", "-f", "json"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rep["outcome"], "switched");
    assert_eq!(rep["old_leader"], old.as_str());
    assert_eq!(rep["new_leader"], want.as_str());
    assert!(rep["paused_ms"].as_u64().unwrap() > 0, "{rep}");
    assert_eq!(rep["rows_changed"].as_array().unwrap().len(), 1, "{rep}");
    assert!(
        r.stderr.contains("paused wk1 in postgres") && r.stderr.contains("resumed wk1 after"),
        "{}",
        r.stderr
    );
    // Right away, without any resync: the row already points at the new leader.
    let (_, v) = c.list_json(&[]);
    assert_eq!(c.leader_of(&v, "wk1"), want);
    assert_eq!(group(&v, "wk1")["verdict"], "ok", "{v}");
    assert_eq!(primary_row(group(&v, "wk1"))["nodename"], c.addr(&want));
    c.wait_ok();

    // Patroni's history shows it.
    let r = run(c.citusctl().args(["history", "wk1", "-f", "json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h: Value = serde_json::from_str(&r.stdout).unwrap();
    let entries = h["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "{h}");
    assert!(entries.iter().all(|e| e["scope"] == "wk1"));
    assert!(entries.last().unwrap()["timeline"].as_i64().unwrap() >= 1);
}

#[test]
fn switchover_of_the_coordinator_moves_its_own_row() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let old = c.leader_of(&v, "cn");
    let r = run(c
        .citusctl()
        .args(["switchover", "cn", "--yes", "-f", "json"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    let new = rep["new_leader"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(
        rep["paused_ms"].is_null(),
        "the coordinator cannot pause itself"
    );
    let (_, v) = c.list_json(&[]);
    assert_eq!(primary_row(group(&v, "cn"))["nodename"], c.addr(&new));
    assert_eq!(primary_row(group(&v, "cn"))["verdict"], "ok");
    c.wait_ok();
}

#[test]
fn refused_and_unfinished_switchovers_exit_non_zero_and_change_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn_leader = c.leader_of(&v, "cn");
    let before = dist_rows(&c, &cn_leader);

    // Patroni says no: its reason verbatim, exit 4.
    let r = run(c.citusctl().args([
        "switchover",
        "wk2",
        "--yes",
        "--scheduled",
        "2001-01-01T00:00:00+00:00",
    ]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("in the past"), "{}", r.stdout);
    // citusctl says no: not a candidate.
    let leader = c.leader_of(&v, "wk2");
    let r = run(c
        .citusctl()
        .args(["switchover", "wk2", "--yes", "--candidate", &leader]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is not a replica of wk2"), "{}", r.stdout);
    // Without a terminal, no candidate and no --yes: a usage error.
    let r = run(c.citusctl().args(["switchover", "wk2"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(dist_rows(&c, &cn_leader), before);

    // The new leader cannot be writable within 200 ms: the pause is let go, citusctl watches
    // Patroni finish and repairs the rows itself, and says that writes failed meanwhile (exit 1).
    let r = run(c.citusctl().args([
        "switchover",
        "wk2",
        "--yes",
        "--pause-timeout",
        "200ms",
        "-f",
        "json",
    ]));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rep["outcome"], "switched without the pause", "{rep}");
    let error = rep["error"].as_str().unwrap();
    assert!(error.contains("the pause was lost"), "{rep}");
    assert!(error.contains("writes to wk2 were not held"), "{rep}");
    // Right away, with no other command: the row names the new leader.
    let (_, v) = c.list_json(&[]);
    assert_ne!(c.leader_of(&v, "wk2"), leader);
    assert_eq!(group(&v, "wk2")["verdict"], "ok", "{v}");
    assert_eq!(
        primary_row(group(&v, "wk2"))["nodename"],
        c.addr(&c.leader_of(&v, "wk2"))
    );
    let r = run(c.citusctl().args(["resync", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    c.wait_ok();
}

#[test]
fn failover_promotes_the_candidate_and_repairs_the_row_at_once() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let old = c.leader_of(&v, "wk2");
    let cand = other_member(&v, "wk2", &old);
    let r = run(c
        .citusctl()
        .args(["failover", "wk2", "--candidate", "pg99", "--yes"]));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("pg99 is not a member of wk2"),
        "{}",
        r.stderr
    );
    let r = run(c.citusctl().args([
        "failover",
        "wk2",
        "--candidate",
        &cand,
        "--yes",
        "-f",
        "json",
    ]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no pause is possible"), "{}", r.stderr);
    let (_, v) = c.list_json(&[]);
    assert_eq!(c.leader_of(&v, "wk2"), cand);
    assert_eq!(primary_row(group(&v, "wk2"))["nodename"], c.addr(&cand));
    assert_eq!(group(&v, "wk2")["verdict"], "ok");
    c.wait_ok();
}

#[test]
fn reload_pause_resume_and_restart_across_groups() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    c.wait_ok();
    let r = run(c
        .citusctl()
        .args(["reload", "--all", "--yes", "-f", "json"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    let results = rep["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert!(
        results
            .iter()
            .all(|x| x["status"] == "ok" && x["http_status"] == 202),
        "{rep}"
    );
    // Workers first, the coordinator last.
    assert_eq!(results.last().unwrap()["scope"], "cn");
    assert_eq!(
        run(c.citusctl().arg("reload")).code,
        2,
        "no group named and no --all"
    );

    let r = run(c.citusctl().args(["pause", "wk1", "wk2", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (_, v) = c.list_json(&[]);
    assert_eq!(group(&v, "wk1")["paused"], true);
    assert_eq!(group(&v, "wk2")["paused"], true);
    assert_eq!(group(&v, "cn")["paused"], false);
    let r = run(c.citusctl().args(["resume", "wk1", "wk2", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (_, v) = c.list_json(&[]);
    assert_eq!(group(&v, "wk1")["paused"], false);

    let leader = c.leader_of(&v, "wk1");
    let r = run(c.citusctl().args(["restart", "wk1", "--yes", "-f", "json"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    let order: Vec<&str> = rep["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["member"].as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 2);
    assert_eq!(order[1], leader, "the leader restarts last");
    let v = c.wait_ok();
    assert_eq!(
        c.leader_of(&v, "wk1"),
        leader,
        "a restart is not a switchover"
    );
}

#[test]
fn add_worker_in_direct_mode_registers_the_leader_and_is_idempotent() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn_leader = c.leader_of(&v, "cn");
    let leader = c.leader_of(&v, "wk2");
    let replica = other_member(&v, "wk2", &leader);
    // Registered already: nothing to do, exit 0.
    let r = run(c.citusctl().args(["add-worker", "wk2", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("already registered"), "{}", r.stderr);
    assert_eq!(
        run(c.citusctl().args(["add-worker", "cn", "--yes"])).code,
        2,
        "the coordinator is not a worker"
    );
    if c.env.get("CITUSCTL_CITUS").map(String::as_str) == Some("real") {
        return; // a never-registered group can only be made by hand on the stand-in
    }
    c.sql(&cn_leader, "DELETE FROM pg_dist_node WHERE groupid = 2");
    let r = run(c.citusctl().args([
        "add-worker",
        "wk2",
        "--with-secondaries",
        "--dry-run",
        "-f",
        "json",
    ]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        c.sql(
            &cn_leader,
            "SELECT count(*) FROM pg_dist_node WHERE groupid = 2"
        ),
        "0"
    );
    let r = run(c
        .citusctl()
        .args(["add-worker", "wk2", "--with-secondaries", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        c.sql(&cn_leader, "SELECT string_agg(nodename || ':' || noderole, ' ' ORDER BY noderole) FROM pg_dist_node WHERE groupid = 2"),
        format!("{}:primary {}:secondary", c.addr(&leader), c.addr(&replica))
    );
    let (code, v) = c.list_json(&[]);
    assert_eq!(group(&v, "wk2")["verdict"], "ok", "{v}");
    let _ = code;
    c.sql(
        &cn_leader,
        &format!("SELECT citus_remove_node('{}', 5432)", c.addr(&replica)),
    );
    let r = run(c.citusctl().args(["resync", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    c.wait_ok();
}

// ---------------------------------------------------------------------------------------------
// The pause under load: pgbench's TPC-B through the coordinator, and a long transaction in the way.

fn real_citus(c: &Cluster) -> bool {
    c.env.get("CITUSCTL_CITUS").map(String::as_str) == Some("real")
}

/// The pause method this cluster's Citus calls for: before 12.1 there is no pause function.
fn expected_pause_method(c: &Cluster) -> &'static str {
    match c.env.get("CITUSCTL_CITUS_MODE").map(String::as_str) {
        Some(m) if m.starts_with("11.") => "rename",
        _ => "function",
    }
}

/// Every column of every row, for "byte for byte the same".
fn dist_rows_full(c: &Cluster, cn_leader: &str) -> String {
    c.sql(
        cn_leader,
        "SELECT string_agg(n::text, ' ' ORDER BY nodeid) FROM pg_dist_node n",
    )
}

const TPCB_TABLES: [(&str, &str); 4] = [
    ("pgbench_accounts", "aid"),
    ("pgbench_branches", "bid"),
    ("pgbench_tellers", "tid"),
    ("pgbench_history", "aid"),
];

/// pgbench's tables on the coordinator, distributed: by Citus, or registered with the stand-in
/// (which keeps them local and models the shard locks a write takes, see `tpcb_script`).
fn tpcb_setup(c: &Cluster, cn: &str) {
    let registered = c.sql(
        cn,
        "SELECT count(DISTINCT logicalrelid) FROM pg_dist_shard WHERE logicalrelid::text LIKE 'pgbench_%'",
    );
    if registered == "4" {
        return;
    }
    let out = Command::new("/usr/lib/postgresql/15/bin/pgbench")
        .args([
            "-i",
            "-q",
            "-s",
            "2",
            "-h",
            &c.addr(cn),
            "-U",
            "postgres",
            "postgres",
        ])
        .env("PGPASSWORD", &c.env["CITUS_PGPASSWORD"])
        .env("PGSSLMODE", "prefer")
        .output()
        .expect("pgbench");
    assert!(
        out.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (t, col) in TPCB_TABLES {
        if real_citus(c) {
            c.sql(
                cn,
                &format!("SELECT create_distributed_table('{t}', '{col}')"),
            );
        } else {
            c.sql(
                cn,
                &format!("SELECT citus_standin.create_distributed_table('{t}', 8)"),
            );
        }
    }
}

/// TPC-B for the stand-in: pgbench's own script, each statement preceded by the shard lock a
/// Citus write of that row takes (`citus_standin.write_shard`), held to the end of the
/// transaction. Real Citus runs pgbench's built-in script.
const TPCB_STANDIN_SCRIPT: &str = r"\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
BEGIN;
SELECT citus_standin.write_shard('pgbench_accounts', :aid);
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SELECT citus_standin.write_shard('pgbench_tellers', :tid);
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
SELECT citus_standin.write_shard('pgbench_branches', :bid);
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
SELECT citus_standin.write_shard('pgbench_history', :aid);
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
";

/// `pgbench -n -c 4 -j 2 -T secs` (errors in full) through the coordinator leader, started in the background.
fn tpcb_start(c: &Cluster, cn: &str, secs: u32) -> std::process::Child {
    let mut cmd = Command::new("/usr/lib/postgresql/15/bin/pgbench");
    cmd.args(["-n", "-c", "4", "-j", "2", "-T", &secs.to_string()])
        // A failed transaction names its error and kind (deadlock or serialization) in the output.
        .args(["--failures-detailed", "--verbose-errors"])
        .args(["-h", &c.addr(cn), "-U", "postgres"])
        .env("PGPASSWORD", &c.env["CITUS_PGPASSWORD"])
        .env("PGSSLMODE", "prefer")
        .env("PGAPPNAME", "citusctl-test-pgbench")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if !real_citus(c) {
        let script = c.dir.join("tpcb-standin.sql");
        std::fs::write(&script, TPCB_STANDIN_SCRIPT).unwrap();
        cmd.arg("-f").arg(script);
    }
    cmd.arg("postgres");
    cmd.spawn().expect("pgbench")
}

/// pgbench's own account of the run: (transactions committed, failed, its whole output);
/// pgbench must have succeeded with no client aborted.
fn tpcb_finish(child: std::process::Child) -> (u64, u64, String) {
    let (done, failed, aborted, text) = tpcb_counts(child);
    assert!(!aborted, "pgbench failed or a client aborted:\n{text}");
    (done, failed, text)
}

/// pgbench's account without judging it: (committed, failed, a client aborted or pgbench
/// failed, output). Faults that cut connections may abort clients; a lost commit never is.
fn tpcb_counts(child: std::process::Child) -> (u64, u64, bool, String) {
    let out = child.wait_with_output().expect("pgbench");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let number = |label: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.split('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no '{label}' in pgbench's output:\n{text}"))
    };
    (
        number("number of transactions actually processed: "),
        number("number of failed transactions: "),
        !out.status.success() || text.contains("aborted"),
        text,
    )
}

#[test]
fn tpcb_load_loses_no_transaction_to_a_switchover_or_a_restart_of_its_group() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    tpcb_setup(&c, &cn);
    for action in ["switchover", "restart"] {
        let v = c.wait_ok();
        let before = dist_rows_full(&c, &cn);
        let old = c.leader_of(&v, "wk1");
        c.sql(&cn, "TRUNCATE pgbench_history");
        let load = tpcb_start(&c, &cn, 12);
        std::thread::sleep(Duration::from_secs(3));
        let r = run(c.citusctl().args([action, "wk1", "--yes", "-f", "json"]));
        let (done, failed, text) = tpcb_finish(load);
        assert_eq!(r.code, 0, "{action}:\n{}\n{}", r.stdout, r.stderr);
        let rep: Value = serde_json::from_str(&r.stdout).unwrap();
        let pause = if action == "switchover" {
            rep["pause"].clone()
        } else {
            rep["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["member"] == old.as_str())
                .map(|x| x["pause"].clone())
                .unwrap()
        };
        assert_eq!(pause["method"], expected_pause_method(&c), "{rep}");
        assert!(pause["terminated"].as_array().unwrap().is_empty(), "{rep}");
        // Not one client transaction failed or was lost: every commit pgbench counted is there.
        assert_eq!(
            failed, 0,
            "{action}: failed transactions:\n{text}\n{}",
            r.stderr
        );
        assert!(done > 0, "{text}");
        assert_eq!(
            c.sql(&cn, "SELECT count(*) FROM pgbench_history"),
            done.to_string(),
            "{action}: acknowledged transactions missing:\n{text}"
        );
        if action == "restart" {
            // A restart changes nothing in pg_dist_node, whatever the pause's method.
            assert_eq!(dist_rows_full(&c, &cn), before, "{}", r.stderr);
        }
        c.wait_ok();
    }
}

/// A transaction on one of wk1's shards, open for 30 s through the coordinator leader.
/// A transaction on `cn` that runs `first`, then stays open for 30 s (`SELECT pg_sleep(30)`):
/// the psql process and the transaction's backend pid, once it is sleeping.
#[allow(clippy::zombie_processes)] // the caller waits for it (or Citus ends it)
fn open_transaction(c: &Cluster, cn: &str, first: &str) -> (std::process::Child, i64) {
    let child = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/cluster/cluster.sh"
        ))
        .args(["psql", "--dir"])
        .arg(&c.dir)
        .args([cn, "-XAq", "-v", "ON_ERROR_STOP=1"])
        .args([
            "-c",
            "BEGIN",
            "-c",
            first,
            "-c",
            "SELECT pg_sleep(30)",
            "-c",
            "COMMIT",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("psql");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = c.sql(
            cn,
            "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'",
        );
        if !p.is_empty() {
            return (child, p.parse().unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "the open transaction did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A transaction on wk1's first shard, open for 30 s through the coordinator leader.
fn long_writer(c: &Cluster, cn: &str) -> (std::process::Child, i64) {
    let (first, _) = wk1_shards(c, cn);
    open_transaction(c, cn, &write_to_shard(c, cn, &first, "long writer"))
}

/// The first and the last of wk1's shards of `citusctl_test_events`, in shard order (the order
/// the pause takes them in).
fn wk1_shards(c: &Cluster, cn: &str) -> (String, String) {
    let shards = c.sql(
        cn,
        "SELECT min(p.shardid) || ' ' || max(p.shardid) FROM pg_dist_placement p \
           JOIN pg_dist_shard s USING (shardid) \
          WHERE p.groupid = 1 AND s.logicalrelid = 'citusctl_test_events'::regclass",
    );
    let (first, last) = shards.split_once(' ').unwrap();
    (first.to_owned(), last.to_owned())
}

/// A statement that writes to shard `shardid` of `citusctl_test_events` through the coordinator
/// `cn` and holds it to the end of its transaction, as a Citus client's write does (the stand-in:
/// the shard's shared lock, which its pause takes in exclusive mode).
fn write_to_shard(c: &Cluster, cn: &str, shardid: &str, note: &str) -> String {
    if real_citus(c) {
        let id = c.sql(
            cn,
            &format!(
                "SELECT g FROM generate_series(1, 10000) g \
                  WHERE get_shard_id_for_distribution_column('citusctl_test_events', g) = {shardid} LIMIT 1"
            ),
        );
        format!(
            "INSERT INTO citusctl_test_events VALUES ({id}, '{note}') ON CONFLICT (id) DO UPDATE SET note = '{note}'"
        )
    } else {
        format!("SELECT pg_advisory_xact_lock_shared(1129878612, {shardid})")
    }
}

#[test]
fn a_client_in_a_wait_cycle_with_the_pause_goes_on_and_the_pause_lets_go_and_tries_again() {
    use std::io::Write;
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    // The pause takes wk1's shards one after the other in shard order. The client writes the
    // last one, waits until the pause waits for it (holding the first ones by then; caught in
    // the wait's first 20 ms, well within the try's lock_timeout), and writes the first: each
    // waits for the other. PostgreSQL's detector would end that after
    // deadlock_timeout, Citus's distributed one (every 2 s) by cancelling the youngest: the
    // client, if it began after the try. The pause's watcher lets go of the try first.
    let (first, last) = wk1_shards(&c, &cn);
    assert_ne!(first, last);
    let script = format!(
        "BEGIN;\n{};\n\
         DO $$ BEGIN FOR i IN 1 .. 10000 LOOP \
            EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity a JOIN pg_locks l USING (pid) \
                               WHERE a.application_name = 'citusctl pause wk1' AND NOT l.granted \
                                 AND clock_timestamp() - l.waitstart < interval '20 ms'); \
            PERFORM pg_sleep(0.002); END LOOP; END $$;\n\
         SELECT 'waited for by the pause';\n{};\nCOMMIT;\nSELECT 'client committed';\n",
        write_to_shard(&c, &cn, &last, "cycle"),
        write_to_shard(&c, &cn, &first, "cycle"),
    );
    let mut client = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/cluster/cluster.sh"
        ))
        .args(["psql", "--dir"])
        .arg(&c.dir)
        .args([cn.as_str(), "-XAtq", "-v", "ON_ERROR_STOP=1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql");
    client
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let r = run(c
        .citusctl()
        .args(["switchover", "wk1", "--yes", "-f", "json"]));
    let out = client.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && said.contains("waited for by the pause")
            && said.contains("client committed"),
        "the client's transaction did not commit:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    let backed_off = rep["pause"]["backed_off"].as_u64().unwrap();
    assert!(
        backed_off >= 1 && rep["pause"]["tries"].as_u64().unwrap() > backed_off,
        "the pause did not let go of a try for the waiting client: {rep}\n{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("let go for a client waiting on the pause"),
        "{}",
        r.stderr
    );
    let (_, v) = c.list_json(&[]);
    assert_ne!(c.leader_of(&v, "wk1"), old);
    c.wait_ok();
}

/// A switchover stopped before Patroni was asked, in time (exit 4, outcome `refused`, within
/// 15 s), naming session `pid` in the way and saying nothing changed; its JSON report.
fn refused_naming(r: &Run, took: Duration, pid: i64) -> Value {
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rep["outcome"], "refused");
    let blockers = rep["pause"]["blockers"].as_array().unwrap();
    assert!(
        blockers.iter().any(|b| b["pid"].as_i64() == Some(pid)),
        "pid {pid} not named: {rep}"
    );
    assert!(
        rep["error"].as_str().unwrap().contains("nothing changed"),
        "{rep}"
    );
    rep
}

/// Start `switchover SCOPE EXTRA...` and return once it says it asked Patroni (the pause is held).
#[allow(clippy::zombie_processes)] // the caller waits for it
fn switchover_until_asked(
    c: &Cluster,
    scope: &str,
    extra: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    use std::io::BufRead;
    let mut child = c
        .citusctl()
        .args(["switchover", scope, "--yes", "-f", "json"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            let out = child.wait_with_output().unwrap();
            panic!(
                "citusctl ended early ({}):\n{said}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        said.push_str(&line);
        if line.contains("asked Patroni") {
            return (child, err);
        }
    }
}

/// citusctl's pause sessions on the coordinator leader.
fn pause_sessions(c: &Cluster, cn: &str) -> String {
    c.sql(
        cn,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'citusctl pause%'",
    )
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn a_long_transaction_stops_the_pause_before_patroni_is_asked_unless_terminating_is_chosen() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    let before = dist_rows_full(&c, &cn);
    let (mut writer, pid) = long_writer(&c, &cn);

    // By default: short tries for --pause-wait, then exit 4 with the session named, nothing changed.
    let started = Instant::now();
    let r = run(c.citusctl().args([
        "switchover",
        "wk1",
        "--yes",
        "--pause-wait",
        "2s",
        "-f",
        "json",
    ]));
    let took = started.elapsed();
    refused_naming(&r, took, pid);
    assert_eq!(dist_rows_full(&c, &cn), before);
    let (_, v) = c.list_json(&[]);
    assert_eq!(
        c.leader_of(&v, "wk1"),
        old,
        "Patroni must not have been asked"
    );
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the writer must live on"
    );

    // --terminate-after: Citus ends it after the grace period; the session is named as ended.
    let r = run(c.citusctl().args([
        "switchover",
        "wk1",
        "--yes",
        "--terminate-after",
        "1s",
        "-f",
        "json",
    ]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    let ended = rep["pause"]["terminated"].as_array().unwrap();
    assert!(
        ended.iter().any(|b| b["pid"].as_i64() == Some(pid)),
        "pid {pid} not named as terminated: {rep}"
    );
    let status = writer.wait().unwrap();
    assert!(
        !status.success(),
        "the long writer should have been terminated"
    );
    let (_, v) = c.list_json(&[]);
    assert_ne!(c.leader_of(&v, "wk1"), old);
    c.wait_ok();
}

// ---- --hold-reads: the group's distributed tables locked on the coordinator ----------------

/// Relation locks on citusctl_test_events (and its shards) held on `member` by anyone else:
/// `pid application mode granted` per line.
fn table_locks(c: &Cluster, member: &str) -> String {
    c.sql(member, TABLE_LOCKS_SQL)
}
const TABLE_LOCKS_SQL: &str = "SELECT string_agg(l.pid || ' ' || coalesce(a.application_name, '') || ' ' || l.mode || ' ' || l.granted, E'\\n' ORDER BY l.pid) \
   FROM pg_locks l JOIN pg_class r ON r.oid = l.relation LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
  WHERE r.relname LIKE 'citusctl_test_events%' AND l.pid <> pg_backend_pid()";

#[test]
fn hold_reads_locks_the_groups_tables_on_the_coordinator_only_while_the_switchover_runs() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    let want = other_member(&v, "wk1", &old);
    // wk2's leader (untouched), and wk1's old leader while it still answers.
    let others = [c.leader_of(&v, "wk2"), old.clone()];
    let (child, mut err) = switchover_until_asked(&c, "wk1", &["--hold-reads"]);
    // While Patroni switches over: the pause session holds the table in ACCESS EXCLUSIVE mode
    // on the coordinator, and a read through it waits (here: until its statement_timeout).
    let locks = table_locks(&c, &cn);
    let read = c.try_sql(
        &cn,
        "SET statement_timeout = 300; SELECT count(*) FROM citusctl_test_events",
    );
    let on_workers: Vec<String> = others
        .iter()
        .map(|m| {
            c.try_sql(m, TABLE_LOCKS_SQL)
                .unwrap_or_else(|| "(not answering)".into())
        })
        .collect();
    let out = child.wait_with_output().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut err, &mut said).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{said}");
    assert!(
        locks
            .lines()
            .any(|l| l.contains("citusctl pause wk1 AccessExclusiveLock true")),
        "no ACCESS EXCLUSIVE lock of the pause on the coordinator:\n{locks}"
    );
    assert_eq!(read, None, "a read through the coordinator did not wait");
    // Nothing on the workers: Citus did not propagate the LOCK (real Citus; the stand-in's
    // workers have no such table, which this shows just as well).
    for (m, l) in others.iter().zip(&on_workers) {
        assert!(
            !l.contains("AccessExclusiveLock"),
            "{m} holds a lock on the table:\n{l}"
        );
    }
    let rep: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rep["outcome"], "switched", "{rep}");
    assert_eq!(rep["new_leader"], want.as_str());
    // (Other tests distribute tables too, e.g. pgbench's: all of the group's are held.)
    assert!(
        rep["pause"]["held_relations"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r == "citusctl_test_events")),
        "{rep}"
    );
    // Afterwards: nothing held, reads go on, the row names the new leader.
    assert_eq!(table_locks(&c, &cn), "");
    c.sql(&cn, "SELECT count(*) FROM citusctl_test_events");
    let (_, v) = c.list_json(&[]);
    assert_eq!(primary_row(group(&v, "wk1"))["nodename"], c.addr(&want));
    c.wait_ok();

    // restart takes the option too: held while the leader restarts, let go after (ROLLBACK).
    let leader = c.leader_of(&v, "wk1");
    let r = run(c
        .citusctl()
        .args(["restart", "wk1", "--hold-reads", "--yes", "-f", "json"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    let last = rep["results"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["member"], leader.as_str(), "{rep}");
    assert!(
        last["pause"]["held_relations"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r == "citusctl_test_events")),
        "{rep}"
    );
    assert_eq!(table_locks(&c, &cn), "");
    c.wait_ok();

    // The coordinator group cannot be held this way: a usage error, nothing done.
    let r = run(c
        .citusctl()
        .args(["switchover", "cn", "--hold-reads", "--yes"]));
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--hold-reads"), "{}", r.stderr);
}

/// Run `f` while a reader runs `SELECT count(*) FROM citusctl_test_events` through the
/// coordinator leader over and over: `f`'s result, the reader's longest statement, and how many.
fn with_steady_reader<T: Send>(
    c: &Cluster,
    cn: &str,
    f: impl FnOnce() -> T + Send,
) -> (T, Duration, u32) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let steady = s.spawn(|| {
            let mut longest = Duration::ZERO;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                c.sql(cn, "SELECT count(*) FROM citusctl_test_events");
                longest = longest.max(t.elapsed());
                n += 1;
            }
            (longest, n)
        });
        let r = f();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (longest, n) = steady.join().unwrap();
        (r, longest, n)
    })
}

#[test]
fn a_long_reader_stops_hold_reads_before_patroni_is_asked_and_no_reader_waits_long() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    let before = dist_rows_full(&c, &cn);
    let (mut reader, pid) = open_transaction(&c, &cn, "SELECT count(*) FROM citusctl_test_events");

    // Meanwhile a steady reader through the coordinator: each try's pending lock queues it for
    // at most the try's lock_timeout (100 ms), never for the whole attempt.
    let started = Instant::now();
    let (r, longest, n) = with_steady_reader(&c, &cn, || {
        run(c.citusctl().args([
            "switchover",
            "wk1",
            "--yes",
            "--hold-reads",
            "--pause-wait",
            "3s",
            "-f",
            "json",
        ]))
    });
    let took = started.elapsed();
    refused_naming(&r, took, pid);
    assert!(n >= 3, "the steady reader ran {n} statements");
    assert!(
        longest < Duration::from_secs(1),
        "a reader waited {longest:?} behind the tries (--pause-wait 3s)"
    );
    assert_eq!(dist_rows_full(&c, &cn), before);
    let (_, v) = c.list_json(&[]);
    assert_eq!(
        c.leader_of(&v, "wk1"),
        old,
        "Patroni must not have been asked"
    );
    assert!(
        reader.try_wait().unwrap().is_none(),
        "the long reader must live on"
    );
    assert_eq!(pause_sessions(&c, &cn), "0", "the pause was let go");
    // --terminate-after ends sessions in the pause's way, not readers: the LOCK keeps its short
    // tries, and the switchover still stops before Patroni is asked.
    let (r, longest, _) = with_steady_reader(&c, &cn, || {
        run(c.citusctl().args([
            "switchover",
            "wk1",
            "--yes",
            "--hold-reads",
            "--terminate-after",
            "1s",
            "--pause-wait",
            "3s",
            "-f",
            "json",
        ]))
    });
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(
        longest < Duration::from_secs(1),
        "with --terminate-after a reader waited {longest:?} behind the tries"
    );
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        rep["pause"]["terminated"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{rep}"
    );
    assert!(
        reader.try_wait().unwrap().is_none(),
        "the long reader must live on"
    );
    assert_eq!(c.leader_of(&c.list_json(&[]).1, "wk1"), old);
    // Without --hold-reads the reader is in nobody's way: Citus' pause does not wait for reads.
    let r = run(c.citusctl().args([
        "switchover",
        "wk1",
        "--yes",
        "--pause-wait",
        "3s",
        "-f",
        "json",
    ]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    c.sql(&cn, &format!("SELECT pg_terminate_backend({pid})"));
    let _ = reader.wait();
    c.wait_ok();
}

// ---------------------------------------------------------------------------------------------
// The pause guard: refusals before anything is held, and Ctrl-C.

#[test]
fn a_wrong_patroni_password_is_refused_before_the_group_is_paused() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    let before = dist_rows_full(&c, &cn);
    let r = run(c
        .citusctl()
        .env("PATRONI_PASSWORD", "not-the-password")
        .args(["switchover", "wk1", "--yes", "-f", "json"]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rep["outcome"], "refused");
    let error = rep["error"].as_str().unwrap();
    assert!(error.contains("HTTP 401"), "{rep}");
    assert!(error.contains("checked before pausing"), "{rep}");
    // Writes were never held: no pause was taken at all.
    assert!(rep["pause"].is_null(), "{rep}");
    assert!(rep["paused_ms"].is_null(), "{rep}");
    assert!(!r.stderr.contains("paused wk1"), "{}", r.stderr);
    assert_eq!(dist_rows_full(&c, &cn), before);
    let (_, v) = c.list_json(&[]);
    assert_eq!(c.leader_of(&v, "wk1"), old);
}

#[test]
fn ctrl_c_while_the_pause_is_being_had_lets_it_go_and_exits_130() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    let before = dist_rows_full(&c, &cn);
    let (mut writer, _) = long_writer(&c, &cn);
    let mut child = c
        .citusctl()
        .args([
            "switchover",
            "wk1",
            "--yes",
            "--pause-wait",
            "30s",
            "-f",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Trying (and losing to the writer) for a while: a pause session exists on the coordinator.
    let pauses = || pause_sessions(&c, &cn);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pauses() == "0" {
        assert!(Instant::now() < deadline, "no pause session appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "citusctl did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["outcome"], "interrupted");
    // Nothing is left holding the group, nothing changed, Patroni was not asked.
    let deadline = Instant::now() + Duration::from_secs(3);
    while pauses() != "0" {
        assert!(
            Instant::now() < deadline,
            "a pause session outlived citusctl"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(dist_rows_full(&c, &cn), before);
    let (_, v) = c.list_json(&[]);
    assert_eq!(c.leader_of(&v, "wk1"), old);
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the writer must live on"
    );
    c.sql(
        &cn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'",
    );
    let _ = writer.wait();
    c.wait_ok();
}

#[test]
fn a_frozen_client_does_not_hold_the_group_and_repairs_the_rows_when_it_wakes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    let (child, mut err) = switchover_until_asked(&c, "wk1", &["--pause-timeout", "3s"]);
    // Patroni has the request; freeze citusctl as a laptop lid or a hung SSH session would.
    std::thread::sleep(Duration::from_millis(300));
    signal(child.id(), "-STOP");
    let stopped = Instant::now();
    // The coordinator ends the pause by itself (idle_in_transaction_session_timeout).
    let pauses = || pause_sessions(&c, &cn);
    while pauses() != "0" {
        assert!(
            stopped.elapsed() < Duration::from_secs(3 + 3),
            "the pause outlived --pause-timeout + 3 s with the client frozen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ended_after = stopped.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    signal(child.id(), "-CONT");
    let woke = Instant::now();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let out = child.wait_with_output().unwrap();
    let took = woke.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{rest}");
    let rep: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rep["outcome"], "switched without the pause", "{rep}");
    // With no other command, within 5 s of waking: the rows name the new leader.
    assert!(took < Duration::from_secs(5), "took {took:?} after waking");
    eprintln!(
        "frozen client: pause ended by the server {ended_after:?} after SIGSTOP; exit {took:?} after SIGCONT; {}",
        rep["error"]
    );
    let (_, v) = c.list_json(&[]);
    let new = c.leader_of(&v, "wk1");
    assert_ne!(new, old);
    assert_eq!(group(&v, "wk1")["verdict"], "ok", "{v}");
    assert_eq!(primary_row(group(&v, "wk1"))["nodename"], c.addr(&new));
    c.wait_ok();
}

#[test]
fn one_writer_at_a_time_a_busy_writer_lock_stops_the_pause_and_the_controller_waits() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk2");
    // Another citusctl at work: a session that holds the writer lock (crate::apply::WRITER_LOCK).
    let (mut holder, pid) = open_transaction(
        &c,
        &cn,
        "SELECT pg_advisory_xact_lock(1667855477, 1935897708)",
    );
    // A switchover cannot pause while it is held: exit 4, the holder named, nothing asked.
    let r = run(c.citusctl().args([
        "switchover",
        "wk2",
        "--yes",
        "--pause-wait",
        "1s",
        "-f",
        "json",
    ]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        rep["pause"]["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["pid"].as_i64() == Some(pid)),
        "{rep}"
    );
    let (_, v) = c.list_json(&[]);
    assert_eq!(c.leader_of(&v, "wk2"), old);

    // A stale row, and a controller: it skips its passes while the lock is held ...
    c.harness(&["switchover", "wk2"]);
    let child = c
        .citusctl()
        .args(["resync", "--watch", "--interval", "200ms"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let (_, v) = c.list_json(&[]);
    assert_ne!(c.leader_of(&v, "wk2"), old);
    assert_eq!(
        primary_row(group(&v, "wk2"))["nodename"],
        c.addr(&old),
        "the controller wrote while another citusctl held the lock"
    );
    // ... and repairs the row once it is free.
    c.sql(&cn, &format!("SELECT pg_terminate_backend({pid})"));
    let _ = holder.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (r, v) = c.list_json(&[]);
        if r.code == 0 && group(&v, "wk2")["verdict"] == "ok" {
            break;
        }
        assert!(Instant::now() < deadline, "not repaired: {}", r.stdout);
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("another citusctl is writing pg_dist_node") && log.contains("skipped"),
        "{log}"
    );
    assert!(log.contains("wk2 primary row"), "{log}");
    c.wait_ok();
}

#[test]
fn a_member_missing_from_the_inventory_is_shown_and_never_chosen_or_written() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let leader = c.leader_of(&v, "wk1");
    let replica = other_member(&v, "wk1", &leader);
    // The same cluster, with wk1's replica left out of the inventory.
    let text = std::fs::read_to_string(c.dir.join("inventory.yml")).unwrap();
    let partial: String = text
        .lines()
        .filter(|l| !l.contains(&format!("name: {replica},")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(partial, text);
    let inv = c.dir.join("inventory-partial.yml");
    std::fs::write(&inv, partial).unwrap();
    let before = dist_rows_full(&c, &cn);

    let r = run(c.citusctl_with(&inv).args(["list", "-f", "json"]));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let problems = v["problems"].to_string();
    assert!(
        problems.contains(&format!(
            "{replica}: member of wk1 but not in the inventory"
        )),
        "{problems}"
    );
    // Not a candidate, even when asked for by name.
    let r = run(c
        .citusctl_with(&inv)
        .args(["switchover", "wk1", "--yes", "-f", "json"]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let r = run(c.citusctl_with(&inv).args([
        "switchover",
        "wk1",
        "--yes",
        "--candidate",
        &replica,
        "-f",
        "json",
    ]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("not in the inventory"), "{}", r.stdout);
    assert_eq!(dist_rows_full(&c, &cn), before);
    let (_, v) = c.list_json(&[]);
    assert_eq!(c.leader_of(&v, "wk1"), leader);
}

#[test]
fn resync_looks_again_after_the_prompt_and_writes_nothing_when_the_cluster_moved() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk2");
    c.harness(&["switchover", "wk2"]);
    // While the operator reads the plan, someone edits the row by hand.
    let nodeid = c.sql(
        &cn,
        "SELECT nodeid FROM pg_dist_node WHERE groupid = 2 AND noderole = 'primary'",
    );
    let (text, status) = at_the_prompt(&c, "resync", "Apply", || {
        c.sql(
            &cn,
            &format!("SELECT citus_update_node({nodeid}, 'moved-by-hand.invalid', 5432)"),
        );
    });
    assert!(
        text.contains("the cluster changed while you were deciding"),
        "{text}"
    );
    assert!(!status.success(), "{text}");
    // Nothing written: the row is as the hand left it.
    assert_eq!(
        c.sql(
            &cn,
            &format!("SELECT nodename FROM pg_dist_node WHERE nodeid = {nodeid}")
        ),
        "moved-by-hand.invalid"
    );
    let (_, v) = c.list_json(&[]);
    assert_ne!(c.leader_of(&v, "wk2"), old);
    let r = run(c.citusctl().args(["resync", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    c.wait_ok();
}

/// A person at a terminal (script(1) gives citusctl a pty): run `citusctl ARGS`, wait for the
/// question (`prompt`), let `meanwhile` change the cluster, then answer yes. What it printed,
/// and how it ended.
fn at_the_prompt(
    c: &Cluster,
    args: &str,
    prompt: &str,
    meanwhile: impl FnOnce(),
) -> (String, std::process::ExitStatus) {
    use std::io::{Read, Write};
    let cmd = c.citusctl(); // for its environment
    let line = format!(
        "{} -i {} {args}",
        common::bin().display(),
        c.dir.join("inventory.yml").display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains(prompt) {
        assert!(
            Instant::now() < deadline,
            "no prompt: {}",
            String::from_utf8_lossy(&seen)
        );
        let mut buf = [0u8; 4096];
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    meanwhile();
    child.stdin.as_mut().unwrap().write_all(b"y\n").unwrap();
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let status = child.wait().unwrap();
    (format!("{}{rest}", String::from_utf8_lossy(&seen)), status)
}

#[test]
fn switchover_looks_again_after_the_prompt_and_does_nothing_when_the_leader_moved() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let old = c.leader_of(&v, "wk1");
    let replica = other_member(&v, "wk1", &old);
    // The operator is asked; meanwhile Patroni switches wk1 over by itself (another person).
    let (text, status) = at_the_prompt(
        &c,
        &format!("switchover wk1 --candidate {replica}"),
        "Switch wk1 over",
        || {
            c.harness(&["switchover", "wk1"]);
        },
    );
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("the cluster changed while you were deciding")
            && text.contains(&format!("{replica} leads wk1 now, not {old}")),
        "{text}"
    );
    // Nothing done by citusctl: the rows still name the old leader (Patroni's own switchover).
    let (_, v) = c.list_json(&[]);
    assert_eq!(c.leader_of(&v, "wk1"), replica);
    assert_eq!(primary_row(group(&v, "wk1"))["nodename"], c.addr(&old));
    let r = run(c.citusctl().args(["resync", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    c.wait_ok();
}

/// `citusctl ARGS` seeing `hosts` as /etc/hosts (a private mount namespace: nothing else on
/// the machine sees the names).
fn citusctl_with_hosts(c: &Cluster, hosts: &std::path::Path, args: &[&str]) -> Run {
    let base = c.citusctl(); // its environment and inventory
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "sh",
        "-c",
        "mount --bind \"$0\" /etc/hosts && shift && exec \"$@\"",
    ])
    .arg(hosts)
    .arg("--")
    .arg(base.get_program())
    .args(base.get_args())
    .args(args)
    .envs(base.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    run(&mut cmd)
}

#[test]
fn a_row_naming_a_member_by_host_name_is_that_member_and_is_not_rewritten() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let lead = c.leader_of(&v, "wk2");
    let hosts = c.dir.join("hosts");
    let mut text = String::from("127.0.0.1 localhost\n");
    for m in ["pg1", "pg2", "pg3", "pg4", "pg5", "pg6"] {
        text.push_str(&format!("{} {m}.citusctl.test\n", c.addr(m)));
    }
    std::fs::write(&hosts, text).unwrap();
    let nodeid = c.sql(
        &cn,
        "SELECT nodeid FROM pg_dist_node WHERE groupid = 2 AND noderole = 'primary'",
    );
    let name = format!("{lead}.citusctl.test");
    c.sql(
        &cn,
        &format!("SELECT citus_update_node({nodeid}, '{name}', 5432)"),
    );
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // list: the row is wk2's leader, named otherwise, and says so.
        let r = citusctl_with_hosts(&c, &hosts, &["list", "-f", "json", "wk2"]);
        let v: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
        let row = primary_row(group(&v, "wk2"));
        assert_eq!(row["verdict"], "ok", "{v}");
        assert_eq!(row["nodename"], name.as_str());
        assert!(
            row["note"]
                .as_str()
                .unwrap()
                .contains(&format!("{name} = {}: leader {lead}", c.addr(&lead))),
            "{row}"
        );
        // resync: nothing rewritten for its spelling, and the plan says why.
        let r = citusctl_with_hosts(&c, &hosts, &["resync", "--dry-run", "-f", "json", "wk2"]);
        let p: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
        let id: i64 = nodeid.parse().unwrap();
        let touched = p["plan"]["databases"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d["changes"].as_array().unwrap().iter())
            .any(|ch| ch["nodeid"].as_i64() == Some(id));
        assert!(!touched, "the row would be rewritten for its spelling: {p}");
        assert!(
            p.to_string().contains(&format!(
                "names {name}:5432, the same server as {}:5432",
                c.addr(&lead)
            )),
            "{p}"
        );
        // Without the name (another machine's resolver), the row is not a member: unexpected.
        let (_, v) = c.list_json(&["wk2"]);
        assert_eq!(
            primary_row(group(&v, "wk2"))["verdict"],
            "unexpected",
            "{v}"
        );
    }));
    c.sql(
        &cn,
        &format!(
            "SELECT citus_update_node({nodeid}, '{}', 5432)",
            c.addr(&lead)
        ),
    );
    if let Err(p) = checked {
        std::panic::resume_unwind(p);
    }
    c.wait_ok();
}
