#!/usr/bin/env bash
# Switchover of worker group wk1 under client load: citusctl's paused and held switchovers vs the plain way
# (see BENCHMARKS.md, "switchover wk1: paused vs plain" and "held reads").
#
#   bench/switchover.sh                       # patroni3, 5 runs per way (~3 min)
#   FLAVOR=patroni4 RUNS=3 bench/switchover.sh
#   NET=127.0.17 bench/switchover.sh          # another net (default: 127.0.16 patroni3, 127.0.17 patroni4)
#   WAYS="paused plain" bench/switchover.sh   # a subset of the ways (default: paused held plain)
#   CLUSTER_DIR=/tmp/ct bench/switchover.sh   # an already running test cluster (started and stopped by you)
#
# On its own real local cluster (tests/cluster, in /tmp/sb.XXXX), RUNS switchovers of wk1 per way, back and
# forth, the ways in turn:
#   paused: citusctl -i DIR/inventory.yml switchover wk1 --yes
#           (pauses group 1 on the coordinator across Patroni's switchover, updates the row in the same transaction)
#   held:   citusctl -i DIR/inventory.yml switchover wk1 --yes --hold-reads
#           (the same, and group 1's distributed tables locked on the coordinator before the pause: reads wait too)
#   plain:  POST /switchover to the wk1 leader's REST API (curl, basic auth), and the moment the new leader is
#           writable: citusctl -i DIR/inventory.yml resync --yes
# bench/switchover_load.py drives each run: a writer and a reader through the coordinator (one statement every
# 10 ms each, own connection each, reconnecting after errors), a 5 ms poll of group 1's primary row on the
# coordinator leader and of pg_is_in_recovery() on the candidate. Per run and way it prints failed writes, failed
# reads, the longest successful statement, the time from the request until pg_dist_node names the new leader, and
# the distinct error texts; then the medians per way.
#
# Citus is detected at run time (SELECT citus_version() on the coordinator). With the test stand-in
# (tests/citus-standin, not Citus: no distributed tables) the load EMULATES Citus' routing: see
# bench/switchover_load.py. The output says which one was measured.
#
# Fails when a precondition fails (cluster not healthy, the row not right before a run, a run invalid twice).
# Only loopback addresses are used; everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

FLAVOR=${FLAVOR:-patroni3}
RUNS=${RUNS:-5}
read -r -a WAYS_A <<<"${WAYS:-paused held plain}"
NWAYS=${#WAYS_A[@]}
for w in "${WAYS_A[@]}"; do
    case $w in paused | held | plain) ;; *) echo "bench/switchover.sh: unknown way $w" >&2; exit 2 ;; esac
done
CLUSTER_DIR=${CLUSTER_DIR:-}
if [ -n "$CLUSTER_DIR" ]; then
    NET=$(sed -n 's/^export CITUSCTL_TEST_NET=//p' "$CLUSTER_DIR/env")
    FLAVOR=$(sed -n 's/^export CITUSCTL_TEST_FLAVOR=//p' "$CLUSTER_DIR/env")
fi
case $FLAVOR in
patroni3) NET=${NET:-127.0.16} ;;
patroni4) NET=${NET:-127.0.17} ;;
*) echo "bench/switchover.sh: FLAVOR must be patroni3 or patroni4" >&2; exit 2 ;;
esac
PY=/usr/bin/python3 # Debian's, with python3-psycopg2 (a Patroni dependency)

