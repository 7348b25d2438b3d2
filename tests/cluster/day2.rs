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
