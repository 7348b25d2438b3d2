#!/usr/bin/env bash
# Speed benchmark of `citusctl list`, against baselines measured in the same run (see BENCHMARKS.md).
#
#   bench/list.sh                          # everything: both flavours, hung member, scale (~2-4 min)
#   FLAVORS=patroni4 RUNS=30 bench/list.sh
#   SKIP_SCALE=1 bench/list.sh
#
# 1. Per Patroni flavour, on a real local cluster (tests/cluster, on 127.0.7 / 127.0.8 so that it
#    never collides with a test run on the default nets): hyperfine of
#      citusctl -i DIR/inventory.yml list -f json
#      patronictl -c DIR/patronictl.yml list cn wk1 wk2              (baseline: target >= 20x slower)
#      curl -s http://NET.1:8008/cluster                             (floor: target citusctl <= 3x)
#    plus, for information, citusctl on a copy of the inventory whose PostgreSQL ports are closed
#    (REST fan-out only; the metadata read fails at once, exit 1).
# 2. Hung member: a copy of the inventory with `patroni: timeout: 1s` and an extra wk1 member whose
#    REST API accepts connections and never answers: target wall time <= timeout + 100 ms.
# 3. Scale: bench/canned_patroni.py answers /cluster on 303 loopback addresses (cn + wk1..wk100,
#    3 members each, PostgreSQL on a closed port): wall time (< 150 ms) and peak RSS (< 30 MB) of
#    `list -f json` and of the pretty table.
#
# Prints medians and ratios; a missed target is printed as MISSED but does not fail the script.
# Only loopback addresses are used. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
HUNG_RUNS=${HUNG_RUNS:-10}
HUNG_TIMEOUT_MS=${HUNG_TIMEOUT_MS:-1000}
MEM_RUNS=${MEM_RUNS:-5}
SCALE_GROUPS=100
SCALE_BASE=${SCALE_BASE:-127.20}
FLAVORS=${FLAVORS:-patroni3 patroni4}
declare -A NETS=([patroni3]=${NET_PATRONI3:-127.0.7} [patroni4]=${NET_PATRONI4:-127.0.8})

