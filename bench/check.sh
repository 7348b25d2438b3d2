#!/usr/bin/env bash
# Speed benchmark of `citusctl check` (the doctor), release build (see BENCHMARKS.md, "check").
#
#   bench/check.sh                              # test cluster + 100 groups (~1-2 min)
#   CLUSTER_DIR=/tmp/ct4 bench/check.sh         # use a running test cluster instead of starting one
#   SKIP_SCALE=1 bench/check.sh;  SKIP_CLUSTER=1 bench/check.sh
#
# 1. On a real local cluster (tests/cluster: cn, wk1, wk2, 2 members each; FLAVOR patroni4 on NET
#    127.0.8 unless CLUSTER_DIR names a running one): hyperfine of `check -f json`, with
#    `list -f json` (same binary, same run) as the baseline.
# 2. Scale: bench/canned_patroni.py (as bench/list.sh) answers /cluster, /patroni and /config on 303
#    loopback addresses (cn + wk1..wk100, 3 members each); PostgreSQL is on a closed port, so every
#    SQL probe of `check` (member facts, worker pg_dist_node, Citus's checks) fails at once and
#    check exits 1. Target: check -f json under 1 s (median), with list -f json as the baseline.
#
# Prints medians; a missed target is printed as MISSED but does not fail the script. Only
# loopback addresses are used. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=${RUNS:-15}
WARMUP=${WARMUP:-2}
FLAVOR=${FLAVOR:-patroni4}
NET=${NET:-127.0.8}
SCALE_GROUPS=100
SCALE_BASE=${SCALE_BASE:-127.20}

log() { printf '\n== %s\n' "$*"; }
die() { printf 'bench/check.sh: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/cb-check.XXXX)
SUMMARY=$WORK/summary.txt
: >"$SUMMARY"
STARTED_DIR=
BG_PIDS=()
cleanup() {
    local rc=$? pid
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$STARTED_DIR" ]; then
        bash "$ROOT/tests/cluster/cluster.sh" stop --dir "$STARTED_DIR" >/dev/null 2>&1 || true
        rm -rf "$STARTED_DIR"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v hyperfine >/dev/null || { apt-get install -y -qq hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }; }
command -v python3 >/dev/null || die "python3 is needed"
log "cargo build --release"
cargo build --release --locked --quiet
BIN=$ROOT/target/release/citusctl
printf 'hyperfine %s, %s cores, %s, load average %s\n' "$(hyperfine --version | cut -d' ' -f2)" "$(nproc)" \
    "$(uname -sr)" "$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$SUMMARY"

report() { # LABEL TARGET_MS JSON
    python3 - "$@" <<'PY' | tee -a "$SUMMARY"
import json, sys
label, target, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
for r in json.load(open(path))["results"]:
    k, med = r["command"], r["median"] * 1000
    line = f"{label:8} {k:26} median {med:8.1f} ms  (min {r['min']*1000:.1f}, max {r['max']*1000:.1f}, runs {len(r['times'])})"
    if k.startswith("check") and target > 0:
        line += f"   (target < {target:.0f} ms)   {'ok' if med < target else 'MISSED'}"
    print(line)
PY
}

# ---------------------------------------------------------------------------------------------------------------
# 1: the test cluster
if [ -z "${SKIP_CLUSTER:-}" ]; then
    dir=${CLUSTER_DIR:-}
    if [ -z "$dir" ]; then
        curl -s -m 1 -o /dev/null "http://$NET.1:8008/cluster" && die "something already answers on $NET.1:8008: set NET=127.0.N or CLUSTER_DIR"
        dir=$(mktemp -d /tmp/cb-ck.XXXX)
        STARTED_DIR=$dir
        log "$FLAVOR: cluster on $NET in $dir"
        flock -s /var/tmp/citus-real.lock bash tests/cluster/cluster.sh start --flavor "$FLAVOR" --net "$NET" --dir "$dir"
    fi
    bash tests/cluster/cluster.sh wait-healthy --dir "$dir" --timeout 90
    # shellcheck disable=SC1091
    . "$dir/env"
    export CITUS_PGPASSWORD PATRONI_PASSWORD
    inv=$dir/inventory.yml
    rc=0
    "$BIN" -i "$inv" check >"$WORK/check.txt" || rc=$?
    cat "$WORK/check.txt"
    [ $rc -eq 0 ] || die "citusctl check exited $rc on a healthy cluster (expected 0)"
    citus=$(bash tests/cluster/cluster.sh psql --dir "$dir" pg1 -XAtc "SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'citus'), 'stand-in')" 2>/dev/null || echo '?')
    echo "cluster  $CITUSCTL_TEST_FLAVOR, Citus: $citus" | tee -a "$SUMMARY"
    log "test cluster: check vs list"
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/cluster.json" \
        -n "check -f json (6)" "$BIN -i $inv check -f json" \
        -n "list -f json (6)" "$BIN -i $inv list -f json"
    report cluster 0 "$WORK/cluster.json"
fi

# ---------------------------------------------------------------------------------------------------------------
# 2: 100 groups
if [ -z "${SKIP_SCALE:-}" ]; then
    log "scale: canned Patroni 4 on ${SCALE_BASE}.{0..$SCALE_GROUPS}.{1..3}:8008"
    curl -s -m 1 -o /dev/null "http://$SCALE_BASE.1.1:8008/cluster" && die "something already answers on $SCALE_BASE.1.1:8008"
    python3 "$ROOT/bench/canned_patroni.py" --groups "$SCALE_GROUPS" --base "$SCALE_BASE" \
        --inventory "$WORK/scale.yml" --ready "$WORK/scale.ready" &
    BG_PIDS+=($!)
    deadline=$((SECONDS + 20))
    until [ -s "$WORK/scale.ready" ]; do
        kill -0 "${BG_PIDS[-1]}" 2>/dev/null || die "canned_patroni.py exited"
        [ $SECONDS -lt $deadline ] || die "canned_patroni.py not ready after 20 s"
        sleep 0.1
    done
    # check that check really looked at 101 groups and 303 members
    rc=0
    "$BIN" -i "$WORK/scale.yml" check -f json >"$WORK/scale.json" || rc=$?
    [ $rc -eq 1 ] || die "scale: citusctl check exited $rc (expected 1: every SQL probe fails on the closed port)"
    python3 - "$WORK/scale.json" "$SCALE_GROUPS" <<'PY' | tee -a "$SUMMARY"
import collections, json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2]) + 1
f = r["findings"]
scopes = {x["scope"] for x in f if x["scope"]}
members = {(x["scope"], x["member"]) for x in f if x["member"]}
by = collections.Counter(x["check"] for x in f)
print(f"scale    check: {len(f)} findings ({r['counts']}), {len(scopes)} scopes, {len(members)} members named; "
      f"per check: {dict(sorted(by.items()))}")
if len(scopes) != n or len(members) != 3 * n:
    sys.exit(f"scale: expected findings for {n} scopes and {3*n} members")
PY
    log "scale: wall time"
    hyperfine -N -i --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/scale-time.json" \
        -n "check -f json (303)" "$BIN -i $WORK/scale.yml check -f json" \
        -n "check pretty (303)" "$BIN -i $WORK/scale.yml check" \
        -n "list -f json (303)" "$BIN -i $WORK/scale.yml list -f json"
    report scale 1000 "$WORK/scale-time.json"
fi

log "summary"
cat "$SUMMARY"
