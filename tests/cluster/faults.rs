//! The fault suite: the bad day, on the real local cluster. Each test breaks something while
//! clients write (pgbench's TPC-B through the coordinator leader) and asserts what a DBA checks
//! afterwards: every transaction pgbench was told committed is there, no pause is left behind,
//! and `pg_dist_node` is right, put right by citusctl itself (the command, or the controller
//! that the README tells to run), not by a later command. Each prints one `fault:` line with
//! its figures (BENCHMARKS.md's faults table).

use super::*;

/// Under TPC-B on this small machine a replica can trail by a few MiB at the moment of the
/// switchover; the pause holds writes while it catches up, so these tests allow 64 MiB (the
/// test cluster's Patroni allows 1 GiB, maximum_lag_on_failover).
const UNDER_LOAD: [&str; 2] = ["--max-lag", "67108864"];

/// Every transaction pgbench counted as committed is in `pgbench_history` (one row each).
fn assert_nothing_acknowledged_lost(c: &Cluster, cn: &str, done: u64, text: &str) -> u64 {
    assert!(done > 0, "no transaction committed at all:\n{text}");
    let found: u64 = c
        .sql(cn, "SELECT count(*) FROM pgbench_history")
        .parse()
        .unwrap();
    assert!(
        found >= done,
        "acknowledged transactions lost: pgbench counted {done} commits, {found} rows found:\n{text}"
    );
    found
}

/// `resync --watch` in the background, its log captured; killed when dropped, so that a
/// failed assertion never leaves a controller repairing rows under the next tests.
struct Controller(Option<std::process::Child>);

