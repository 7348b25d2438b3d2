//! The binary without a cluster: inventory mistakes, help, generated files, network faults
//! that a real Patroni cannot be made to show (a socket that never answers, garbage JSON, 401).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{assert_snapshot, citusctl, run};

#[test]
fn every_bad_inventory_gives_its_exact_error_and_exit_2() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inventory/invalid");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
    {
        #[cfg(unix)]
        {
            // The inline-password fixture must be readable by others, whatever the umask.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let rel = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
        let r = run(citusctl().arg("-i").arg(rel).arg("list"));
        assert_eq!(r.code, 2, "{}: {}", rel.display(), r.stderr);
        assert_eq!(r.stdout, "", "{}", rel.display());
        assert!(
            !r.stderr.contains("do-not-print-me"),
            "secret leaked: {}",
            r.stderr
        );
        assert_snapshot(&path.with_extension("stderr"), &r.stderr);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures");
}

#[test]
fn no_inventory_anywhere_is_a_usage_error_with_a_hint() {
    let empty = tempdir("noinv");
    let r = run(citusctl().current_dir(&empty).arg("list"));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: citusctl.yml: no inventory file found\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hint: pass -i FILE, set CITUSCTL_INVENTORY"),
        "{}",
        r.stderr
    );
}

#[test]
fn inventory_is_found_through_the_environment_and_xdg() {
    let dir = tempdir("xdg");
    let inv = dir.join("citusctl").join("inventory.yml");
    std::fs::create_dir_all(inv.parent().unwrap()).unwrap();
    std::fs::write(&inv, "name: x\ncoordinator:\n  scope: cn\n  members: [{name: a, host: 127.0.0.1, api: 'http://127.0.0.1:9'}]\n  group: 7\n").unwrap();
    // XDG: the file is found (and its mistake reported with its path).
    let r = run(citusctl()
        .env("XDG_CONFIG_HOME", &dir)
        .current_dir(&dir)
        .arg("list"));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains(&format!("{}:5:10: coordinator.group", inv.display())),
        "{}",
        r.stderr
    );
    // $CITUSCTL_INVENTORY wins over XDG.
    let other = dir.join("other.yml");
    std::fs::write(&other, "name: [\n").unwrap();
    let r = run(citusctl()
        .env("XDG_CONFIG_HOME", &dir)
        .env("CITUSCTL_INVENTORY", &other)
        .arg("list"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("other.yml:"), "{}", r.stderr);
}

