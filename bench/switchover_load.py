#!/usr/bin/python3
"""Client load and timing for one switchover of worker group wk1 (see bench/switchover.sh, BENCHMARKS.md).

    /usr/bin/python3 bench/switchover_load.py setup --dir DIR
    /usr/bin/python3 bench/switchover_load.py run --dir DIR --bin target/release/citusctl \
        --way paused|held|plain --old pg3 --new pg4 --citus standin|real --ids 1,2,3 [--timeout 60]

`setup` finds out which Citus the coordinator runs (`SELECT citus_version()`: the test stand-in says
'stand-in'), creates the benchmark table once and prints JSON {"citus", "version", "ids"}:
  real Citus: bench_events(id bigint primary key, v int), distributed on the coordinator leader with
              create_distributed_table('bench_events', 'id'); ids whose shard is placed in group 1;
  stand-in:   bench_events as a plain table on the wk1 leader (it replicates to the replica); ids 1..8; and
              on the coordinator leader a plain bench_events "shell" recorded with
              citus_standin.create_distributed_table('bench_events', 8) (shards in groups 1 and 2), so that
              `--hold-reads` finds it and the emulated routing can lock it as Citus locks a shell table.

`run` measures one switchover of wk1 from --old to --new (member names, addresses NET.N from DIR/env).
Four threads, each with its own connection(s); a failed statement is rolled back, and the connection is
opened again only when it is gone (as a client of Citus would):
  writer  one statement every 10 ms (autocommit), the ids in turn:
            real:     INSERT INTO bench_events VALUES (id, 1) ON CONFLICT (id) DO UPDATE SET v = bench_events.v + 1
                      through the coordinator leader;
            stand-in: EMULATED Citus routing, per statement, in one transaction on the coordinator leader:
                      LOCK TABLE bench_events IN ROW EXCLUSIVE MODE (the shell table's lock Citus takes when
                      it parses the statement), SELECT pg_advisory_xact_lock_shared(1129878611, 1)  (the stand-in's group lock: waits
                      while a pause or a row update of group 1 holds it, as Citus writes wait on the shard
                      metadata locks), read group 1's primary row (nodename, nodeport) from pg_dist_node, run
                      the INSERT on that address (a cached connection per address, like Citus' connection
                      cache), COMMIT;
  reader  one statement every 10 ms: SELECT v FROM bench_events WHERE id = ...
            real: through the coordinator; stand-in: the same routing with LOCK TABLE bench_events IN ACCESS
            SHARE MODE and without the group lock (Citus' pause does not block reads), the SELECT on the
            row's address;
  row     every 5 ms on the coordinator leader: group 1's primary row (nodename, nodeport);
  writable every 5 ms on --new: SELECT pg_is_in_recovery().
After ~1 s of warm-up the request is sent (t = 0):
  paused: citusctl -i DIR/inventory.yml switchover wk1 --yes -f json
  held:   citusctl -i DIR/inventory.yml switchover wk1 --yes --hold-reads -f json
  plain:  curl POST http://OLD:8008/switchover {"leader": OLD, "candidate": NEW} (basic auth patroni) in the
          background; the moment NEW answers pg_is_in_recovery() = false: citusctl -i DIR/inventory.yml resync
          --yes (again, up to 20 times 100 ms apart, while the row is not right after it returned).
The load goes on until the row names NEW, every command has returned, and 2 s more. Statements that
ended after t = 0 are counted. Prints one JSON object; exit 0 when the run is valid, 3 when the switchover
was refused (nothing measured: try again later), 2 when the row was not right within --timeout, 1 on setup
errors.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time

import psycopg2

LOCK_CLASS = 1129878611  # the stand-in's group lock: pg_advisory_xact_lock(1129878611, groupid)
GROUP = 1
PERIOD_LOAD = 0.010
PERIOD_POLL = 0.005


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


class Cluster:
    def __init__(self, d):
        self.dir = d
        self.env = read_env(os.path.join(d, "env"))
        self.net = self.env["CITUSCTL_TEST_NET"]
        self.password = self.env["CITUS_PGPASSWORD"]

    def addr(self, member):  # pgN -> NET.N
        return f"{self.net}.{int(member[2:])}"

    def connect(self, host, port=5432, app="bench-switchover", autocommit=True, timeout=2):
        c = psycopg2.connect(host=host, port=port, user="postgres", dbname="postgres", password=self.password,
                             connect_timeout=timeout, sslmode="prefer", application_name=app)
        c.autocommit = autocommit
        return c


def err_text(e):
    """One line per error kind: the message with its lines joined, numbers of pids/ports kept (they are stable)."""
    s = str(e).strip() or type(e).__name__
    s = " | ".join(x.strip() for x in s.splitlines() if x.strip())
    return s


def close(c):
    try:
        if c is not None:
            c.close()
    except Exception:
        pass


# ------------------------------------------------------------------------------------------------------------
class Loop(threading.Thread):
    """Run `step()` every `period` seconds (the next one starts on the next tick, or at once when late),
    recording (start, end, ok, error text) for each."""

    def __init__(self, name, period, stop):
        super().__init__(name=name, daemon=True)
        self.period, self.stop = period, stop
        self.records = []
        self.ok = 0

    def step(self):
        raise NotImplementedError

    def reset(self):
        pass

    def run(self):
        nxt = time.monotonic()
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                self.step()
                self.records.append((t, time.monotonic(), True, None))
                self.ok += 1
            except Exception as e:
                self.records.append((t, time.monotonic(), False, err_text(e)))
                self.reset()
            nxt += self.period
            now = time.monotonic()
            if nxt < now:
                nxt = now
            time.sleep(max(0.0, nxt - now))


class RealLoad(Loop):
    """Real Citus: the statement through the coordinator leader."""

    def __init__(self, name, cl, coordinator, sql, ids, stop):
        super().__init__(name, PERIOD_LOAD, stop)
        self.cl, self.coordinator, self.sql, self.ids = cl, coordinator, sql, ids
        self.conn = None
        self.i = 0

    def reset(self):  # a statement that failed leaves the session usable: reconnect only when it is gone
        if self.conn is not None and self.conn.closed:
            self.conn = None

    def step(self):
        if self.conn is None:
            self.conn = self.cl.connect(self.coordinator, app=f"bench-switchover-{self.name}")
        self.i += 1
        with self.conn.cursor() as cur:
            cur.execute(self.sql, (self.ids[self.i % len(self.ids)],))
            if cur.description:
                cur.fetchall()


class StandinLoad(Loop):
    """The stand-in: Citus' routing emulated (see the module doc). `lock` = writer (takes the group lock)."""

    def __init__(self, name, cl, coordinator, sql, ids, lock, stop):
        super().__init__(name, PERIOD_LOAD, stop)
        self.cl, self.coordinator, self.sql, self.ids, self.lock = cl, coordinator, sql, ids, lock
        self.shell_mode = "ROW EXCLUSIVE" if lock else "ACCESS SHARE"
        self.cn = None
        self.workers = {}  # (host, port) -> connection (Citus keeps one cached connection per worker)
        self.i = 0

    def reset(self):  # roll back the coordinator transaction; reconnect only when the session is gone
        if self.cn is None:
            return
        if not self.cn.closed:
            try:
                self.cn.rollback()
                return
            except Exception:
                close(self.cn)
        self.cn = None

    def step(self):
        if self.cn is None:
            self.cn = self.cl.connect(self.coordinator, app=f"bench-switchover-{self.name}", autocommit=False)
        self.i += 1
        with self.cn.cursor() as cur:
            cur.execute(f"LOCK TABLE bench_events IN {self.shell_mode} MODE")
            if self.lock:
                cur.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", (LOCK_CLASS, GROUP))
            cur.execute("SELECT nodename, nodeport FROM pg_catalog.pg_dist_node "
                        "WHERE groupid = %s AND noderole = 'primary'", (GROUP,))
            host, port = cur.fetchone()
        key = (host, port)
        try:
            w = self.workers.get(key)
            if w is None:
                w = self.cl.connect(host, port, app=f"bench-switchover-{self.name}-worker")
                self.workers[key] = w
            with w.cursor() as cur:
                cur.execute(self.sql, (self.ids[self.i % len(self.ids)],))
                if cur.description:
                    cur.fetchall()
        except Exception as e:
            close(self.workers.pop(key, None))
            # Citus names the node it could not use; so does the emulation
            raise RuntimeError(f"[worker {host}:{port}] {err_text(e)}") from None
        self.cn.commit()

    def run(self):
        try:
            super().run()
        finally:
            for w in self.workers.values():
                close(w)
            close(self.cn)