log() { printf '\n== %s\n' "$*"; }
die() { printf 'bench/switchover.sh: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/sb.XXXX)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
DIR=

cleanup() {
    local rc=$?
    if [ -n "$DIR" ] && [ "$DIR" != "$CLUSTER_DIR" ]; then
        bash "$ROOT/tests/cluster/cluster.sh" stop --dir "$DIR" >/dev/null 2>&1 || true
        rm -rf "$DIR"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------------------
command -v curl >/dev/null || die "curl is needed"
$PY -c 'import psycopg2' 2>/dev/null || die "$PY cannot import psycopg2 (apt-get install python3-psycopg2)"
if [ -z "$CLUSTER_DIR" ] && curl -s -m 1 -o /dev/null "http://$NET.1:8008/cluster"; then
    die "something already answers on $NET.1:8008: set NET=127.0.N to a free net"
fi
log "test cluster packages (tests/cluster/install.sh)"
bash tests/cluster/install.sh
log "cargo build --release"
cargo build --release --locked --quiet
BIN=$ROOT/target/release/citusctl

context() {
    printf '%s: %s, %s cores, load average %s; patroni processes (ps aux | grep -c [p]atroni): %s; cargo/rustc: %s\n' \
        "$1" "$(date -u +%FT%TZ)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
        "$(ps aux | grep -c '[p]atroni' || true)" \
        "$(ps -eo comm= | grep -cE '^(cargo|rustc)$' || true)"
}

addr() { echo "$NET.${1#pg}"; } # pgN -> NET.N

wk1_leader() { # running leader of wk1 (empty if none)
    local x
    for x in pg3 pg4; do
        curl -s -m 2 "http://$(addr "$x"):8008/cluster" 2>/dev/null | $PY -c '
import json, sys
try:
    c = json.load(sys.stdin)
except Exception:
    sys.exit(1)
for m in c.get("members", []):
    if m.get("role") == "leader" and m.get("state") == "running":
        print(m["name"]); break' && return 0
    done
    return 0
}

primary_row() {
    bash tests/cluster/cluster.sh psql --dir "$DIR" pg1 -XAtc \
        "SELECT nodename FROM pg_dist_node WHERE groupid = 1 AND noderole = 'primary'"
}

# ---------------------------------------------------------------------------------------------------------------
context "before"
if [ -n "$CLUSTER_DIR" ]; then
    DIR=$CLUSTER_DIR
    log "$FLAVOR: the running cluster on $NET in $DIR"
else
    DIR=$(mktemp -d /tmp/sb.XXXX)
    log "$FLAVOR: cluster on $NET in $DIR"
    bash tests/cluster/cluster.sh start --flavor "$FLAVOR" --net "$NET" --dir "$DIR"
fi
bash tests/cluster/cluster.sh wait-healthy --dir "$DIR" --timeout 90
# shellcheck disable=SC1091
. "$DIR/env"

log "setup (bench_events)"
SETUP=$($PY bench/switchover_load.py setup --dir "$DIR")
echo "$SETUP"
CITUS=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["citus"])' "$SETUP")
IDS=$($PY -c 'import json,sys; print(",".join(map(str, json.loads(sys.argv[1])["ids"])))' "$SETUP")
if [ "$CITUS" = standin ]; then
    LABEL="Citus stand-in (emulated routing): NOT Citus; the load emulates Citus' routing and write lock"
else
    LABEL="real Citus ($($PY -c 'import json,sys; print(json.loads(sys.argv[1])["version"])' "$SETUP"))"
fi
echo "measuring on: $LABEL"

for ((i = 0; i < NWAYS * RUNS; i++)); do
    way=${WAYS_A[i % NWAYS]}
    run=$((i / NWAYS + 1))
    attempt=0
    while :; do
        old=$(wk1_leader)
        [ -n "$old" ] || die "wk1 has no running leader"
        if [ "$old" = pg3 ]; then new=pg4; else new=pg3; fi
        [ "$(primary_row)" = "$(addr "$old")" ] || die "group 1's primary row is not the wk1 leader $(addr "$old") before the run"
        log "run $run/$RUNS, $way: wk1 $old -> $new"
        rc=0
        $PY bench/switchover_load.py run --dir "$DIR" --bin "$BIN" --way "$way" --old "$old" --new "$new" \
            --citus "$CITUS" --ids "$IDS" >"$WORK/run.json" || rc=$?
        $PY - "$WORK/run.json" <<'PY' || cat "$WORK/run.json"
import json, sys
r = json.load(open(sys.argv[1]))
for c in r.get("commands", []):
    started = f" (started at +{c['start_ms']} ms)" if "start_ms" in c else ""
    print(f"  {c['cmd']}: exit {c['exit']}, {c['ms']} ms{started}")
    for l in c.get("stderr", []):
        print("    | " + l)
if r.get("patroni"):
    print(f"  Patroni: {r['patroni']}")
if r.get("error"):
    print(f"  error: {r['error']}")
PY
        if [ $rc -eq 0 ]; then
            $PY -c 'import json,sys; r=json.load(open(sys.argv[1])); r["run"]=int(sys.argv[2]); print(json.dumps(r))' \
                "$WORK/run.json" "$run" >>"$RESULTS"
            break
        fi
        attempt=$((attempt + 1))
        [ $rc -eq 3 ] && [ $attempt -lt 3 ] || die "run failed (exit $rc)"
        echo "  refused: waiting, then trying again ($attempt/2)"
        bash tests/cluster/cluster.sh wait-healthy --dir "$DIR" --timeout 90 >/dev/null
        sleep 3
    done
    bash tests/cluster/cluster.sh wait-healthy --dir "$DIR" --timeout 90 >/dev/null || die "cluster not healthy after the run"
    sleep 1
done
context "after"

# ---------------------------------------------------------------------------------------------------------------
log "results: $FLAVOR, $LABEL"
$PY - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'run':>3} {'way':6} {'change':8} {'failed W':>8} {'failed R':>8} {'stall W ms':>10} {'stall R ms':>10} "
      f"{'row ms':>8} {'writable ms':>11} {'W err window ms':>16} {'R err window ms':>16}  held/total (citusctl)")