impl Controller {
    fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }
    /// Wait for it to end (after a signal), with its log.
    fn output(mut self) -> String {
        let out = self.0.take().expect("running").wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn controller(c: &Cluster, interval: &str) -> Controller {
    Controller(Some(
        c.citusctl()
            .args(["resync", "--watch", "--interval", interval])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

fn stop_controller(ctl: Controller) -> String {
    signal(ctl.id(), "-TERM");
    ctl.output()
}

/// Wait until `scope`'s leader differs from `old` and every verdict is ok; the time it took.
fn wait_repaired(c: &Cluster, scope: &str, old: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (r, v) = c.list_json(&[]);
        if r.code == 0 && c.leader_of(&v, scope) != old {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{scope}: rows not right after {limit:?}:\n{}",
            r.stdout
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pid on the first line of a pid file (PostgreSQL's, or the harness's).
fn pid_in(path: std::path::PathBuf) -> u32 {
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

fn postmaster_pid(c: &Cluster, member: &str) -> u32 {
    pid_in(c.dir.join(member).join("data/postmaster.pid"))
}

/// Run `f` while process `pid` is stopped (SIGSTOP), and let the process go on (SIGCONT)
/// whatever `f` does, a failed assertion included.
fn while_stopped<T>(pid: u32, f: impl FnOnce() -> T) -> T {
    signal(pid, "-STOP");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    signal(pid, "-CONT");
    r.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[test]
fn fault_citusctl_killed_mid_switchover_the_server_ends_the_pause_and_the_controller_repairs() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    tpcb_setup(&c, &cn);
    c.sql(&cn, "TRUNCATE pgbench_history");
    let ctl = controller(&c, "500ms");
    let load = tpcb_start(&c, &cn, 10);
    std::thread::sleep(Duration::from_secs(2));
    let (mut child, _err) = switchover_until_asked(&c, "wk1", &UNDER_LOAD);
    // SIGKILL: no handler runs, no ROLLBACK is sent; the kernel closes the socket.
    std::thread::sleep(Duration::from_millis(200));
    signal(child.id(), "-KILL");
    let killed = Instant::now();
    let _ = child.wait();
    while pause_sessions(&c, &cn) != "0" {
        assert!(
            killed.elapsed() < Duration::from_secs(3),
            "a pause outlived its killed client"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pause_gone = killed.elapsed();
    // Patroni finishes the switchover it was asked for; the controller puts the row right.
    let repaired = wait_repaired(&c, "wk1", &old, Duration::from_secs(30));
    let (done, failed, _aborted, text) = tpcb_counts(load);
    let found = assert_nothing_acknowledged_lost(&c, &cn, done, &text);
    let log = stop_controller(ctl);
    assert!(
        log.contains("wk1 primary row"),
        "the controller did not repair:\n{log}"
    );
    assert_eq!(pause_sessions(&c, &cn), "0");
    eprintln!(
        "fault: citusctl SIGKILLed mid-switchover: pause gone {pause_gone:?} after the kill; \
         rows right {repaired:?} after it (controller); {done} committed, {found} found, {failed} failed"
    );
    c.wait_ok();
}

#[test]
fn fault_a_coordinator_that_accepts_and_never_answers_is_reported_in_bounded_time_and_never_written()
 {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let wk1 = c.leader_of(&v, "wk1");
    let before = dist_rows_full(&c, &cn);
    // The postmaster frozen: the kernel still completes TCP handshakes into its backlog, but
    // nobody answers the startup packet (a hung host, a process stuck in D state).
    while_stopped(postmaster_pid(&c, &cn), || {
        let t = Instant::now();
        let (l, v) = c.list_json(&[]);
        let took = t.elapsed();
        assert_ne!(l.code, 0, "{}", l.stdout);
        let text = v.to_string();
        assert!(text.contains("did not answer within 3s"), "{text}");
        // PostgreSQL's default connect_timeout in the inventory is 3 s; list is bounded by it.
        assert!(took < Duration::from_secs(8), "list took {took:?}");
        let t = Instant::now();
        let w = run(c
            .citusctl()
            .args(["switchover", "wk1", "--yes", "-f", "json"]));
        let sw_took = t.elapsed();
        assert_eq!(w.code, 3, "{}\n{}", w.stdout, w.stderr);
        assert!(
            sw_took < Duration::from_secs(8),
            "switchover took {sw_took:?}"
        );
        let t = Instant::now();
        let r = run(c.citusctl().args(["resync", "--yes", "-f", "json"]));
        let rs_took = t.elapsed();
        assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        assert!(rs_took < Duration::from_secs(8), "resync took {rs_took:?}");
        eprintln!(
            "fault: coordinator PostgreSQL frozen: list {took:?} (exit {}), switchover refused in \
             {sw_took:?} (exit 3), resync {rs_took:?} (exit {})",
            l.code, r.code
        );
    });
    let v = c.wait_ok();
    // Nothing was asked of Patroni, nothing written.
    assert_eq!(c.leader_of(&v, "wk1"), wk1);
    assert_eq!(dist_rows_full(&c, &cn), before);
}

#[test]
fn fault_two_controllers_and_a_switchover_at_once_then_one_controller_host_dies() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old1 = c.leader_of(&v, "wk1");
    tpcb_setup(&c, &cn);
    c.sql(&cn, "TRUNCATE pgbench_history");
    // One controller per coordinator member, as the README deploys them.
    let a = controller(&c, "200ms");
    let b = controller(&c, "200ms");
    let load = tpcb_start(&c, &cn, 10);
    std::thread::sleep(Duration::from_secs(2));
    let r = run(c
        .citusctl()
        .args(["switchover", "wk1", "--yes", "-f", "json"])
        .args(UNDER_LOAD));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    let (done, failed, aborted, text) = tpcb_counts(load);
    let found = assert_nothing_acknowledged_lost(&c, &cn, done, &text);
    assert_eq!(failed, 0, "failed transactions:\n{text}");
    assert!(!aborted, "a client aborted:\n{text}");
    let (_, v) = c.list_json(&[]);
    let new1 = c.leader_of(&v, "wk1");
    assert_ne!(new1, old1);
    assert_eq!(primary_row(group(&v, "wk1"))["nodename"], c.addr(&new1));

    // One controller's host dies (SIGKILL: no goodbye); Patroni switches wk2 over by itself.
    signal(a.id(), "-KILL");
    let log_a = a.output();
    let old2 = c.leader_of(&v, "wk2");
    c.harness(&["switchover", "wk2"]);
    let took = wait_repaired(&c, "wk2", &old2, Duration::from_secs(15));
    let log_b = stop_controller(b);
    // The switchover wrote wk1's row; neither controller rewrote it (no flapping).
    for log in [&log_a, &log_b] {
        assert!(
            !log.contains("wk1 primary row"),
            "a controller rewrote wk1:\n{log}"
        );
    }
    assert!(log_b.contains("wk2 primary row"), "{log_b}");
    assert_eq!(pause_sessions(&c, &cn), "0");
    eprintln!(
        "fault: two controllers + switchover under TPC-B: paused {} ms, {done} committed, {found} found, \
         {failed} failed; controller killed, the other repaired wk2 {took:?} after Patroni's switchover",
        rep["paused_ms"]
    );
    c.wait_ok();
}

#[test]
fn fault_ctrl_c_after_patroni_was_asked_lets_the_pause_go_and_still_leaves_the_rows_right() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    tpcb_setup(&c, &cn);
    c.sql(&cn, "TRUNCATE pgbench_history");
    let load = tpcb_start(&c, &cn, 8);
    std::thread::sleep(Duration::from_secs(2));
    let (child, mut err) = switchover_until_asked(&c, "wk1", &UNDER_LOAD);
    // The operator changes their mind while the new leader is awaited: Patroni cannot be
    // un-asked, so citusctl stops holding writes and finishes the switchover without the pause.
    signal(child.id(), "-INT");
    let interrupted = Instant::now();
    while pause_sessions(&c, &cn) != "0" {
        assert!(
            interrupted.elapsed() < Duration::from_secs(2),
            "the pause outlived Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pause_gone = interrupted.elapsed();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{rest}");
    let rep: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rep["outcome"], "interrupted", "{rep}");
    assert!(rest.contains("interrupted: the pause was let go"), "{rest}");
    // At exit, with no other command: the rows name the new leader.
    let (_, v) = c.list_json(&[]);
    let new = c.leader_of(&v, "wk1");
    assert_ne!(new, old, "{rep}\n{rest}");
    assert_eq!(group(&v, "wk1")["verdict"], "ok", "{v}");
    assert_eq!(primary_row(group(&v, "wk1"))["nodename"], c.addr(&new));
    let (done, failed, _aborted, text) = tpcb_counts(load);
    let found = assert_nothing_acknowledged_lost(&c, &cn, done, &text);
    eprintln!(
        "fault: Ctrl-C while the new leader was awaited: pause gone {pause_gone:?} after SIGINT, exit 130 \
         {:?} after it with the rows right; {done} committed, {found} found, {failed} failed",
        interrupted.elapsed()
    );
    c.wait_ok();
}

#[test]
fn fault_the_coordinator_leader_crashes_while_a_worker_group_is_paused() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    tpcb_setup(&c, &cn);
    c.sql(&cn, "TRUNCATE pgbench_history");
    let load = tpcb_start(&c, &cn, 6);
    std::thread::sleep(Duration::from_secs(2));
    let (child, mut err) = switchover_until_asked(&c, "wk1", &UNDER_LOAD);
    // The coordinator's PostgreSQL dies under the pause (SIGKILL: a crash, not a shutdown).
    // Every session on it dies too, the pause's and the clients' alike; Patroni restarts it.
    let crashed = Instant::now();
    signal(postmaster_pid(&c, &cn), "-KILL");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let out = child.wait_with_output().unwrap();
    let took = crashed.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rep: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{rest}"));
    // The pause was lost with its session; citusctl finished without it and repaired the rows.
    assert_eq!(out.status.code(), Some(1), "{rep}\n{rest}");
    assert_eq!(
        rep["outcome"], "switched without the pause",
        "{rep}\n{rest}"
    );
    let (done, failed, _aborted, text) = tpcb_counts(load);
    let v = c.wait_ok();
    let cn_now = c.leader_of(&v, "cn");
    let new = c.leader_of(&v, "wk1");
    assert_ne!(new, old);
    assert_eq!(primary_row(group(&v, "wk1"))["nodename"], c.addr(&new));
    // Commits acknowledged before the crash survived it (crash recovery replays the WAL).
    let found = assert_nothing_acknowledged_lost(&c, &cn_now, done, &text);
    assert_eq!(pause_sessions(&c, &cn_now), "0");
    eprintln!(
        "fault: coordinator leader crashed under a worker pause: citusctl exit 1 ('switched without the pause') \
         {took:?} after the crash with the rows right; {done} committed, {found} found, {failed} failed (clients of \
         the crashed coordinator abort)"
    );
}

#[test]
fn fault_etcd_down_while_the_controller_runs_it_writes_nothing_wrong_and_repairs_after() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let before = dist_rows_full(&c, &cn);
    let ctl = controller(&c, "500ms");
    std::thread::sleep(Duration::from_secs(1));
    // The DCS goes away for longer than Patroni's retry_timeout (5 s): every leader demotes
    // itself, and nobody may be promoted until etcd is back.
    c.harness(&["stop-etcd"]);
    let down = Instant::now();
    let mut leaderless = 0;
    while down.elapsed() < Duration::from_secs(9) {
        let (_, v) = c.list_json(&[]);
        let n = ["cn", "wk1", "wk2"]
            .iter()
            .filter(|g| group(&v, g)["leader"].is_null())
            .count();
        leaderless = leaderless.max(n);
        std::thread::sleep(Duration::from_millis(500));
    }
    // With no leader to point at, nothing was written: every column of every row as before.
    let during = c.try_sql(
        &cn,
        "SELECT string_agg(n::text, ' ' ORDER BY nodeid) FROM pg_dist_node n",
    );
    c.harness(&["start-etcd"]);
    let back = Instant::now();
    // Patroni elects leaders again (whoever wins the race); the controller follows them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let v = loop {
        let (r, v) = c.list_json(&[]);
        if r.code == 0 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "not settled after etcd came back:\n{}",
            r.stdout
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let settled = back.elapsed();
    let log = stop_controller(ctl);
    assert!(leaderless > 0, "etcd down did not show in list");
    if let Some(d) = during {
        assert_eq!(d, before, "pg_dist_node changed while etcd was down");
    }
    for g in ["cn", "wk1", "wk2"] {
        assert_eq!(group(&v, g)["verdict"], "ok", "{v}");
    }
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "fault: etcd down 9 s under the controller: up to {leaderless} of 3 groups without a leader, \
         nothing written meanwhile; all verdicts ok {settled:?} after etcd came back"
    );
}

#[test]
fn fault_a_whole_worker_group_down_while_another_switches_over_and_resync_runs() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old1 = c.leader_of(&v, "wk1");
    let lead2 = c.leader_of(&v, "wk2");
    let repl2 = other_member(&v, "wk2", &lead2);
    // On real Citus every TPC-B transaction touches wk2's shards too and fails while it is
    // down; the stand-in keeps the tables on the coordinator, so the load shows the pause.
    let load = (!real_citus(&c)).then(|| {
        tpcb_setup(&c, &cn);
        c.sql(&cn, "TRUNCATE pgbench_history");
        tpcb_start(&c, &cn, 8)
    });
    let ctl = controller(&c, "1s");
    c.harness(&["kill-patroni", &repl2]);
    c.harness(&["kill-patroni", &lead2]);
    let restore = || {
        c.harness(&["start-member", &lead2]);
        c.harness(&["start-member", &repl2]);
    };
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // wk1 switches over as if nothing were wrong elsewhere.
        let r = run(c
            .citusctl()
            .args(["switchover", "wk1", "--yes", "-f", "json"])
            .args(UNDER_LOAD));
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let (l, v) = c.list_json(&[]);
        assert_eq!(l.code, 1, "{}", l.stdout);
        let new1 = c.leader_of(&v, "wk1");
        assert_ne!(new1, old1);
        assert_eq!(primary_row(group(&v, "wk1"))["nodename"], c.addr(&new1));
        // Citus cannot sync its metadata to a group that is down: its row stays out of sync.
        let unsynced = c.sql(
            &cn,
            "SELECT count(*) FROM pg_dist_node WHERE groupid = 2 AND noderole = 'primary' AND NOT metadatasynced",
        );
        if !real_citus(&c) {
            assert_eq!(
                unsynced, "1",
                "the stand-in's syncer synced a group that is down"
            );
        }
        // resync writes nothing for a group without a leader, and says so (exit 4). Citus's
        // metadata syncer (or the stand-in's) still owns wk1's `metadatasynced` after its
        // switchover: the snapshot is taken once it is done with every group that is up.
        let synced_deadline = Instant::now() + Duration::from_secs(30);
        while c.sql(
            &cn,
            "SELECT count(*) FROM pg_dist_node WHERE groupid NOT IN (0, 2) AND hasmetadata AND NOT metadatasynced",
        ) != "0"
        {
            assert!(
                Instant::now() < synced_deadline,
                "wk1's metadata was not synced within 30 s of its switchover"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let before = dist_rows_full(&c, &cn);
        let r = run(c.citusctl().args(["resync", "--yes", "-f", "json"]));
        assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("no member of wk2 answers"),
            "{}",
            r.stdout
        );
        assert_eq!(dist_rows_full(&c, &cn), before);
        // Long enough, after wk1 settled, for the controller to stop looking every 200 ms at a
        // refusal that does not clear by itself.
        std::thread::sleep(Duration::from_secs(11));
        unsynced
    }));
    restore();
    let unsynced = match checked {
        Ok(u) => u,
        Err(p) => std::panic::resume_unwind(p),
    };
    // Back: the metadata reaches wk2 again and every verdict is ok.
    let v = c.wait_ok();
    assert_eq!(
        c.sql(&cn, "SELECT count(*) FROM pg_dist_node WHERE NOT metadatasynced AND hasmetadata AND groupid <> 0"),
        "0"
    );
    let figures = match load {
        Some(load) => {
            let (done, failed, _aborted, text) = tpcb_counts(load);
            let found = assert_nothing_acknowledged_lost(&c, &cn, done, &text);
            format!("{done} committed, {found} found, {failed} failed")
        }
        None => "no load (real Citus: every TPC-B transaction needs wk2)".into(),
    };
    assert_eq!(group(&v, "wk2")["verdict"], "ok");
    let log = stop_controller(ctl);
    assert!(
        log.contains("waiting: ") && log.contains("still waiting after 10s: looking every 1s"),
        "{log}"
    );
    assert!(
        !log.contains("wk1 primary row"),
        "the controller rewrote wk1:\n{log}"
    );
    eprintln!(
        "fault: wk2 down while wk1 switched over: switchover exit 0, wk2 rows unsynced ({unsynced}) \
         until it was back, resync exit 4 writing nothing; {figures}"
    );
}

fn patroni_pid(c: &Cluster, member: &str) -> u32 {
    pid_in(c.dir.join("pids").join(format!("{member}.pid")))
}

#[test]
fn fault_the_leaders_rest_api_not_answering_is_refused_before_the_group_is_paused() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    let before = dist_rows_full(&c, &cn);
    // The leader's Patroni frozen (its REST API accepts and never answers); PostgreSQL runs on,
    // and the replica still names it leader (well within the 20 s ttl).
    let r = while_stopped(patroni_pid(&c, &old), || {
        run(c
            .citusctl()
            .args(["switchover", "wk1", "--yes", "-f", "json"]))
    });
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rep["outcome"], "refused", "{rep}");
    assert!(
        rep["error"]
            .as_str()
            .unwrap()
            .contains("the leader's REST API does not answer"),
        "{rep}"
    );
    assert!(rep["paused_ms"].is_null(), "{rep}");
    assert!(!r.stderr.contains("paused wk1"), "{}", r.stderr);
    assert_eq!(pause_sessions(&c, &cn), "0");
    assert_eq!(dist_rows_full(&c, &cn), before);
    let v = c.wait_ok();
    assert_eq!(c.leader_of(&v, "wk1"), old);
    eprintln!(
        "fault: the leader's REST API frozen: refused before pausing, exit 4: {}",
        rep["error"]
    );
}