log() { printf '\n== %s\n' "$*"; }
die() { printf 'bench/list.sh: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/cb-bench.XXXX)
SUMMARY=$WORK/summary.txt
: >"$SUMMARY"
CLUSTER_DIRS=()
BG_PIDS=()

cleanup() {
    local rc=$? pid d
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for d in "${CLUSTER_DIRS[@]}"; do
        bash "$ROOT/tests/cluster/cluster.sh" stop --dir "$d" >/dev/null 2>&1 || true
        rm -rf "$d"
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------------------
# tools
if ! command -v hyperfine >/dev/null; then
    log "installing hyperfine"
    apt-get install -y -qq hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
fi
if [ ! -x /usr/bin/time ]; then
    log "installing time"
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"

log "test cluster packages (tests/cluster/install.sh)"
bash tests/cluster/install.sh
log "cargo build --release"
cargo build --release --locked --quiet
BIN=$ROOT/target/release/citusctl

# What else is running: this machine is shared with test runs (2 cores).
context() {
    local busy=() n
    for n in 127.0.1 127.0.2; do
        if curl -s -m 1 -o /dev/null "http://$n.1:8008/cluster"; then busy+=("$n"); fi
    done
    printf '%s: load average %s; test clusters on 127.0.1/127.0.2: %s; patroni processes: %s; cargo/rustc processes: %s\n' \
        "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" "${busy[*]:-none}" \
        "$(ps -eo args= | grep -cE '[p]atroni .*patroni\.yml' || true)" \
        "$(ps -eo comm= | grep -cE '^(cargo|rustc)$' || true)" | tee -a "$SUMMARY"
}
printf 'hyperfine %s, %s cores, %s\n' "$(hyperfine --version | cut -d' ' -f2)" "$(nproc)" "$(uname -sr)" | tee -a "$SUMMARY"

# ---------------------------------------------------------------------------------------------------------------
# reporting: medians from hyperfine --export-json
report() { # MODE JSON ...
    python3 - "$@" <<'PY' | tee -a "$SUMMARY"
import json, sys
mode, path = sys.argv[1], sys.argv[2]
res = {r["command"]: r for r in json.load(open(path))["results"]}
med = {k: r["median"] * 1000 for k, r in res.items()}

def spread(k):
    r = res[k]
    return f"median {med[k]:8.1f} ms  (min {r['min']*1000:.1f}, max {r['max']*1000:.1f}, runs {len(r['times'])})"

def mark(ok):
    return "ok" if ok else "MISSED"

if mode == "flavour":
    flavour = sys.argv[3]
    for k in res:
        print(f"{flavour:9} {k:22} {spread(k)}")
    a, b, c = med["citusctl list -f json"], med["patronictl list"], med["curl /cluster"]
    print(f"{flavour:9} patronictl/citusctl = {b / a:6.1f}x  (target >= 20x)   {mark(b / a >= 20)}")
    print(f"{flavour:9} citusctl/curl       = {a / c:6.1f}x  (target <= 3x)    {mark(a / c <= 3)}")
elif mode == "info":
    flavour = sys.argv[3]
    for k in res:
        print(f"{flavour:9} {k:22} {spread(k)}   (information)")
elif mode == "hung":
    flavour, timeout = sys.argv[3], float(sys.argv[4])
    for k in res:
        print(f"{flavour:9} {k:22} {spread(k)}")
        m = med[k]
        print(f"{flavour:9} hung member: {m:.0f} ms vs timeout + 100 ms = {timeout + 100:.0f} ms   {mark(m <= timeout + 100)}")
elif mode == "scale":
    for k in res:
        print(f"scale     {k:22} {spread(k)}   (target < 150 ms)   {mark(med[k] < 150)}")
PY
}

rss_median() { # LABEL CMD... : peak RSS over MEM_RUNS runs (/usr/bin/time -v), median
    local label=$1 i
    shift
    for ((i = 0; i < MEM_RUNS; i++)); do
        /usr/bin/time -v "$@" >/dev/null 2>"$WORK/time.txt" || true # citusctl exits 1 here
        sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt"
    done | python3 -c '
import statistics, sys
label = sys.argv[1]
kb = [int(x) for x in sys.stdin.read().split()]
assert kb, "no RSS figure from /usr/bin/time"
m = statistics.median(kb) / 1024
verdict = "ok" if m < 30 else "MISSED"
print(f"scale     {label:22} peak RSS median {m:6.1f} MB  (min {min(kb)/1024:.1f}, max {max(kb)/1024:.1f}, runs {len(kb)})   (target < 30 MB)   {verdict}")
' "$label" | tee -a "$SUMMARY"
}

# A TCP listener that accepts and never answers; prints its port to FILE.
start_hung_listener() { # PORTFILE
    python3 - "$1" <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(128)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    c, _ = s.accept()
    held.append(c)          # never read, never answered, never closed
    del held[:-1000]
PY
    BG_PIDS+=($!)
    local deadline=$((SECONDS + 10))
    until [ -s "$1" ]; do
        [ $SECONDS -lt $deadline ] || die "hung listener did not start"
        sleep 0.05
    done
}

# ---------------------------------------------------------------------------------------------------------------
# 1 + 2: real clusters
for flavour in $FLAVORS; do
    net=${NETS[$flavour]:?unknown flavour $flavour}
    if curl -s -m 1 -o /dev/null "http://$net.1:8008/cluster"; then
        die "something already answers on $net.1:8008: set NET_${flavour^^}=127.0.N to a free net"
    fi
    context "before $flavour"
    dir=$(mktemp -d "/tmp/cb-${flavour: -2}.XXXX")
    CLUSTER_DIRS+=("$dir")
    log "$flavour: cluster on $net in $dir"
    bash tests/cluster/cluster.sh start --flavor "$flavour" --net "$net" --dir "$dir"
    bash tests/cluster/cluster.sh wait-healthy --dir "$dir" --timeout 90
    # shellcheck disable=SC1091
    . "$dir/env"
    inv=$dir/inventory.yml

    # sanity: everything healthy, every baseline works
    rc=0
    "$BIN" -i "$inv" list >"$WORK/list.txt" || rc=$?
    cat "$WORK/list.txt"
    [ $rc -eq 0 ] || die "$flavour: citusctl list exited $rc on a fresh cluster (expected 0)"
    $CITUSCTL_PATRONICTL -c "$CITUSCTL_PATRONICTL_CONFIG" list cn wk1 wk2 >/dev/null
    curl -sf -o /dev/null "http://$net.1:8008/cluster"

    log "$flavour: citusctl vs patronictl vs curl"
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/$flavour.json" \
        -n "citusctl list -f json" "$BIN -i $inv list -f json" \
        -n "patronictl list" "$CITUSCTL_PATRONICTL -c $CITUSCTL_PATRONICTL_CONFIG list cn wk1 wk2" \
        -n "curl /cluster" "curl -s http://$net.1:8008/cluster"

    # information: the same without the PostgreSQL metadata read (ports closed, fails at once)
    sed -E -e 's/^( +- \{ name: pg[0-9]+, host: [0-9.]+) \}/\1, port: 1 }/' \
        -e 's/^  sslmode: .*/&\n  connect_timeout: 1s/' "$inv" >"$WORK/$flavour-restonly.yml"
    [ "$(grep -c 'port: 1 }' "$WORK/$flavour-restonly.yml")" -eq 6 ] || die "rest-only inventory: sed did not match"
    hyperfine -N -i --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/$flavour-rest.json" \
        -n "citusctl (pg closed)" "$BIN -i $WORK/$flavour-restonly.yml list -f json"

    log "$flavour: hung member (patroni timeout ${HUNG_TIMEOUT_MS}ms)"
    rm -f "$WORK/hung.port"
    [ -n "${HUNG_PORT:-}" ] || { start_hung_listener "$WORK/hung.port"; HUNG_PORT=$(cat "$WORK/hung.port"); }
    sed -E -e "s/^  timeout: .*/  timeout: ${HUNG_TIMEOUT_MS}ms/" \
        -e "s|^(      - \{ name: pg4, .*)$|\1\n      - { name: pg7, host: $net.7, api: \"http://127.0.0.1:$HUNG_PORT\" }|" \
        "$inv" >"$WORK/$flavour-hung.yml"
    grep -q "name: pg7" "$WORK/$flavour-hung.yml" || die "hung inventory: sed did not match"
    grep -q "timeout: ${HUNG_TIMEOUT_MS}ms" "$WORK/$flavour-hung.yml" || die "hung inventory: no timeout"
    rc=0
    "$BIN" -i "$WORK/$flavour-hung.yml" list >"$WORK/list.txt" || rc=$?
    grep -E 'pg7' "$WORK/list.txt" || true
    [ $rc -eq 1 ] || die "$flavour: citusctl list with a hung member exited $rc (expected 1)"
    hyperfine -N -i --style basic --warmup 1 --runs "$HUNG_RUNS" --export-json "$WORK/$flavour-hung.json" \
        -n "citusctl (hung member)" "$BIN -i $WORK/$flavour-hung.yml list -f json"

    report flavour "$WORK/$flavour.json" "$flavour"
    report info "$WORK/$flavour-rest.json" "$flavour"
    report hung "$WORK/$flavour-hung.json" "$flavour" "$HUNG_TIMEOUT_MS"

    bash tests/cluster/cluster.sh stop --dir "$dir" >/dev/null
done

# ---------------------------------------------------------------------------------------------------------------
# 3: scale
if [ -z "${SKIP_SCALE:-}" ]; then
    context "before scale"
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
    # check that the output really lists 101 groups and 303 reachable, healthy members
    rc=0
    "$BIN" -i "$WORK/scale.yml" list -f json >"$WORK/scale.json" || rc=$?
    [ $rc -eq 1 ] || die "scale: citusctl list exited $rc (expected 1: metadata read fails on the closed port)"
    python3 - "$WORK/scale.json" "$SCALE_GROUPS" <<'PY' | tee -a "$SUMMARY"
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2]) + 1
groups = r["groups"]
members = [m for g in groups for m in g["members"]]
reachable = sum(1 for m in members if m["reachable"])
healthy = sum(1 for g in groups if g["healthy"])
print(f"scale     check: {len(groups)} groups, {len(members)} members, {reachable} reachable, "
      f"{healthy} healthy groups, metadata error: {r['metadata']['error'] or [d['error'] for d in r['metadata']['databases']]}")