for r in rows:
    w, rd = r["writes"], r["reads"]
    win = lambda s: f"{s['first_error_ms']}..{s['last_error_ms']}" if s["failed"] else "-"
    extra = ""
    for c in r.get("commands", []):
        rep = c.get("report") or {}
        if rep.get("paused_ms") is not None:
            extra = f"paused {rep['paused_ms']} ms / {rep.get('total_ms')} ms"
        elif c["cmd"].startswith("citusctl resync"):
            extra += f"resync +{c['start_ms']} ms ({c['ms']} ms, exit {c['exit']}) "
    print(f"{r['run']:>3} {r['way']:6} {r['old'] + '>' + r['new']:8} {w['failed']:>8} {rd['failed']:>8} "
          f"{w['max_stall_ms']:>10.1f} {rd['max_stall_ms']:>10.1f} {r['row_ms']:>8.1f} {r['writable_ms'] or 0:>11.1f} "
          f"{win(w):>16} {win(rd):>16}  {extra}")
print()
for way in ("paused", "held", "plain"):
    rs = [r for r in rows if r["way"] == way]
    if not rs:
        continue
    med = lambda f: statistics.median(f(r) for r in rs)
    print(f"{way:6} n={len(rs)}  median: failed writes {med(lambda r: r['writes']['failed']):g}, "
          f"failed reads {med(lambda r: r['reads']['failed']):g}, "
          f"longest write {med(lambda r: r['writes']['max_stall_ms']):.1f} ms, "
          f"longest read {med(lambda r: r['reads']['max_stall_ms']):.1f} ms, "
          f"request -> row right {med(lambda r: r['row_ms']):.1f} ms, "
          f"request -> new leader writable {med(lambda r: r['writable_ms'] or 0):.1f} ms")
print()
for way in ("paused", "held", "plain"):
    for kind in ("writes", "reads"):
        errs = {}
        for r in rows:
            if r["way"] == way:
                for t, n in r[kind]["errors"].items():
                    errs[t] = errs.get(t, 0) + n
        print(f"{way} {kind}: {'no errors' if not errs else 'distinct error texts (count over all runs):'}")
        for t, n in sorted(errs.items(), key=lambda x: -x[1]):
            print(f"  {n:5}  {t}")
PY