class Poller(threading.Thread):
    """Every 5 ms: `sql` on `host`; remember the first monotonic time `done(row)` held (and every change)."""

    def __init__(self, name, cl, host, sql, done, stop):
        super().__init__(name=name, daemon=True)
        self.cl, self.host, self.sql, self.done, self.stop = cl, host, sql, done, stop
        self.at = None
        self.event = threading.Event()
        self.connected = threading.Event()
        self.errors = 0
        self.last = None
        self.changes = []

    def run(self):
        conn = None
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                if conn is None:
                    conn = self.cl.connect(self.host, app=f"bench-switchover-{self.name}", timeout=1)
                with conn.cursor() as cur:
                    cur.execute(self.sql)
                    row = cur.fetchone()
                now = time.monotonic()
                self.connected.set()
                if row != self.last:
                    self.changes.append((now, row))
                    self.last = row
                if self.at is None and self.done(row):
                    self.at = now
                    self.event.set()
            except Exception:
                self.errors += 1
                close(conn)
                conn = None
            time.sleep(max(0.0, PERIOD_POLL - (time.monotonic() - t)))
        close(conn)


# ------------------------------------------------------------------------------------------------------------
def rest_leader(cl, members):
    for m in members:
        try:
            out = subprocess.run(["curl", "-s", "-m", "2", f"http://{cl.addr(m)}:8008/cluster"],
                                 capture_output=True, text=True, timeout=5).stdout
            for x in json.loads(out).get("members", []):
                if x.get("role") == "leader":
                    return x["name"]
        except Exception:
            continue
    return None