if len(groups) != n or len(members) != 3 * n or reachable != 3 * n or healthy != n:
    sys.exit(f"scale: expected {n} healthy groups and {3*n} reachable members")
PY
    "$BIN" -i "$WORK/scale.yml" list >"$WORK/scale.txt" || true
    [ "$(grep -c 'g[0-9]*m[123]' "$WORK/scale.txt")" -ge 303 ] || die "scale: pretty table does not list 303 members"

    log "scale: wall time"
    hyperfine -N -i --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/scale-time.json" \
        -n "list -f json (303)" "$BIN -i $WORK/scale.yml list -f json" \
        -n "list pretty (303)" "$BIN -i $WORK/scale.yml list"
    report scale "$WORK/scale-time.json"
    # information: the floor set by the canned server, all 303 /cluster at once from one curl
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/scale-curl.json" \
        -n "curl -Z 303 /cluster" "curl -s -Z --parallel-max 300 http://$SCALE_BASE.[0-$SCALE_GROUPS].[1-3]:8008/cluster"
    report info "$WORK/scale-curl.json" scale
    log "scale: peak memory"
    rss_median "list -f json (303)" "$BIN" -i "$WORK/scale.yml" list -f json
    rss_median "list pretty (303)" "$BIN" -i "$WORK/scale.yml" list
fi

context "end"
log "summary"
cat "$SUMMARY"
