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
    let (r, v) = diff_until(&c, |v| v["diff"]["keys"] == serde_json::json!([]));
    assert_eq!(r.code, 0);
    assert_eq!(v["diff"]["compared"], serde_json::json!(["wk1", "wk2"]));

    let _restore = Restore(&c, "wk2", "postgresql.parameters.work_mem=null");
    edit_config(&c, "wk2", "postgresql.parameters.work_mem=8MB");
    let (r, v) = diff_until(&c, |v| v["diff"]["keys"] != serde_json::json!([]));
    assert_eq!(r.code, 0);
    assert_eq!(
        v["diff"]["keys"],
        serde_json::json!([{
            "key": "postgresql.parameters.work_mem",
            "values": [{"scope": "wk1", "value": null}, {"scope": "wk2", "value": "8MB"}],
        }]),
        "{}",
        r.stdout
    );
    let r = run(c.citusctl().args(["show-config", "--diff"]));
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("work_mem"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(
        cells,
        ["", "postgresql.parameters.work_mem", "(absent)", "8MB", ""]
    );
    // The coordinator is compared only when named.
    let r = run(c
        .citusctl()
        .args(["show-config", "--diff", "cn", "wk1", "-f", "tsv"]));
    assert_eq!(r.stdout, "Key\tcn\twk1\n");

    drop(_restore);
    diff_until(&c, |v| v["diff"]["keys"] == serde_json::json!([]));
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