def setup(a):
    cl = Cluster(a.dir)
    cn = rest_leader(cl, ["pg1", "pg2"]) or sys.exit("setup: cn has no leader")
    wk = rest_leader(cl, ["pg3", "pg4"]) or sys.exit("setup: wk1 has no leader")
    c = cl.connect(cl.addr(cn))
    with c.cursor() as cur:
        cur.execute("SELECT citus_version()")
        version = cur.fetchone()[0]
    if "stand-in" in version:
        w = cl.connect(cl.addr(wk))
        with w.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS bench_events (id bigint PRIMARY KEY, v int)")
        close(w)
        with c.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS bench_events (id bigint PRIMARY KEY, v int)")
            cur.execute("SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'bench_events'::regclass")
            if cur.fetchone()[0] == 0:
                cur.execute("SELECT citus_standin.create_distributed_table('bench_events', 8)")
        ids = list(range(1, 9))
        citus = "standin"
    else:
        with c.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS bench_events (id bigint PRIMARY KEY, v int)")
            cur.execute("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'bench_events'::regclass")
            if cur.fetchone()[0] == 0:
                cur.execute("SELECT create_distributed_table('bench_events', 'id')")
            cur.execute("""
                SELECT i FROM generate_series(1, 1000) AS i
                  JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('bench_events', i)
                 WHERE p.groupid = %s
                 ORDER BY i LIMIT 8""", (GROUP,))
            ids = [r[0] for r in cur.fetchall()]
        if not ids:
            sys.exit("setup: no bench_events shard is placed in group 1")
        citus = "real"
    close(c)
    print(json.dumps({"citus": citus, "version": version, "ids": ids, "coordinator": cn, "wk1_leader": wk}))


def summarize(records, t0):
    rec = [r for r in records if r[1] >= t0]
    ok = [r for r in rec if r[2]]
    bad = [r for r in rec if not r[2]]
    errs = collections.Counter(r[3] for r in bad)
    return {
        "ok": len(ok),
        "failed": len(bad),
        "max_stall_ms": round(max((r[1] - r[0] for r in ok), default=0) * 1000, 1),
        "first_error_ms": round((bad[0][0] - t0) * 1000) if bad else None,
        "last_error_ms": round((bad[-1][1] - t0) * 1000) if bad else None,
        "errors": dict(errs.most_common()),
    }


