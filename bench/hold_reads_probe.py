#!/usr/bin/python3
"""Issue 9, step 1: can an ACCESS EXCLUSIVE lock on the coordinator hold reads across a worker switchover?

    /usr/bin/python3 bench/hold_reads_probe.py facts --dir DIR
    /usr/bin/python3 bench/hold_reads_probe.py e2e --dir DIR --old pg3 --new pg4 [--no-lock]

On a real-Citus test cluster (tests/cluster). `facts` checks by hand-written SQL:
  (a) with citus.enable_ddl_propagation off, LOCK TABLE citusctl_test_events IN ACCESS EXCLUSIVE MODE on the
      coordinator: which locks on the table or its shards does any other node hold? (and with it on, for contrast)
  (b) while held: does a SELECT through the coordinator wait (count(*), router WHERE id = k, INSERT)?
      does a SELECT on a worker directly wait?
  (c) a reference table: placements per group; EXPLAIN of a read through the coordinator (local or remote).
`e2e` runs a writer, a reader (distributed table), a reference-table reader and writer through the coordinator,
every 10 ms, then by hand in one coordinator transaction: SET LOCAL citus.enable_ddl_propagation = off;
LOCK TABLE bench_events IN ACCESS EXCLUSIVE MODE (unless --no-lock); citus_pause_node_within_txn(group 1);
POST /switchover to Patroni; wait until --new is writable; citus_update_node(..., new); COMMIT.
Prints one JSON object with failed reads/writes and the longest stall.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import switchover_load as sl  # noqa: E402


def q(c, sql, args=None):
    with c.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def locks_elsewhere(cl, hosts, exclude_pid_on=None):
    """Relation locks on citusctl_test_events* / bench_events* on each host (the probe's own session excluded)."""
    out = {}
    for h in hosts:
        c = cl.connect(h)
        rows = q(c, """SELECT l.pid, c.relname, l.mode, l.granted, a.application_name
                         FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                         LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                        WHERE (c.relname LIKE 'citusctl_test_events%%' OR c.relname LIKE 'bench_%%')
                          AND l.pid <> pg_backend_pid()
                        ORDER BY 2, 1""")
        out[h] = [list(r) for r in rows]
        sl.close(c)
    return out


def try_stmt(cl, host, sql, timeout_ms=1500):
    c = cl.connect(host, app="hold-probe-b")
    t = time.monotonic()
    try:
        q(c, f"SET statement_timeout = {timeout_ms}")
        q(c, sql)
        r = {"sql": sql, "waited": False, "ms": round((time.monotonic() - t) * 1000)}
    except Exception as e:
        r = {"sql": sql, "waited": "statement timeout" in str(e), "ms": round((time.monotonic() - t) * 1000),
             "error": sl.err_text(e)}
    sl.close(c)
    return r


def facts(a):
    cl = sl.Cluster(a.dir)
    cn, w1, w2 = cl.addr("pg1"), sl.rest_leader(cl, ["pg3", "pg4"]), sl.rest_leader(cl, ["pg5", "pg6"])
    w1, w2 = cl.addr(w1), cl.addr(w2)
    out = {"version": q(cl.connect(cn), "SELECT citus_version()")[0][0]}
    for prop in ("off", "on"):
        A = cl.connect(cn, app="hold-probe-a", autocommit=False)
        try:
            q(A, f"SET LOCAL citus.enable_ddl_propagation = {prop}")
            q(A, "SET LOCAL lock_timeout = 2000")
            q(A, "LOCK TABLE citusctl_test_events IN ACCESS EXCLUSIVE MODE")
            res = {"locks": locks_elsewhere(cl, [cn, w1, w2]),
                   "a_pid": q(A, "SELECT pg_backend_pid()")[0][0]}
            if prop == "off":
                res["through_coordinator"] = [
                    try_stmt(cl, cn, "SELECT count(*) FROM citusctl_test_events"),
                    try_stmt(cl, cn, "SELECT * FROM citusctl_test_events WHERE id = 7"),
                    try_stmt(cl, cn, "INSERT INTO citusctl_test_events VALUES (1000001, 'x') ON CONFLICT DO NOTHING"),
                ]
                res["on_worker_directly"] = [
                    try_stmt(cl, w1, "SELECT count(*) FROM citusctl_test_events"),
                    try_stmt(cl, w1, "SELECT * FROM citusctl_test_events WHERE id = 7"),
                ]
        except Exception as e:
            res = {"error": sl.err_text(e)}
        finally:
            A.rollback()
            sl.close(A)
        out[f"propagation_{prop}"] = res
    # (c) a reference table
    c = cl.connect(cn)
    q(c, "CREATE TABLE IF NOT EXISTS bench_ref (id int PRIMARY KEY, v int)")
    if q(c, "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'bench_ref'::regclass")[0][0] == 0:
        q(c, "SELECT create_reference_table('bench_ref')")
        q(c, "INSERT INTO bench_ref SELECT i, 0 FROM generate_series(1, 100) i")
    out["reference_placements"] = [list(r) for r in q(c, """
        SELECT p.groupid, n.nodename FROM pg_dist_placement p
          JOIN pg_dist_shard s USING (shardid) LEFT JOIN pg_dist_node n ON n.groupid = p.groupid AND n.noderole = 'primary'
         WHERE s.logicalrelid = 'bench_ref'::regclass ORDER BY 1""")]
    out["reference_explain"] = [r[0] for r in q(c, "EXPLAIN SELECT v FROM bench_ref WHERE id = 3")]
    out["distributed_explain"] = [r[0] for r in q(c, "EXPLAIN SELECT * FROM citusctl_test_events WHERE id = 7")]
    sl.close(c)
    print(json.dumps(out, indent=1))


def e2e(a):
    cl = sl.Cluster(a.dir)
    cn = cl.addr("pg1")
    old, new = cl.addr(a.old), cl.addr(a.new)
    ids = json.loads(subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "switchover_load.py"),
                                     "setup", "--dir", a.dir], capture_output=True, text=True,
                                    check=True).stdout)["ids"]
    c = cl.connect(cn)
    nodeid = q(c, "SELECT nodeid FROM pg_dist_node WHERE groupid = 1 AND noderole = 'primary'")[0][0]
    have_ref = q(c, "SELECT to_regclass('bench_ref') IS NOT NULL")[0][0]
    sl.close(c)
    stop = threading.Event()
    wsql = "INSERT INTO bench_events VALUES (%s, 1) ON CONFLICT (id) DO UPDATE SET v = bench_events.v + 1"
    loads = [sl.RealLoad("writer", cl, cn, wsql, ids, stop),
             sl.RealLoad("reader", cl, cn, "SELECT v FROM bench_events WHERE id = %s", ids, stop)]
    if have_ref:
        loads.append(sl.RealLoad("ref_reader", cl, cn, "SELECT v FROM bench_ref WHERE id = %s", list(range(1, 9)),
                                 stop))
        loads.append(sl.RealLoad("ref_writer", cl, cn, "UPDATE bench_ref SET v = v + 1 WHERE id = %s",
                                 list(range(1, 9)), stop))
    writable = sl.Poller("writable", cl, new, "SELECT pg_is_in_recovery()", lambda r: r is not None and r[0] is False,
                         stop)
    for t in loads + [writable]:
        t.start()
    time.sleep(1.5)
    out = {"old": a.old, "new": a.new, "lock": not a.no_lock}
    P = cl.connect(cn, app="hold-probe-pause", autocommit=False)
    t0 = time.monotonic()
    try:
        q(P, "SET LOCAL statement_timeout = 30000; SET LOCAL lock_timeout = 300")
        if not a.no_lock:
            q(P, "SET LOCAL citus.enable_ddl_propagation = off")
            q(P, "LOCK TABLE bench_events IN ACCESS EXCLUSIVE MODE")
            q(P, "RESET citus.enable_ddl_propagation")
        out["locked_ms"] = round((time.monotonic() - t0) * 1000)
        q(P, "SELECT citus_pause_node_within_txn(%s, false, 0)", (nodeid,))
        out["paused_ms"] = round((time.monotonic() - t0) * 1000)
        body = json.dumps({"leader": a.old, "candidate": a.new})
        p = subprocess.run(["curl", "-s", "-m", "40", "-w", "\n%{http_code}", "-u",
                            f"patroni:{cl.env['PATRONI_PASSWORD']}", "-H", "Content-Type: application/json",
                            "-d", body, f"http://{old}:8008/switchover"], capture_output=True, text=True)
        out["patroni"] = p.stdout.strip().replace("\n", " ")
        out["patroni_returned_ms"] = round((time.monotonic() - t0) * 1000)
        if not writable.event.wait(30):
            raise RuntimeError("new leader not writable within 30 s")
        out["writable_ms"] = round((writable.at - t0) * 1000)
        q(P, "SET LOCAL lock_timeout = 30000")
        q(P, "SELECT citus_update_node(%s, %s, 5432)", (nodeid, new))
        P.commit()
        out["commit_ms"] = round((time.monotonic() - t0) * 1000)
    except Exception as e:
        out["error"] = sl.err_text(e)
        P.rollback()
    sl.close(P)
    time.sleep(2.0)
    stop.set()
    for t in loads + [writable]:
        t.join(timeout=10)
    for t in loads:
        out[t.name] = sl.summarize(t.records, t0)
    print(json.dumps(out, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("facts")
    f.add_argument("--dir", required=True)
    e = sub.add_parser("e2e")
    e.add_argument("--dir", required=True)
    e.add_argument("--old", required=True)
    e.add_argument("--new", required=True)
    e.add_argument("--no-lock", action="store_true")
    a = ap.parse_args()
    facts(a) if a.cmd == "facts" else e2e(a)


if __name__ == "__main__":
    main()
