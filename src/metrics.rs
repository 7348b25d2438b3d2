//! The resync controller's Prometheus metrics (`citusctl resync --watch --metrics ADDR`): what
//! the controller counts, rendered in the Prometheus text format, and a tiny HTTP/1.1
//! responder that serves it on `GET /metrics` (404 for anything else, whatever the method). Bounded: one request per
//! connection, at most 8 KiB of request read within 5 s, at most 16 connections at a time.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_REQUEST: usize = 8 << 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 16;

/// What the controller has done since it started.
#[derive(Debug, Clone)]
pub struct Counters {
    pub started: Instant,
    /// Passes finished, whatever their outcome.
    pub passes: u64,
    /// Passes that ended in an error (nothing could be done, or a write failed and rolled back).
    pub errors: u64,
    /// pg_dist_node rows written.
    pub rows_repaired: u64,
    /// `citus.use_secondary_nodes` settings changed.
    pub settings_repaired: u64,
    /// The end of the last pass without an error.
    pub last_good: Option<Instant>,
    /// Per group, in inventory order: what the last pass that planned found.
    pub groups: Vec<GroupDrift>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDrift {
    pub scope: String,
    pub group: i32,
    /// pg_dist_node rows of the group (all databases) that differed from what Patroni calls
    /// for, before the pass repaired them.
    pub drift: u64,
    /// The pass would not write the group (no leader, two leaders, not writable, ...).
    pub refused: bool,
}

impl Counters {
    pub fn new(groups: Vec<GroupDrift>) -> Self {
        Counters {
            started: Instant::now(),
            passes: 0,
            errors: 0,
            rows_repaired: 0,
            settings_repaired: 0,
            last_good: None,
            groups,
        }
    }
}

/// Shared between the controller (writes) and the responder (reads).
pub type Shared = Arc<Mutex<Counters>>;

/// The Prometheus text format (version 0.0.4). `now`: for the seconds since the last good pass
/// (since the start while there has been none).
pub fn render(c: &Counters, now: Instant) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: String| vec![(String::new(), v)];
    metric(
        "citusctl_build_info",
        "gauge",
        "citusctl's version and commit; always 1.",
        &[(
            format!(
                "{{version=\"{}\",commit=\"{}\"}}",
                escape(env!("CARGO_PKG_VERSION")),
                escape(env!("CITUSCTL_COMMIT"))
            ),
            "1".into(),
        )],
    );
    metric(
        "citusctl_resync_passes_total",
        "counter",
        "Passes the controller finished, whatever their outcome.",
        &one(c.passes.to_string()),
    );
    metric(
        "citusctl_resync_errors_total",
        "counter",
        "Passes that ended in an error (nothing written, or rolled back).",
        &one(c.errors.to_string()),
    );
    metric(
        "citusctl_resync_repairs_total",
        "counter",
        "Repairs made: pg_dist_node rows written, citus.use_secondary_nodes settings changed.",
        &[
            ("{kind=\"row\"}".into(), c.rows_repaired.to_string()),
            ("{kind=\"setting\"}".into(), c.settings_repaired.to_string()),
        ],
    );
    let since = now.saturating_duration_since(c.last_good.unwrap_or(c.started));
    metric(
        "citusctl_resync_seconds_since_last_good_pass",
        "gauge",
        "Seconds since the last pass without an error (since the start while there was none).",
        &one(format!("{:.3}", since.as_secs_f64())),
    );
    let labels =
        |g: &GroupDrift| format!("{{scope=\"{}\",group=\"{}\"}}", escape(&g.scope), g.group);
    metric(
        "citusctl_resync_drift_rows",
        "gauge",
        "pg_dist_node rows of the group that differed from Patroni's state at the last pass (before it repaired them).",
        &c.groups
            .iter()
            .map(|g| (labels(g), g.drift.to_string()))
            .collect::<Vec<_>>(),
    );
    metric(
        "citusctl_resync_group_refused",
        "gauge",
        "1 when the last pass would not write the group (no single writable leader).",
        &c.groups
            .iter()
            .map(|g| (labels(g), u8::from(g.refused).to_string()))
            .collect::<Vec<_>>(),
    );
    out
}