def run(a):
    cl = Cluster(a.dir)
    ids = [int(x) for x in a.ids.split(",")]
    old_addr, new_addr = cl.addr(a.old), cl.addr(a.new)
    coordinator = cl.addr(a.coordinator)
    inv = os.path.join(a.dir, "inventory.yml")
    env = dict(os.environ, **cl.env)
    stop = threading.Event()
    wsql = "INSERT INTO bench_events VALUES (%s, 1) ON CONFLICT (id) DO UPDATE SET v = bench_events.v + 1"
    rsql = "SELECT v FROM bench_events WHERE id = %s"
    if a.citus == "real":
        writer = RealLoad("writer", cl, coordinator, wsql, ids, stop)
        reader = RealLoad("reader", cl, coordinator, rsql, ids, stop)
    else:
        writer = StandinLoad("writer", cl, coordinator, wsql, ids, True, stop)
        reader = StandinLoad("reader", cl, coordinator, rsql, ids, False, stop)
    row = Poller("row", cl, coordinator,
                 f"SELECT nodename, nodeport FROM pg_catalog.pg_dist_node WHERE groupid = {GROUP} AND noderole = 'primary'",
                 lambda r: r is not None and r[0] == new_addr and r[1] == 5432, stop)
    writable = Poller("writable", cl, new_addr, "SELECT pg_is_in_recovery()", lambda r: r is not None and r[0] is False,
                      stop)
    threads = [writer, reader, row, writable]
    for t in threads:
        t.start()
    out = {"way": a.way, "citus": a.citus, "old": a.old, "new": a.new, "valid": False}

    def finish(code):
        stop.set()
        for t in threads:
            t.join(timeout=10)
        print(json.dumps(out))
        sys.exit(code)

    # warm-up: every thread connected, 1 s of steady load, the row names the old leader
    deadline = time.monotonic() + 15
    while not (writer.ok >= 20 and reader.ok >= 20 and row.connected.is_set() and writable.connected.is_set()):
        if time.monotonic() > deadline:
            out["error"] = (f"warm-up failed: writer ok {writer.ok}, reader ok {reader.ok}, "
                            f"last errors {[r[3] for r in writer.records[-1:] + reader.records[-1:]]}")
            finish(1)
        time.sleep(0.05)
    time.sleep(0.5)
    if row.last != (old_addr, 5432):
        out["error"] = f"before the run the row is {row.last}, not {old_addr}:5432"
        finish(1)

    t0 = time.monotonic()
    out["request_wall"] = time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
    cmds = []
    refused = False
    if a.way in ("paused", "held"):
        extra = ["--hold-reads"] if a.way == "held" else []
        p = subprocess.run([a.bin, "-i", inv, "switchover", "wk1", "--yes", "-f", "json"] + extra, env=env,
                           capture_output=True, text=True, timeout=120)
        done_at = time.monotonic()
        try:
            rep = json.loads(p.stdout)
        except ValueError:
            rep = {"stdout": p.stdout}
        cmds.append({"cmd": " ".join(["citusctl switchover wk1 --yes"] + extra), "exit": p.returncode,
                     "ms": round((done_at - t0) * 1000),
                     "stderr": p.stderr.strip().splitlines(), "report": rep})
        if rep.get("outcome") == "refused":
            refused = True
        elif rep.get("new_leader") not in (None, a.new):
            out["error"] = f"citusctl chose {rep.get('new_leader')}, expected {a.new}"
    else:
        body = json.dumps({"leader": a.old, "candidate": a.new})
        patroni = {}

        def post():  # in a thread: Patroni answers only after the switchover (or its failure)
            p = subprocess.run(["curl", "-s", "-m", "40", "-w", "\n%{http_code}", "-u",
                                f"patroni:{cl.env['PATRONI_PASSWORD']}", "-H", "Content-Type: application/json",
                                "-d", body, f"http://{old_addr}:8008/switchover"],
                               capture_output=True, text=True)
            text, _, code = p.stdout.rpartition("\n")
            patroni.update(http=code, text=text.strip(), ms=round((time.monotonic() - t0) * 1000))

        poster = threading.Thread(target=post, daemon=True)
        poster.start()
        # as soon as the new leader is writable: resync (again while the row is not right)
        while not writable.event.wait(0.02):
            if "http" in patroni and (patroni["http"] not in ("200", "503") or
                                      time.monotonic() - t0 > patroni["ms"] / 1000 + 10):
                refused = True  # Patroni said no, or 503 and nothing happened within 10 s
                break
            if time.monotonic() - t0 > a.timeout:
                break
        if writable.event.is_set():
            for _ in range(20):
                ts = time.monotonic()
                p = subprocess.run([a.bin, "-i", inv, "resync", "--yes"], env=env, capture_output=True, text=True,
                                   timeout=120)
                te = time.monotonic()
                cmds.append({"cmd": "citusctl resync --yes", "exit": p.returncode,
                             "start_ms": round((ts - t0) * 1000), "ms": round((te - ts) * 1000),
                             "stdout": p.stdout.strip().splitlines()[-3:], "stderr": p.stderr.strip().splitlines()})
                if row.event.wait(0.1):
                    break
        poster.join(timeout=45)
        out["patroni"] = patroni
    out["commands"] = cmds
    if refused:
        out["error"] = "switchover refused"
        finish(3)
    if not row.event.wait(max(0.0, a.timeout - (time.monotonic() - t0))):
        out["error"] = f"the row did not name {new_addr} within {a.timeout} s (last {row.last})"
        finish(2)
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    out.update(
        valid=True,
        row_ms=round((row.at - t0) * 1000, 1),
        writable_ms=round((writable.at - t0) * 1000, 1) if writable.at else None,
        writes=summarize(writer.records, t0),
        reads=summarize(reader.records, t0),
        row_changes=[[round((t - t0) * 1000, 1), list(r) if r else None] for t, r in row.changes if t >= t0],
    )
    print(json.dumps(out))
    sys.exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--dir", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    r.add_argument("--bin", required=True)
    r.add_argument("--way", choices=["paused", "held", "plain"], required=True)
    r.add_argument("--old", required=True, help="wk1 leader now (pg3/pg4)")
    r.add_argument("--new", required=True, help="the candidate (pg4/pg3)")
    r.add_argument("--coordinator", default="pg1", help="coordinator leader (pg1)")
    r.add_argument("--citus", choices=["real", "standin"], required=True)
    r.add_argument("--ids", required=True)
    r.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    if a.cmd == "setup":
        setup(a)
    else:
        run(a)


if __name__ == "__main__":
    main()