#[test]
fn unknown_scope_is_a_usage_error() {
    let dir = tempdir("scope");
    let inv = write_inventory(&dir, &["http://127.0.0.1:9/"]);
    let r = run(citusctl().arg("-i").arg(&inv).args(["list", "nope"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("no group with scope `nope`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("(known: cn)"), "{}", r.stderr);
}

#[test]
fn help_texts_are_reviewed_snapshots() {
    let snaps = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for (args, name) in [
        (vec!["--help"], "help.txt"),
        (vec!["list", "--help"], "help-list.txt"),
        (vec!["completions", "--help"], "help-completions.txt"),
        (vec!["resync", "--help"], "help-resync.txt"),
        (vec!["add-worker", "--help"], "help-add-worker.txt"),
        (vec!["rebalance", "--help"], "help-rebalance.txt"),
        (vec!["remove-worker", "--help"], "help-remove-worker.txt"),
        (vec!["switchover", "--help"], "help-switchover.txt"),
        (vec!["failover", "--help"], "help-failover.txt"),
        (vec!["restart", "--help"], "help-restart.txt"),
    ] {
        let r = run(citusctl().env("COLUMNS", "100").args(&args));
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_snapshot(&snaps.join(name), &r.stdout);
    }
}

#[test]
fn committed_completions_and_man_pages_are_current() {
    let dir = tempdir("assets");
    let r = run(citusctl().arg("generate-assets").arg(&dir));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for sub in ["completions", "man"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let fresh = e.unwrap().path();
            let committed = root.join(sub).join(fresh.file_name().unwrap());
            let want = std::fs::read(&fresh).unwrap();
            let have = std::fs::read(&committed).unwrap_or_default();
            assert!(
                want == have,
                "{} is stale: run `cargo run -- generate-assets .` and commit",
                committed.display()
            );
            n += 1;
        }
    }
    assert!(n >= 5);
    // `citusctl completions bash` prints the same script that is committed.
    let r = run(citusctl().args(["completions", "bash"]));
    assert_eq!(
        r.stdout.as_bytes(),
        std::fs::read(root.join("completions/citusctl.bash")).unwrap()
    );
}

// ---- faults a real Patroni cannot show -------------------------------------------------

/// Accepts connections and never answers.
fn hung_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    format!("http://{addr}/")
}

/// Answers every request with `status` and `body`.
fn canned_server(status: &'static str, body: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    format!("http://{addr}/")
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("citusctl-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A one-group inventory whose members' REST APIs are at `apis` (PostgreSQL on a dead port).
fn write_inventory(dir: &Path, apis: &[&str]) -> std::path::PathBuf {
    let members: Vec<String> = apis
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                "    - {{ name: m{i}, host: 127.0.0.1, port: {}, api: \"{a}\" }}",
                1 + i
            )
        })
        .collect();
    let text = format!(
        "name: faults\npostgres: {{ connect_timeout: 1s }}\npatroni: {{ timeout: 400ms }}\ncoordinator:\n  scope: cn\n  members:\n{}\n",
        members.join("\n")
    );
    let p = dir.join("inventory.yml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn hung_garbage_and_unauthorised_members_each_get_a_clear_row() {
    let dir = tempdir("faults");
    let hung = hung_server();
    let garbage = canned_server("200 OK", "{\"members\": [ this is not json");
    let denied = canned_server("401 Unauthorized", "no auth header received");
    let inv = write_inventory(&dir, &[&hung, &garbage, &denied]);
    let r = run(citusctl().arg("-i").arg(&inv).args(["list", "-f", "json"]));
    // Nobody answered with a usable document: the cluster is unreachable.
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    let members = v["groups"][0]["members"].as_array().unwrap();
    let err = |i: usize| members[i]["error"].as_str().unwrap().to_owned();
    assert_eq!(err(0), "no answer within 400ms");
    assert!(
        err(1).starts_with("not a Patroni answer: /cluster:"),
        "{}",
        err(1)
    );
    assert_eq!(
        err(2),
        "HTTP 401: not authorised (check patroni.username and its password)"
    );
    for m in members {
        assert_eq!(m["state"], "unreachable");
        assert_eq!(m["reachable"], false);
    }

    let r = run(citusctl().arg("-i").arg(&inv).arg("list"));
    assert_eq!(r.code, 3);
    assert!(
        r.stdout.contains("m0: REST API no answer within 400ms"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("m2: REST API HTTP 401: not authorised"),
        "{}",
        r.stdout
    );
}

#[test]
fn patroni_password_is_never_printed() {
    let dir = tempdir("secret");
    let denied = canned_server("401 Unauthorized", "not authenticated");
    let inv = dir.join("inv.yml");
    std::fs::write(
        &inv,
        format!("name: s\npatroni: {{ username: patroni, password_env: PW }}\ncoordinator:\n  scope: cn\n  members: [{{ name: a, host: 127.0.0.1, port: 1, api: '{denied}' }}]\n"),
    )
    .unwrap();
    for f in ["pretty", "json", "yaml", "tsv"] {
        let r = run(citusctl()
            .env("PW", "sw0rdf1sh-secret")
            .arg("-vv")
            .arg("-i")
            .arg(&inv)
            .args(["list", "-f", f]));
        assert!(
            !r.stdout.contains("sw0rdf1sh") && !r.stderr.contains("sw0rdf1sh"),
            "{f}: leaked"
        );
        assert_eq!(r.code, 3);
    }
}

/// The controller tells systemd it is ready, pings after every pass (failed ones too), and says
/// when it stops.
#[test]
fn the_controller_speaks_systemds_notify_protocol() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempdir("notify");
    // Nobody answers: every pass fails fast and the controller backs off.
    let inv = write_inventory(&dir, &["http://127.0.0.1:9/"]);
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = citusctl()
        .arg("-i")
        .arg(&inv)
        .args(["resync", "--watch", "--interval", "200ms"])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a notification within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(recv().starts_with("READY=1"));
    assert_eq!(recv(), "WATCHDOG=1", "one ping per pass, failed or not");
    assert_eq!(recv(), "WATCHDOG=1");
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    // Pings may still be in flight; STOPPING=1 comes last.
    loop {
        let m = recv();
        if m == "STOPPING=1" {
            break;
        }
        assert_eq!(m, "WATCHDOG=1");
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn show_config_takes_the_first_member_that_answers_and_exits_3_when_none_does() {
    let dir = tempdir("show-config");
    let hung = hung_server();
    let good = canned_server(
        "200 OK",
        r#"{"ttl": 30, "postgresql": {"parameters": {"max_connections": "100"}}}"#,
    );
    let inv = write_inventory(&dir, &[&hung, &good]);
    let started = std::time::Instant::now();
    let r = run(citusctl()
        .arg("-i")
        .arg(&inv)
        .args(["show-config", "-f", "json"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // The hung member is not waited for once the other one answered.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let s = &v["scopes"][0];
    assert_eq!(s["member"], "m1");
    assert_eq!(s["config"]["ttl"], 30);
    assert!(s["error"].is_null());
    let r = run(citusctl()
        .arg("-i")
        .arg(&inv)
        .args(["show-config", "-f", "tsv"]));
    assert_eq!(
        r.stdout,
        "Scope\tKey\tValue\ncn\tpostgresql.parameters.max_connections\t100\ncn\tttl\t30\n"
    );

    let garbage = canned_server("200 OK", "[1, 2]");
    let inv = write_inventory(&dir, &[&hung, &garbage]);
    let r = run(citusctl()
        .arg("-i")
        .arg(&inv)
        .args(["show-config", "--diff"]));
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("error: cn: m0: no answer within 400ms; m1: not a Patroni answer: /config: not a JSON object"),
        "{}",
        r.stdout
    );
}
