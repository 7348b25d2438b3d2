//! `citusctl rebalance`, `add-worker --rebalance` and `remove-worker` against the real cluster,
//! with its third worker group wk3 (running, not registered in Citus at start; the inventory
//! that knows it is `inventory-wk3.yml`). Each test leaves wk3 unregistered again and every
//! shard on wk1 and wk2.

use super::*;

fn wk3_inventory(c: &Cluster) -> PathBuf {
    c.dir.join("inventory-wk3.yml")
}

fn wk3(c: &Cluster, args: &[&str]) -> Run {
    run(c.citusctl_with(&wk3_inventory(c)).args(args))
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", r.stdout, r.stderr))
}

/// Shard placements per group, as "group:count ..." (every table together).
fn placements_per_group(c: &Cluster, cn: &str) -> String {
    c.sql(
        cn,
        "SELECT coalesce(string_agg(groupid || ':' || n, ' ' ORDER BY groupid), '') \
           FROM (SELECT groupid, count(*) AS n FROM pg_dist_placement GROUP BY groupid) x",
    )
}

fn on_group(c: &Cluster, cn: &str, group: i32) -> i64 {
    c.sql(
        cn,
        &format!("SELECT count(*) FROM pg_dist_placement WHERE groupid = {group}"),
    )
    .parse()
    .unwrap()
}

fn rows_of_group(c: &Cluster, cn: &str, group: i32) -> String {
    c.sql(
        cn,
        &format!(
            "SELECT coalesce(string_agg(noderole || ':' || shouldhaveshards, ' ' ORDER BY nodeid), '') \
               FROM pg_dist_node WHERE groupid = {group}"
        ),
    )
}

fn rebalance_jobs(c: &Cluster, cn: &str) -> String {
    c.sql(
        cn,
        "SELECT count(*) || ' ' || count(*) FILTER (WHERE state::text IN ('scheduled', 'running')) \
           FROM pg_dist_background_job",
    )
}

/// The cluster as the other tests expect it: wk3 not in pg_dist_node (a test that failed
/// half-way may have left it registered, or a drain running).
fn wk3_unregistered(c: &Cluster) -> String {
    let (_, v) = c.list_json(&[]);
    let cn = c.leader_of(&v, "cn");
    drop_distributed(c, &cn, "citusctl_nopk");
    if !rows_of_group(c, &cn, 3).is_empty() {
        history_identity(c, &cn, true);
        let r = wk3(c, &["remove-worker", "wk3", "--yes"]);
        assert_eq!(r.code, 0, "cleanup:\n{}\n{}", r.stdout, r.stderr);
        assert_eq!(rows_of_group(c, &cn, 3), "");
    }
    let v = c.wait_ok();
    c.leader_of(&v, "cn")
}

/// pgbench_history (the TPC-B tests' table, no primary key) with or without a replica identity:
/// without one, logical replication cannot move its shards and `rebalance` refuses.
fn history_identity(c: &Cluster, cn: &str, full: bool) {
    c.sql(
        cn,
        &format!(
            "ALTER TABLE IF EXISTS pgbench_history REPLICA IDENTITY {}",
            if full { "FULL" } else { "DEFAULT" }
        ),
    );
}

/// A distributed table of `shards` shards, by Citus or the stand-in.
fn distribute(c: &Cluster, cn: &str, table: &str, column: &str, shards: u32) {
    if real_citus(c) {
        c.sql(
            cn,
            &format!(
                "SELECT create_distributed_table('{table}', '{column}', shard_count => {shards})"
            ),
        );
    } else {
        c.sql(
            cn,
            &format!("SELECT citus_standin.create_distributed_table('{table}', {shards})"),
        );
    }
}

/// Drop a table distributed by `distribute` (the stand-in keeps its metadata by hand).
fn drop_distributed(c: &Cluster, cn: &str, table: &str) {
    if !real_citus(c) && c.sql(cn, &format!("SELECT to_regclass('{table}') IS NOT NULL")) == "t" {
        c.sql(
            cn,
            &format!(
                "DELETE FROM pg_dist_placement WHERE shardid IN \
                   (SELECT shardid FROM pg_dist_shard WHERE logicalrelid = '{table}'::regclass); \
                 DELETE FROM pg_dist_shard WHERE logicalrelid = '{table}'::regclass; \
                 DELETE FROM pg_dist_partition WHERE logicalrelid = '{table}'::regclass"
            ),
        );
    }
    c.sql(cn, &format!("DROP TABLE IF EXISTS {table}"));
}