#[test]
fn fault_the_candidate_dies_mid_switchover() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk1");
    let cand = other_member(&v, "wk1", &old);
    tpcb_setup(&c, &cn);
    c.sql(&cn, "TRUNCATE pgbench_history");
    let load = tpcb_start(&c, &cn, 8);
    std::thread::sleep(Duration::from_secs(2));
    let (child, mut err) = switchover_until_asked(
        &c,
        "wk1",
        &[
            &["--candidate", cand.as_str(), "--pause-timeout", "4s"],
            &UNDER_LOAD[..],
        ]
        .concat(),
    );
    // The candidate crashes (Patroni and PostgreSQL killed) while Patroni hands over to it
    // (Patroni demotes the leader first; the candidate would promote a second or so later).
    std::thread::sleep(Duration::from_millis(400));
    c.harness(&["kill-patroni", &cand, "--hard"]);
    let crashed = Instant::now();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let out = child.wait_with_output().unwrap();
    let took = crashed.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rep: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{rest}"));
    // No pause outlives --pause-timeout; whatever Patroni made of it, citusctl says so and exits
    // non-zero, and the rows name whoever leads at the end.
    assert_ne!(out.status.code(), Some(0), "{rep}");
    assert_eq!(pause_sessions(&c, &cn), "0");
    c.harness(&["start-member", &cand]);
    let v = c.wait_ok();
    let now = c.leader_of(&v, "wk1");
    assert_eq!(primary_row(group(&v, "wk1"))["nodename"], c.addr(&now));
    let (done, failed, _aborted, text) = tpcb_counts(load);
    let found = assert_nothing_acknowledged_lost(&c, &cn, done, &text);
    eprintln!(
        "fault: the candidate crashed mid-switchover (--pause-timeout 4s): outcome '{}' (exit {:?}) {took:?} \
         after the crash; {now} leads; {done} committed, {found} found, {failed} failed",
        rep["outcome"].as_str().unwrap_or("?"),
        out.status.code(),
    );
}

