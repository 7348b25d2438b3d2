#!/usr/bin/env bash
# Switchovers of wk1 in a row under pgbench's TPC-B load through the coordinator leader, on a cluster started
# by tests/cluster/cluster.sh (real Citus when installed, else the stand-in, whose pause locks the group's shards
# one by one as Citus does and whose TPC-B script takes each row's shard lock: see tests/cluster.rs).
#
#   bench/switchover_tpcb.sh --dir DIR [--runs 5] [--bin target/release/citusctl] [--way paused|plain]
#
# paused: `citusctl switchover wk1 --yes`; plain: Patroni's switchover alone, then `citusctl resync --yes` the
# moment the new leader is writable. Per run, one Markdown row: citusctl's exit, how the pause was had (tries,
# ms), how long writes were held, Patroni's time to a writable leader, pgbench's committed/failed transactions
# and aborted clients, its TPS (median of its 1 s progress lines) and the lowest second, the longest
# transaction (pgbench's per-transaction log), whether every committed transaction is in pgbench_history, and
# whether `citusctl list` is green right after.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR= RUNS=5 BIN=target/release/citusctl WAY=paused SECS=14
while [ $# -gt 0 ]; do
    case $1 in
    --dir) DIR=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --way) WAY=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$DIR" ] || { echo "--dir DIR (a cluster started by tests/cluster/cluster.sh) is required" >&2; exit 2; }
# shellcheck disable=SC1091
. "$DIR/env"
export CITUS_PGPASSWORD PATRONI_PASSWORD PGPASSWORD=$CITUS_PGPASSWORD PGSSLMODE=prefer
NET=$CITUSCTL_TEST_NET
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
INV=$DIR/inventory.yml
CL="bash tests/cluster/cluster.sh"

leader_of() { "$BIN" -i "$INV" list "$1" -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][0]["leader"])'; }
other_of() { "$BIN" -i "$INV" list "$1" -f json | python3 -c 'import json,sys; g=json.load(sys.stdin)["groups"][0]; print([m["name"] for m in g["members"] if m["name"] != g["leader"]][0])'; }
addr() { echo "$NET.${1#pg}"; }
sql() { $CL psql --dir "$DIR" "$1" -XAtc "$2"; }
wait_green() { for _ in $(seq 1 120); do "$BIN" -i "$INV" list -f json >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }

wait_green || { echo "the cluster is not green" >&2; exit 1; }
CN=$(leader_of cn)
if [ "$(sql "$CN" "SELECT count(DISTINCT logicalrelid) FROM pg_dist_shard WHERE logicalrelid::text LIKE 'pgbench_%'")" != 4 ]; then
    "$PGBENCH" -i -q -s 2 -h "$(addr "$CN")" -U postgres postgres >/dev/null 2>&1
    for tc in pgbench_accounts:aid pgbench_branches:bid pgbench_tellers:tid pgbench_history:aid; do
        if [ "$CITUSCTL_CITUS" = real ]; then
            sql "$CN" "SELECT create_distributed_table('${tc%%:*}', '${tc#*:}')" >/dev/null
        else
            sql "$CN" "SELECT citus_standin.create_distributed_table('${tc%%:*}', 8)" >/dev/null
        fi
    done
fi
SCRIPT=()
if [ "$CITUSCTL_CITUS" != real ]; then
    sed -n '/^const TPCB_STANDIN_SCRIPT: &str = r"/,/^";/p' tests/cluster.rs | sed '1s/^.*r"//; $d' >"$DIR/tpcb-standin.sql"
    SCRIPT=(-f "$DIR/tpcb-standin.sql")
fi
VERSION=$(sql "$CN" "SELECT citus_version()" | cut -c1-40)
echo "citus: $VERSION; Patroni: $CITUSCTL_TEST_FLAVOR; way: $WAY; $RUNS runs; pgbench -c 4 -j 2 -T $SECS, switchover at 3 s"
echo
echo "| run | exit | pause (tries, ms to get) | writes held ms | writable after ms | committed | failed | aborted | tps median / lowest s | longest txn ms | all found | list after |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for i in $(seq 1 "$RUNS"); do
    wait_green
    CN=$(leader_of cn)
    OLD=$(leader_of wk1); NEW=$(other_of wk1)
    sql "$CN" "TRUNCATE pgbench_history" >/dev/null
    logdir=$(mktemp -d)
    (cd "$logdir" && "$PGBENCH" -n -c 4 -j 2 -T "$SECS" -P 1 -l --log-prefix=tx --verbose-errors "${SCRIPT[@]}" \
        -h "$(addr "$CN")" -U postgres postgres >out 2>&1) &
    pgb=$!
    sleep 3
    if [ "$WAY" = paused ]; then
        set +e; out=$("$BIN" -i "$INV" switchover wk1 --yes -f json 2>"$logdir/citusctl.err"); code=$?; set -e
    else
        curl -s -u "patroni:$PATRONI_PASSWORD" -XPOST "http://$(addr "$OLD"):8008/switchover" \
            -d "{\"leader\":\"$OLD\",\"candidate\":\"$NEW\"}" >/dev/null &
        for _ in $(seq 1 600); do
            [ "$(PGCONNECT_TIMEOUT=1 psql -XAt -h "$(addr "$NEW")" -U postgres -c 'SELECT pg_is_in_recovery()' postgres 2>/dev/null)" = f ] && break
            sleep 0.01
        done
        set +e; "$BIN" -i "$INV" resync --yes >/dev/null 2>"$logdir/citusctl.err"; code=$?; set -e
        out='{}'
    fi
    wait "$pgb" || true
    set +e; "$BIN" -i "$INV" list -f json >/dev/null 2>&1; listed=$?; set -e
    done_n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$logdir/out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$logdir/out")
    aborted=$(grep -c 'aborted' "$logdir/out" || true)
    found=$(sql "$(leader_of cn)" "SELECT count(*) FROM pgbench_history")
    tps=$(sed -n 's/^progress: [0-9.]* s, \([0-9.]*\) tps.*/\1/p' "$logdir/out" | sort -n |
        awk '{a[NR]=$1} END { if (NR) printf "%.0f / %.0f", a[int((NR+1)/2)], a[1]; else printf "-" }')
    longest=$(cat "$logdir"/tx.* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ && $3 + 0 > m { m = $3 + 0 } END { printf "%.0f", m / 1000 }')
    read -r pause held writable < <(echo "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin); p = r.get("pause") or {}
print("%s,%s" % (p.get("tries", "-"), p.get("acquired_after_ms", "-")), r.get("paused_ms", "-"), r.get("writable_after_ms", "-"))')
    echo "| $i | $code | $pause | $held | $writable | ${done_n:-?} | ${failed:-?} | $aborted | $tps | $longest | $([ "$found" = "$done_n" ] && echo yes || echo "NO ($found)") | $([ $listed = 0 ] && echo green || echo "exit $listed") |"
    if [ "$code" != 0 ]; then sed 's/^/    /' "$logdir/citusctl.err" >&2; fi
    if [ "${failed:-0}" != 0 ]; then
        grep -o 'ERROR: .*' "$logdir/out" | sort | uniq -c | sed 's/^/    pgbench: /' >&2
    fi
    rm -rf "$logdir"
done