/// A label value: backslash, double quote and newline escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serve `GET /metrics` on `listener` until dropped (abort the task). Never fails: a bad
/// connection is closed, an accept error waits a moment.
pub async fn serve(listener: TcpListener, counters: Shared) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("metrics: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Too many at once: close it rather than queue.
            continue;
        };
        let counters = counters.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &counters)).await;
            drop(permit);
        });
    }
}

/// What to answer to a request's head: (status line, body).
pub fn route(head: &[u8], counters: &Counters, now: Instant) -> (&'static str, String) {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(b"");
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => ("200 OK", render(counters, now)),
        _ => ("404 Not Found", "not found: only GET /metrics\n".into()),
    }
}

async fn answer(mut stream: TcpStream, counters: &Mutex<Counters>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST {
            break;
        }
    }
    let (status, body) = {
        let c = counters.lock().unwrap_or_else(|e| e.into_inner());
        route(&head, &c, Instant::now())
    };
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters() -> Counters {
        let mut c = Counters::new(vec![
            GroupDrift {
                scope: "cn".into(),
                group: 0,
                drift: 0,
                refused: false,
            },
            GroupDrift {
                scope: "wk1".into(),
                group: 1,
                drift: 1,
                refused: true,
            },
        ]);
        c.passes = 7;
        c.errors = 2;
        c.rows_repaired = 3;
        c.settings_repaired = 1;
        c
    }

    #[test]
    fn render_has_every_metric_once_with_help_type_and_labels() {
        let c = counters();
        let text = render(&c, c.started + Duration::from_millis(2500));
        for line in [
            "# TYPE citusctl_resync_passes_total counter",
            "citusctl_resync_passes_total 7",
            "citusctl_resync_errors_total 2",
            "citusctl_resync_repairs_total{kind=\"row\"} 3",
            "citusctl_resync_repairs_total{kind=\"setting\"} 1",
            "# TYPE citusctl_resync_seconds_since_last_good_pass gauge",
            "citusctl_resync_seconds_since_last_good_pass 2.500",
            "citusctl_resync_drift_rows{scope=\"cn\",group=\"0\"} 0",
            "citusctl_resync_drift_rows{scope=\"wk1\",group=\"1\"} 1",
            "citusctl_resync_group_refused{scope=\"wk1\",group=\"1\"} 1",
            "citusctl_resync_group_refused{scope=\"cn\",group=\"0\"} 0",
        ] {
            assert_eq!(
                text.lines().filter(|l| *l == line).count(),
                1,
                "{line} in\n{text}"
            );
        }
        assert!(text.contains(&format!(
            "citusctl_build_info{{version=\"{}\",commit=\"",
            env!("CARGO_PKG_VERSION")
        )));
        // Every sample line is `name{labels} value` with a number for the value.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }

    #[test]
    fn seconds_since_the_last_good_pass_count_from_it_once_there_is_one() {
        let mut c = counters();
        c.last_good = Some(c.started + Duration::from_secs(10));
        let text = render(&c, c.started + Duration::from_secs(11));
        assert!(text.contains("\ncitusctl_resync_seconds_since_last_good_pass 1.000\n"));
    }

    #[test]
    fn only_get_metrics_is_served() {
        let c = counters();
        let now = c.started;
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &c, now).0,
            "200 OK"
        );
        assert_eq!(
            route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", &c, now).0,
            "200 OK"
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n", &c, now).0, "404 Not Found");
        assert_eq!(
            route(b"GET /metricsx HTTP/1.1\r\n\r\n", &c, now).0,
            "404 Not Found"
        );
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n", &c, now).0,
            "404 Not Found"
        );
        assert_eq!(route(b"\x00\xff garbage", &c, now).0, "404 Not Found");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