#[test]
fn fault_a_resync_frozen_inside_its_write_is_ended_by_the_server_and_leaves_the_rows_whole() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk2");
    c.harness(&["switchover", "wk2"]);
    let rows_stale = dist_rows_full(&c, &cn);
    // Another writer holds the writer lock, so that resync's write waits where we can freeze it.
    let (mut holder, holder_pid) = open_transaction(
        &c,
        &cn,
        "SELECT pg_advisory_xact_lock(1667855477, 1935897708)",
    );
    let child = c
        .citusctl()
        .args(["resync", "--yes", "--statement-timeout", "5s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'citusctl apply' \
                   AND wait_event_type = 'Lock'";
    let deadline = Instant::now() + Duration::from_secs(4);
    while c.sql(&cn, waiting) != "1" {
        assert!(
            Instant::now() < deadline,
            "resync never waited for the writer lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // citusctl frozen (a stopped VM, a SIGSTOP) just as the lock comes free: its transaction
    // holds the writer lock and sits idle, and only the server can end it.
    let (gone, code) = while_stopped(child.id(), || {
        c.sql(&cn, &format!("SELECT pg_terminate_backend({holder_pid})"));
        let _ = holder.wait();
        let freed = Instant::now();
        let open =
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'citusctl apply'";
        while c.sql(&cn, open) != "0" {
            // statement_timeout 5 s + 5 s idle slack: the server ends it after 10 s.
            assert!(
                freed.elapsed() < Duration::from_secs(20),
                "the frozen client's transaction outlived the server's bounds"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let gone = freed.elapsed();
        // The writer lock is free for the next writer, and nothing was half-written.
        let free = c.sql(
            &cn,
            "SELECT pg_try_advisory_xact_lock(1667855477, 1935897708)",
        );
        (gone, free)
    });
    assert_eq!(code, "t", "the writer lock stayed held");
    assert!(
        gone >= Duration::from_secs(4),
        "ended before the client could have been idle: {gone:?}"
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("rolled back: nothing changed"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        dist_rows_full(&c, &cn),
        rows_stale,
        "a half-written pg_dist_node"
    );
    // The next resync puts the row right.
    let r = run(c.citusctl().args(["resync", "--yes"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (_, v) = c.list_json(&[]);
    assert_ne!(c.leader_of(&v, "wk2"), old);
    eprintln!(
        "fault: resync frozen inside its write: the server ended it {gone:?} after the lock came free"
    );
    c.wait_ok();
}
