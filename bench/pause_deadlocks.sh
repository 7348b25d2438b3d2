#!/usr/bin/env bash
# Pauses of wk1 in a row (taken and let go, no switchover) under pgbench's TPC-B load through the coordinator
# leader, on a cluster started by tests/cluster/cluster.sh: how many client transactions fail while the pauses
# are being had, and why (Citus's distributed deadlock detector cancels the youngest transaction of a wait
# cycle; see EXPOSED_GRACE in src/pause.rs). Real Citus only: the stand-in has no such detector.
#
#   bench/pause_deadlocks.sh --dir DIR [--secs 60] [--clients 8] [--bin target/release/examples/pause_loop]
#
# Prints pgbench's counts, the failures by message, and the pauses' tries and ms to get (median, max).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR= SECS=60 CLIENTS=8 BIN=target/release/examples/pause_loop
while [ $# -gt 0 ]; do
    case $1 in
    --dir) DIR=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$DIR" ] || { echo "--dir DIR (a cluster started by tests/cluster/cluster.sh) is required" >&2; exit 2; }
# shellcheck disable=SC1091
. "$DIR/env"
[ "$CITUSCTL_CITUS" = real ] || { echo "real Citus only: the stand-in has no distributed deadlock detector" >&2; exit 2; }
export PGPASSWORD=$CITUS_PGPASSWORD PGUSER=postgres PGSSLMODE=prefer
# The pgbench tables, distributed (the switchover bench's setup; no switchover with --runs 0).
bench/switchover_tpcb.sh --dir "$DIR" --runs 0 >/dev/null
CL="bash tests/cluster/cluster.sh"
sql() { $CL psql --dir "$DIR" "$1" -XAtc "$2"; }
CN=$(target/release/citusctl -i "$DIR/inventory.yml" list cn -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][0]["leader"])')
CNADDR="$CITUSCTL_TEST_NET.${CN#pg}"
read -r NODEID NODENAME < <(sql "$CN" "SELECT nodeid, nodename FROM pg_dist_node WHERE groupid = 1 AND noderole = 'primary'" | tr '|' ' ')
sql "$CN" "TRUNCATE pgbench_history" >/dev/null
log=$(mktemp -d)
/usr/lib/postgresql/15/bin/pgbench -n -c "$CLIENTS" -j 2 -T "$SECS" --failures-detailed --verbose-errors \
    -h "$CNADDR" postgres >"$log/pgbench" 2>&1 &
pgb=$!
sleep 2
# One pause every ~0.5 s (held 100 ms) for the load's duration.
"$BIN" "$CNADDR" "$NODEID" "$NODENAME" $(( (SECS - 4) * 2 )) 100 >"$log/pauses" 2>&1 || true
wait "$pgb" || true
echo "citus $(sql "$CN" "SELECT citus_version()" | cut -c1-14); Patroni $CITUSCTL_TEST_FLAVOR; $CLIENTS clients, $SECS s"
grep -E '^number of (transactions actually processed|failed transactions)|^number of (deadlock|serialization) failures' "$log/pgbench" || true
echo "aborted clients: $(grep -c 'aborted' "$log/pgbench" || true)"
grep -o 'ERROR: .*' "$log/pgbench" | sed 's/ DETAIL.*//' | sort | uniq -c | sed 's/^/  /' || true
python3 - "$log/pauses" <<'PY'
import statistics, sys
had, failed = [], 0
for line in open(sys.argv[1]):
    w = line.split()
    if len(w) >= 2 and w[0].isdigit():
        had.append((int(w[0]), int(w[1]), int(w[2]) if len(w) > 2 else 0))
    elif line.startswith("failed:"):
        failed += 1
t = sorted(h[0] for h in had) or [0]
m = sorted(h[1] for h in had) or [0]
b = sum(h[2] for h in had)
print(f"pauses: {len(had)} had ({sum(t)} tries in all, {b} let go for a waiting client, median {statistics.median_low(t)}, max {t[-1]}; "
      f"ms to get median {statistics.median_low(m)}, max {m[-1]}), {failed} not had")
PY
if [ -n "${KEEP_LOG:-}" ]; then cp -r "$log" "$KEEP_LOG"; fi
rm -rf "$log"