#[test]
fn add_worker_rebalance_fills_wk3_and_remove_worker_drains_it_while_tpcb_loses_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let cn = wk3_unregistered(&c);
    tpcb_setup(&c, &cn);
    history_identity(&c, &cn, true);
    let rows_before = dist_rows_full(&c, &cn);
    let spread_before = placements_per_group(&c, &cn);
    c.sql(&cn, "TRUNCATE pgbench_history");
    let load = tpcb_start(&c, &cn, if real_citus(&c) { 90 } else { 40 });
    std::thread::sleep(Duration::from_secs(2));

    let r = wk3(
        &c,
        &["add-worker", "wk3", "--rebalance", "--yes", "-f", "json"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = json(&r);
    assert_eq!(rep["outcome"], "applied", "{rep}");
    assert_eq!(rep["rebalance"]["outcome"], "finished", "{rep}");
    let moved = rep["rebalance"]["databases"][0]["progress"]["shards_moved"]
        .as_u64()
        .unwrap();
    assert!(moved > 0, "{rep}");
    let on3 = on_group(&c, &cn, 3);
    assert!(on3 > 0, "no shard on wk3 after the rebalance: {rep}");
    // the progress was shown on stderr (no terminal: plain lines)
    assert!(r.stderr.contains("shards moved"), "{}", r.stderr);

    let r = wk3(&c, &["remove-worker", "wk3", "--yes", "-f", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = json(&r);
    assert_eq!(rep["outcome"], "removed", "{rep}");
    assert_eq!(rep["verified"], true, "{rep}");
    // every move of the drain done; a move takes the shards colocated with it along (Citus),
    // so there are at most as many moves as placements were on wk3
    let drain = &rep["databases"][0]["drain"];
    let moves = drain["shards_moved"].as_i64().unwrap();
    assert!(moves > 0 && moves <= on3, "{rep}");
    assert_eq!(drain["shards_total"].as_i64(), Some(moves), "{rep}");

    let (done, failed, text) = tpcb_finish(load);
    assert_eq!(failed, 0, "failed transactions:\n{text}");
    assert!(done > 0, "{text}");
    assert_eq!(
        c.sql(&cn, "SELECT count(*) FROM pgbench_history"),
        done.to_string(),
        "acknowledged transactions missing:\n{text}"
    );
    // back as it was: no row of group 3, the other rows untouched, the shards spread as before
    assert_eq!(rows_of_group(&c, &cn, 3), "");
    assert_eq!(on_group(&c, &cn, 3), 0);
    assert_eq!(dist_rows_full(&c, &cn), rows_before);
    assert_eq!(placements_per_group(&c, &cn), spread_before);
    history_identity(&c, &cn, false);
    c.wait_ok();
}

#[test]
fn rebalance_dry_run_changes_nothing_and_a_table_without_identity_is_refused_first() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let cn = wk3_unregistered(&c);
    history_identity(&c, &cn, true);
    // A table logical replication cannot move, spread over wk1 and wk2 only.
    drop_distributed(&c, &cn, "citusctl_nopk");
    c.sql(&cn, "CREATE TABLE citusctl_nopk (a int, b text)");
    distribute(&c, &cn, "citusctl_nopk", "a", 6);
    // While it is there, a drain is refused too (nothing to drain from wk3 here, so: wk1).
    let r = run(c
        .citusctl()
        .args(["remove-worker", "wk1", "--dry-run", "-f", "json"]));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(
        json(&r)["refused"].to_string().contains("citusctl_nopk"),
        "{}",
        r.stdout
    );
    c.sql(&cn, "ALTER TABLE citusctl_nopk REPLICA IDENTITY FULL");
    let r = wk3(&c, &["add-worker", "wk3", "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let target_now = c.sql(
        &cn,
        "SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid = 3 AND noderole = 'primary'",
    );
    let placements = c.sql(
        &cn,
        "SELECT string_agg(shardid || ':' || groupid, ' ' ORDER BY shardid) FROM pg_dist_placement",
    );
    let jobs = rebalance_jobs(&c, &cn);

    let r = wk3(&c, &["rebalance", "--dry-run", "-f", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = json(&r);
    assert_eq!(rep["outcome"], "planned", "{rep}");
    let moves = rep["databases"][0]["moves"].as_array().unwrap();
    assert!(!moves.is_empty(), "{rep}");
    assert!(
        moves.iter().all(|m| m["target"] == target_now.as_str()),
        "every move goes to the empty group {target_now}: {rep}"
    );
    // nothing moved, no job
    assert_eq!(
        c.sql(
            &cn,
            "SELECT string_agg(shardid || ':' || groupid, ' ' ORDER BY shardid) FROM pg_dist_placement"
        ),
        placements
    );
    assert_eq!(rebalance_jobs(&c, &cn), jobs);
    // pretty: the plan as a table
    let r = wk3(&c, &["rebalance", "--dry-run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Rebalance plan"), "{}", r.stdout);

    // Without its replica identity: refused before anything starts (exit 4).
    c.sql(&cn, "ALTER TABLE citusctl_nopk REPLICA IDENTITY DEFAULT");
    let placements = c.sql(
        &cn,
        "SELECT string_agg(shardid || ':' || groupid, ' ' ORDER BY shardid) FROM pg_dist_placement",
    );
    let r = wk3(&c, &["rebalance", "--dry-run", "-f", "json"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let rep = json(&r);
    assert_eq!(rep["outcome"], "refused", "{rep}");
    let why = rep["databases"][0]["refusals"].to_string();
    assert!(
        why.contains("citusctl_nopk") && why.contains("replica identity"),
        "{rep}"
    );
    let r = wk3(&c, &["rebalance", "--yes"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("refused: "), "{}", r.stdout);
    assert_eq!(rebalance_jobs(&c, &cn), jobs, "nothing started");
    assert_eq!(
        c.sql(
            &cn,
            "SELECT string_agg(shardid || ':' || groupid, ' ' ORDER BY shardid) FROM pg_dist_placement"
        ),
        placements
    );
    // COPY with writes blocked needs no replica identity: that plan may start
    let r = wk3(
        &c,
        &[
            "rebalance",
            "--dry-run",
            "--shard-transfer-mode",
            "block_writes",
        ],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    drop_distributed(&c, &cn, "citusctl_nopk");

    // Nothing under way: --stop and --wait have nothing to do (exit 0).
    let r = wk3(&c, &["rebalance", "--stop"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no rebalance under way"), "{}", r.stderr);
    // wk3 is empty: removed without a drain
    let r = wk3(&c, &["remove-worker", "wk3", "--yes", "-f", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = json(&r);
    assert_eq!(rep["outcome"], "removed", "{rep}");
    assert!(rep["databases"][0]["drain"].is_null(), "{rep}");
    assert_eq!(rows_of_group(&c, &cn, 3), "");
    history_identity(&c, &cn, false);
    c.wait_ok();
}

#[test]
fn remove_worker_refuses_without_drain_and_picks_up_after_ctrl_c() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let cn = wk3_unregistered(&c);
    history_identity(&c, &cn, true);
    let r = wk3(&c, &["add-worker", "wk3", "--rebalance", "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let on3 = on_group(&c, &cn, 3);
    assert!(on3 > 0, "{}", r.stderr);

    // --no-drain: the group holds the only copy of shards: refused, nothing changed.
    let r = wk3(&c, &["remove-worker", "wk3", "--no-drain", "--yes"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("only copy"), "{}", r.stdout);
    assert_eq!(rows_of_group(&c, &cn, 3), "primary:true");
    assert_eq!(on_group(&c, &cn, 3), on3);
    // Citus itself refuses to remove it (the check above is not only ours).
    let err = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/cluster/cluster.sh"
        ))
        .args(["psql", "--dir"])
        .arg(&c.dir)
        .args([
            cn.as_str(),
            "-XAtc",
            &format!("SELECT citus_remove_node('{}', 5432)", c.addr("pg7")),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&err.stderr);
    assert!(
        text.contains("because because it contains the only shard placement"),
        "{text}"
    );

    // Ctrl-C during the drain: exit 130, the drain goes on, the rows stay.
    let child = c
        .citusctl_with(&wk3_inventory(&c))
        .args(["remove-worker", "wk3", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rebalance_jobs(&c, &cn).ends_with(" 1") {
        assert!(Instant::now() < deadline, "no drain started");
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("run `citusctl remove-worker wk3` again"),
        "{stderr}"
    );
    assert_eq!(rows_of_group(&c, &cn, 3), "primary:false");

    // Again: follows the drain under way (or starts what is left), then removes.
    let r = wk3(&c, &["remove-worker", "wk3", "--yes", "-f", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep = json(&r);
    assert_eq!(rep["outcome"], "removed", "{rep}");
    assert_eq!(rep["verified"], true, "{rep}");
    assert_eq!(rows_of_group(&c, &cn, 3), "");
    assert_eq!(on_group(&c, &cn, 3), 0);
    // And once more: nothing to do.
    let r = wk3(&c, &["remove-worker", "wk3", "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("nothing to remove"), "{}", r.stderr);
    history_identity(&c, &cn, false);
    c.wait_ok();
}
