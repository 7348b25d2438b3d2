//! `show-config`, the resync controller's metrics and the spinner against the real cluster.

use super::*;

/// `patronictl edit-config SCOPE --set KEY=VALUE --force` (VALUE `null` removes the key).
fn edit_config(c: &Cluster, scope: &str, set: &str) {
    let out = Command::new(&c.env["CITUSCTL_PATRONICTL"])
        .args([
            "-c",
            &c.env["CITUSCTL_PATRONICTL_CONFIG"],
            "edit-config",
            scope,
        ])
        .args(["--set", set, "--force"])
        .output()
        .expect("patronictl");
    assert!(
        out.status.success(),
        "patronictl edit-config {scope} --set {set}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Poll `show-config --diff -f json` until `pred` holds (each member reads the DCS on its own
/// loop, so a change shows within a loop_wait or two).
fn diff_until(c: &Cluster, pred: impl Fn(&Value) -> bool) -> (Run, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = run(c.citusctl().args(["show-config", "--diff", "-f", "json"]));
        let v: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", r.stdout, r.stderr));
        if pred(&v) {
            return (r, v);
        }
        assert!(Instant::now() < deadline, "never seen: {}", r.stdout);
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Puts the key back however the test ends.
struct Restore<'a>(&'a Cluster, &'static str, &'static str);
impl Drop for Restore<'_> {
    fn drop(&mut self) {
        edit_config(self.0, self.1, self.2);
    }
}

#[test]
fn show_config_diff_names_exactly_the_key_changed_on_one_worker_scope() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    c.wait_ok();
    let r = run(c.citusctl().args(["show-config"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for head in [
        "# cn (coordinator group 0, from ",
        "# wk1 (worker group 1, from ",
        "# wk2 (worker group 2, from ",
    ] {
        assert!(r.stdout.contains(head), "{}", r.stdout);
    }
    assert!(r.stdout.contains("loop_wait: 1"), "{}", r.stdout);
    // Earlier tests may have left differences of their own (after `pause` and `resume`
    // Patroni keeps `pause: false` in that scope's configuration): they are the baseline.
    let r = run(c.citusctl().args(["show-config", "--diff", "-f", "json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["diff"]["compared"], serde_json::json!(["wk1", "wk2"]));
    let keys = |v: &Value| -> Vec<String> {
        v["diff"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let baseline = keys(&v);
    let work_mem = "postgresql.parameters.work_mem";
    assert!(!baseline.iter().any(|k| k == work_mem), "{}", r.stdout);

    let restore = Restore(&c, "wk2", "postgresql.parameters.work_mem=null");
    edit_config(&c, "wk2", "postgresql.parameters.work_mem=8MB");
    let (r, v) = diff_until(&c, |v| keys(v).iter().any(|k| k == work_mem));
    assert_eq!(r.code, 0);
    // Exactly that key is new, with each scope's value.
    let mut want = baseline.clone();
    want.push(work_mem.to_owned());
    want.sort();
    assert_eq!(keys(&v), want, "{}", r.stdout);
    let row = v["diff"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == work_mem)
        .unwrap();
    assert_eq!(
        row["values"],
        serde_json::json!([{"scope": "wk1", "value": null}, {"scope": "wk2", "value": "8MB"}]),
        "{}",
        r.stdout
    );
    let r = run(c.citusctl().args(["show-config", "--diff"]));
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("work_mem"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    assert_eq!(cells, ["", work_mem, "(absent)", "8MB", ""]);
    // The coordinator is compared only when named.
    let r = run(c
        .citusctl()
        .args(["show-config", "--diff", "cn", "wk2", "-f", "tsv"]));
    assert!(r.stdout.starts_with("Key\tcn\twk2\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("\n{work_mem}\t(absent)\t8MB\n")),
        "{}",
        r.stdout
    );

    drop(restore);
    diff_until(&c, |v| keys(v) == baseline);
}

/// `citusctl ARGS` on a pty (script(1)), TERM=xterm, NO_COLOR as given: all it wrote.
fn in_a_pty(c: &Cluster, args: &str, no_color: bool) -> String {
    let cmd = c.citusctl(); // for its environment
    let line = format!(
        "{} -i {} {args}",
        common::bin().display(),
        c.dir.join("inventory.yml").display()
    );
    let out = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env_clear()
        .envs(
            cmd.get_envs()
                .filter(|(k, _)| *k != "NO_COLOR")
                .filter_map(|(k, v)| v.map(|v| (k, v))),
        )
        .env("TERM", "xterm")
        .envs(no_color.then_some(("NO_COLOR", "1")))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args}: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_long_wait_shows_a_spinner_on_a_terminal_and_plain_lines_otherwise() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    c.wait_ok();
    let waiting = "pausing wk1: waiting until every member shows it (";
    let out = in_a_pty(&c, "pause wk1 --yes", false);
    // The spinner (a braille frame, the elapsed time), cleared before the result.
    assert!(out.contains(&format!("⠋ {waiting}0.0s)")), "{out}");
    assert!(out.contains("\x1b[2K"), "{out}");
    assert!(out.contains("maintenance mode on"), "{out}");
    // NO_COLOR, a machine format, or no terminal: no spinner.
    let out = in_a_pty(&c, "resume wk1 --yes", true);
    assert!(
        !out.contains(waiting.replace("pausing", "resuming").as_str()),
        "{out}"
    );
    assert!(out.contains("maintenance mode off"), "{out}");
    for args in ["pause wk1 --yes -f json", "resume wk1 --yes -f json"] {
        let out = in_a_pty(&c, args, false);
        assert!(
            !out.contains("waiting until every member shows it"),
            "{out}"
        );
        assert!(out.contains("\"maintenance mode"), "{out}");
    }
    let r = run(c.citusctl().args(["pause", "wk1", "--yes"]));
    assert_eq!(r.code, 0);
    assert_eq!(r.stderr, "");
    let r = run(c.citusctl().args(["resume", "wk1", "--yes"]));
    assert_eq!(r.code, 0);
    assert_eq!(r.stderr, "");
    let (_, v) = c.list_json(&[]);
    assert_eq!(v["groups"][1]["paused"], false, "{v}");
}

/// One scrape: `name{labels}` -> value.
fn scrape(addr: &str) -> HashMap<String, f64> {
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// Scrape until `pred` holds.
fn scrape_until(
    addr: &str,
    what: &str,
    pred: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = scrape(addr);
        if pred(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what}: {m:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn resync_watch_metrics_count_passes_and_the_repair_of_a_stale_row() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let v = c.wait_ok();
    let cn = c.leader_of(&v, "cn");
    let old = c.leader_of(&v, "wk2");
    let addr = {
        let l = std::net::TcpListener::bind(format!("{}:0", c.addr("pg1"))).unwrap();
        l.local_addr().unwrap().to_string()
    };
    let child = c
        .citusctl()
        .args([
            "resync",
            "--watch",
            "--interval",
            "200ms",
            "--metrics",
            &addr,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let connectable = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < connectable, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let drift = |scope: &str, group: u32| {
        format!("citusctl_resync_drift_rows{{scope=\"{scope}\",group=\"{group}\"}}")
    };
    let rows = "citusctl_resync_repairs_total{kind=\"row\"}";
    let m = scrape_until(&addr, "a first pass", |m| {
        m["citusctl_resync_passes_total"] >= 1.0
    });
    assert_eq!(m[rows], 0.0, "{m:?}");
    assert_eq!(m["citusctl_resync_errors_total"], 0.0, "{m:?}");
    assert_eq!(m[&drift("wk2", 2)], 0.0, "{m:?}");
    assert!(
        m["citusctl_resync_seconds_since_last_good_pass"] < 10.0,
        "{m:?}"
    );
    assert!(
        m.keys()
            .any(|k| k.starts_with("citusctl_build_info{version=")),
        "{m:?}"
    );
    assert_eq!(http_get(&addr, "/").0, "HTTP/1.1 404 Not Found");

    // A stale row the controller cannot repair while another citusctl holds the writer lock:
    // the drift shows ...
    let (mut holder, pid) = open_transaction(
        &c,
        &cn,
        "SELECT pg_advisory_xact_lock(1667855477, 1935897708)",
    );
    c.harness(&["switchover", "wk2"]);
    let m = scrape_until(&addr, "wk2's drift", |m| m[&drift("wk2", 2)] == 1.0);
    assert_eq!(m[rows], 0.0, "{m:?}");
    assert_eq!(m[&drift("wk1", 1)], 0.0, "{m:?}");
    // ... and once the lock is free the row is repaired, counted, and the drift gone.
    c.sql(&cn, &format!("SELECT pg_terminate_backend({pid})"));
    let _ = holder.wait();
    let m = scrape_until(&addr, "the repair", |m| {
        m[rows] >= 1.0 && m[&drift("wk2", 2)] == 0.0
    });
    assert_eq!(m[rows], 1.0, "{m:?}");
    let (_, v) = c.list_json(&[]);
    assert_ne!(c.leader_of(&v, "wk2"), old);
    assert_eq!(
        primary_row(group(&v, "wk2"))["nodename"],
        c.addr(&c.leader_of(&v, "wk2")),
        "{v}"
    );
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("metrics on http://{addr}/metrics")),
        "{log}"
    );
    // Stopped with the controller.
    assert!(std::net::TcpStream::connect(&addr).is_err());
    c.wait_ok();
}
