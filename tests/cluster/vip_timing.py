#!/usr/bin/python3
"""How fast the haproxy VIPs of a test cluster follow a switchover.

    tests/cluster/vip_timing.py DIR [SCOPE]        (SCOPE defaults to wk1; run as root, like cluster.sh)

Polls, every 20 ms (and the new leader's GET /primary, as haproxy's RW check does) and each with a fresh connection (as a new client would), the old leader and the old replica
directly, and the scope's RW and RO VIPs (`SELECT pg_is_in_recovery(), host(inet_server_addr())`), runs
`cluster.sh switchover --dir DIR SCOPE`, and prints when each poller first saw the new state and kept it:
the new leader writable, the RW VIP on the new leader, the RO VIP on the old leader (back as a replica).
VIP_TIMING_DUMP=1 also prints each poller's changes; VIP_TIMING_TAIL (default 8 s) is how long it keeps polling after
the switchover returned; CLUSTER_SH overrides the cluster.sh used. Uses Debian's python3-psycopg2 (a Patroni dependency). Nothing is changed but the switchover itself.
"""
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER_SH = os.environ.get("CLUSTER_SH", os.path.join(HERE, "cluster.sh"))
VIP_BASE = {"cn": 100, "wk1": 110, "wk2": 120}
MEMBERS = {"cn": ("pg1", "pg2"), "wk1": ("pg3", "pg4"), "wk2": ("pg5", "pg6")}


def load_env(d):
    env = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            if line.startswith("export "):
                k, _, v = line[7:].strip().partition("=")
                env[k] = shlex.split(v)[0] if v else ""
    return env


def probe(host, password):
    """(in_recovery 't'/'f', server address) or None."""
    try:
        c = psycopg2.connect(host=host, port=5432, user="postgres", dbname="postgres", password=password,
                             connect_timeout=1, sslmode="prefer", application_name="citusctl-vip-timing")
        try:
            cur = c.cursor()
            cur.execute("SELECT pg_is_in_recovery(), host(inet_server_addr())")
            rec, addr = cur.fetchone()
            return ("t" if rec else "f", addr)
        finally:
            c.close()
    except Exception:
        return None


def http_status(url):
    try:
        return urllib.request.urlopen(url, timeout=1).status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = os.path.realpath(sys.argv[1])
    scope = sys.argv[2] if len(sys.argv) > 2 else "wk1"
    env = load_env(d)
    net, pw = env["CITUSCTL_TEST_NET"], env["CITUS_PGPASSWORD"]
    addr = {m: f"{net}.{m[2:]}" for m in MEMBERS[scope]}
    cl = json.load(urllib.request.urlopen(f"http://{addr[MEMBERS[scope][0]]}:8008/cluster", timeout=3))
    old = next(m["name"] for m in cl["members"] if m["role"] == "leader")
    new = next(m for m in MEMBERS[scope] if m != old)
    rw, ro = f"{net}.{VIP_BASE[scope]}", f"{net}.{VIP_BASE[scope] + 1}"

    series = {k: [] for k in ("old", "new", "rw", "ro", "api")}  # (t, result)
    hosts = {"old": addr[old], "new": addr[new], "rw": rw, "ro": ro}
    stop = threading.Event()

    def poll(key):
        while not stop.is_set():
            if key == "api":  # what haproxy's RW check sees: the new leader's GET /primary
                series[key].append((time.monotonic(), http_status(f"http://{addr[new]}:8008/primary")))
            else:
                series[key].append((time.monotonic(), probe(hosts[key], pw)))
            time.sleep(0.02)

    threads = [threading.Thread(target=poll, args=(k,), daemon=True) for k in series]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    out = subprocess.run(["bash", CLUSTER_SH, "switchover", "--dir", d, scope], capture_output=True, text=True)
    t_cmd = time.monotonic()
    time.sleep(float(os.environ.get("VIP_TIMING_TAIL", "8")))
    stop.set()
    for t in threads:
        t.join()
    if out.returncode != 0:
        sys.exit(f"switchover failed: {out.stdout}{out.stderr}")

    def settled(key, want):
        """first time after t0 from which every later sample equals want."""
        first = None
        for t, r in series[key]:
            if t < t0:
                continue
            if r == want:
                first = first if first is not None else t
            else:
                first = None
        return first

    def first(key, pred):
        return next((t for t, r in series[key] if t >= t0 and pred(r)), None)

    t_old_gone = first("old", lambda r: r is None or r[0] == "t")
    t_new_w = settled("new", ("f", addr[new]))
    t_rw = settled("rw", ("f", addr[new]))
    t_api = settled("api", 200)
    t_ro = settled("ro", ("t", addr[old]))
    t_old_rep = settled("old", ("t", addr[old]))
    rw_none = sum(1 for t, r in series["rw"] if t >= t0 and r is None)
    rw_bad = sum(1 for t, r in series["rw"] if t >= t0 and r is not None and r != ("f", addr[new]) and r[0] != "f")
    ro_states = []
    for t, r in series["ro"]:
        if t >= t0 and (not ro_states or ro_states[-1][1] != r):
            ro_states.append((t, r))

    if os.environ.get("VIP_TIMING_DUMP"):
        for key in ("new", "api", "rw"):
            prev = object()
            for t, r in series[key]:
                if t >= t0 and r != prev:
                    print(f"    {key:4} {t - t0:6.2f}s {r}")
                    prev = r

    def fmt(t):
        return "never" if t is None else f"{t - t0:6.2f} s"

    print(f"{scope}: switchover {old} ({addr[old]}) -> {new} ({addr[new]}); RW VIP {rw}, RO VIP {ro}; times after POST")
    print(f"  old leader stops being writable     {fmt(t_old_gone)}")
    print(f"  new leader writable (direct)        {fmt(t_new_w)}")
    print(f"  new leader's GET /primary -> 200    {fmt(t_api)}")
    print(f"  RW VIP on the new leader            {fmt(t_rw)}   (+{(t_rw - t_new_w) if t_rw and t_new_w else float('nan'):.2f} s after the new leader is writable)")
    print(f"  old leader back as a replica        {fmt(t_old_rep)}")
    print(f"  RO VIP on the old leader (replica)  {fmt(t_ro)}   (+{(t_ro - t_old_rep) if t_ro and t_old_rep else float('nan'):.2f} s after it is a replica)")
    print(f"  cluster.sh switchover returned      {fmt(t_cmd)}")
    print(f"  RW VIP probes after POST: {sum(1 for t, _ in series['rw'] if t >= t0)}, failed {rw_none}, "
          f"landed on a read-only member {rw_bad}")
    print("  RO VIP path: " + ", ".join(f"{t - t0:.2f}s {r[1] + ('(rw)' if r[0] == 'f' else '(ro)') if r else 'no answer'}"
                                        for t, r in ro_states))


if __name__ == "__main__":
    main()
