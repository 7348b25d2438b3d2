//! Takes and lets go of one worker group's pause N times in a row on the coordinator leader,
//! with no switchover: a bench tool (bench/pause_deadlocks.sh) that counts, under pgbench's TPC-B
//! load, the client transactions Citus's distributed deadlock detector cancels while pauses are
//! being had. Connects as $PGUSER/$PGPASSWORD.
//!
//!   cargo run --release --example pause_loop -- HOST NODEID NODENAME COUNT HOLD_MS
//!
//! Prints one line per pause: `tries ms_to_get backed_off` (or `failed: ...`).
use std::time::Duration;

use citusctl::pause::{GroupPause, PauseOptions, PauseTarget};
use citusctl::pg::PgParams;
use citusctl::topology::{Endpoint, PostgresSettings};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [host, nodeid, nodename, count, hold_ms] = &a[..] else {
        eprintln!("usage: pause_loop HOST NODEID NODENAME COUNT HOLD_MS");
        std::process::exit(2);
    };
    let pg = PgParams::resolve(&PostgresSettings {
        user: None,
        password: None,
        sslmode: None,
        sslrootcert: None,
        connect_timeout: None,
    })
    .expect("PostgreSQL settings");
    let cn = Endpoint::new(host.as_str(), 5432);
    let targets = [PauseTarget {
        database: "postgres".into(),
        nodeid: nodeid.parse().expect("NODEID"),
        host: nodename.clone(),
        port: 5432,
    }];
    let opts = PauseOptions {
        wait: Duration::from_secs(10),
        hold: Duration::from_secs(30),
        terminate_after: None,
        hold_reads: false,
    };
    let hold = Duration::from_millis(hold_ms.parse().expect("HOLD_MS"));
    for _ in 0..count.parse::<u32>().expect("COUNT") {
        match GroupPause::acquire(&pg, &cn, "wk1", &targets, &opts, &|_| {}).await {
            Ok(p) => {
                println!(
                    "{} {} {}",
                    p.tries,
                    p.acquired_after.as_millis(),
                    p.backed_off
                );
                tokio::time::sleep(hold).await;
                p.release().await;
            }
            Err(e) => println!("failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
