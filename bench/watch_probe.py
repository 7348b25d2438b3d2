#!/usr/bin/python3
"""Repair latency probe for `citusctl resync --watch` (see bench/watch.sh, BENCHMARKS.md).

    /usr/bin/python3 bench/watch_probe.py --dir DIR --scope wk1 --old 127.0.9.3 --new 127.0.9.4 \
        [--coordinator 127.0.9.1] [--timeout 30] [--period 0.005] [--ready FILE]

Two threads, each with a persistent connection (reconnected on any error, the new leader may refuse
connections for a moment), poll every --period seconds:

  writable: `SELECT pg_is_in_recovery()` on --new            -> first moment it answers false
  row:      `SELECT nodename FROM pg_dist_node WHERE groupid = G AND noderole = 'primary'`
            on the coordinator leader (--coordinator, NET.1) -> first moment it answers --new

and record time.monotonic() of the answer that first satisfied the condition (an upper bound; the
previous, unsatisfied answer is the lower bound, its distance is printed as *_resolution_ms).
Once both connections are up, an empty --ready FILE is created (start the switchover after that).
Prints one JSON object on stdout: {writable_at, row_at, delta_ms, ...}; wall-clock times (UTC,
RFC 3339) are included so the figures can be matched with the controller's log. Exit 0 when both
conditions were seen, 2 on timeout (the JSON then has nulls), 1 on a usage / setup error.
"""

import argparse
import datetime
import json
import os
import sys
import threading
import time

import psycopg2

GROUPS = {"cn": 0, "wk1": 1, "wk2": 2}


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                line = line[len("export "):]
            if "=" not in line:
                continue
            k, v = line.split("=", 1)
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            env[k] = v
    return env


def wall(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="milliseconds")


class Watcher(threading.Thread):
    """Poll one query on one host until `done(answer)` is true."""

    def __init__(self, name, host, password, sql, done, period, deadline, stop):
        super().__init__(name=name, daemon=True)
        self.host, self.password, self.sql, self.done = host, password, sql, done
        self.period, self.deadline, self.stop = period, deadline, stop
        self.conn = None
        self.connected = threading.Event()
        self.at = self.wall = self.prev = None  # monotonic/wall of the first true answer, monotonic of the last false
        self.errors = 0
        self.last_error = None
        self.last_answer = None

    def connect(self):
        self.conn = psycopg2.connect(host=self.host, port=5432, user="postgres", dbname="postgres",
                                     password=self.password, connect_timeout=1, sslmode="prefer",
                                     application_name="citusctl-watch-probe")
        self.conn.autocommit = True

    def run(self):
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            t_loop = time.monotonic()
            try:
                if self.conn is None or self.conn.closed:
                    self.connect()
                with self.conn.cursor() as cur:
                    cur.execute(self.sql)
                    row = cur.fetchone()
                answer = row[0] if row else None
                now, now_wall = time.monotonic(), time.time()
                self.connected.set()
                self.last_answer = answer
                if self.done(answer):
                    self.at, self.wall = now, now_wall
                    return
                self.prev = now
            except Exception as e:  # connection refused / reset / admin shutdown / recovery conflict
                self.errors += 1
                self.last_error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                try:
                    if self.conn is not None:
                        self.conn.close()
                except Exception:
                    pass
                self.conn = None
            spent = time.monotonic() - t_loop
            time.sleep(max(0.0, self.period - spent))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, help="cluster DIR (tests/cluster): reads DIR/env")
    ap.add_argument("--scope", required=True, help="worker scope whose leader changes (wk1, wk2)")
    ap.add_argument("--old", required=True, help="address of the old leader")
    ap.add_argument("--new", required=True, help="address of the new leader")
    ap.add_argument("--coordinator", help="coordinator leader address (default NET.1)")
    ap.add_argument("--group", type=int, help="Citus group id (default from the scope)")
    ap.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds (30)")
    ap.add_argument("--period", type=float, default=0.005, help="poll period in seconds (0.005)")
    ap.add_argument("--ready", help="create this file once both connections are up")
    a = ap.parse_args()

    env = read_env(os.path.join(a.dir, "env"))
    password = env.get("CITUS_PGPASSWORD") or sys.exit("watch_probe: no CITUS_PGPASSWORD in DIR/env")
    coordinator = a.coordinator or env["CITUSCTL_TEST_NET"] + ".1"
    group = a.group if a.group is not None else GROUPS.get(a.scope)
    if group is None:
        sys.exit(f"watch_probe: unknown scope {a.scope}: pass --group")
    if a.old == a.new:
        sys.exit("watch_probe: --old and --new are the same address")

    t0 = time.monotonic()
    deadline = t0 + a.timeout
    stop = threading.Event()
    writable = Watcher("writable", a.new, password, "SELECT pg_is_in_recovery()", lambda v: v is False,
                       a.period, deadline, stop)
    row = Watcher("row", coordinator, password,
                  f"SELECT nodename FROM pg_dist_node WHERE groupid = {group} AND noderole = 'primary'",
                  lambda v: v == a.new, a.period, deadline, stop)
    writable.start()
    row.start()
    # both connections up (and the preconditions as expected) before the caller triggers anything
    while not (writable.connected.is_set() and row.connected.is_set()):
        if time.monotonic() > t0 + 10 or not (writable.is_alive() and row.is_alive()):
            stop.set()
            sys.exit(f"watch_probe: setup failed: writable={writable.last_answer!r} ({writable.last_error}), "
                     f"row={row.last_answer!r} ({row.last_error})")
        time.sleep(0.005)
    if writable.at is not None or row.at is not None:
        stop.set()
        sys.exit(f"watch_probe: a condition is already true before the change: new leader in recovery = "
                 f"{writable.last_answer!r}, primary row = {row.last_answer!r}")
    if a.ready:
        with open(a.ready + ".tmp", "w"):
            pass
        os.rename(a.ready + ".tmp", a.ready)

    writable.join()
    row.join()
    stop.set()

    def ms(x):
        return None if x is None else round(x * 1000, 1)

    ok = writable.at is not None and row.at is not None
    out = {
        "scope": a.scope,
        "group": group,
        "old": a.old,
        "new": a.new,
        "coordinator": coordinator,
        "writable_at": writable.at,
        "row_at": row.at,
        "delta_ms": ms(row.at - writable.at) if ok else None,
        "writable_since_ready_ms": ms(writable.at - t0) if writable.at else None,
        "writable_wall": wall(writable.wall) if writable.wall else None,
        "row_wall": wall(row.wall) if row.wall else None,
        "writable_resolution_ms": ms(writable.at - writable.prev) if writable.at and writable.prev else None,
        "row_resolution_ms": ms(row.at - row.prev) if row.at and row.prev else None,
        "writable_errors": writable.errors,
        "row_errors": row.errors,
        "last_row_answer": row.last_answer,
        "timeout": not ok,
    }
    print(json.dumps(out))
    sys.exit(0 if ok else 2)


if __name__ == "__main__":
    main()
