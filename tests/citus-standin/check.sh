#!/usr/bin/env bash
# Run the stand-in checks against a running test cluster: tests/citus-standin/check.sh DIR
# (DIR = the --dir of tests/cluster/cluster.sh start; the cluster must use the stand-in, fresh leaders pg1/pg3/pg5).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER=$HERE/../cluster/cluster.sh
DIR=${1:?usage: check.sh DIR}
. "$DIR/env"
[ "$CITUSCTL_CITUS" = standin ] || { echo "check.sh: the cluster runs real Citus; nothing to check" >&2; exit 0; }
N=$CITUSCTL_TEST_NET
leader_of() { curl -s "http://$N.$1:8008/cluster" | /usr/bin/python3 -c '
import json, sys
print([m["host"] for m in json.load(sys.stdin)["members"] if m["role"] == "leader"][0])'; }
other_of() { local l; l=$(leader_of "$1"); if [ "$l" = "$N.$1" ]; then echo "$N.$2"; else echo "$N.$1"; fi; }
cn=$(leader_of 1); w1=$(leader_of 3); w2=$(leader_of 5)
cnro=$(other_of 1 2); w1ro=$(other_of 3 4); w2ro=$(other_of 5 6)
out=$(mktemp); trap 'rm -f "$out"' EXIT
echo "== coordinator leader $cn"
"$CLUSTER" psql --dir "$DIR" "pg${cn##*.}" -v cn="$cn" -v w1="$w1" -v w1ro="$w1ro" -v w2="$w2" -v w2ro="$w2ro" \
    -f "$HERE/check.sql" 2>&1 | tee "$out" || true
# (a run that stopped at an unexpected error never reaches its last section)
if grep -q MISMATCH "$out" || ! grep -q '^ok ' "$out" || ! grep -q '^the metadata after the run' "$out"; then
    echo "check.sh: FAILED" >&2; exit 1
fi
echo "== standby coordinator $cnro"
"$CLUSTER" psql --dir "$DIR" "pg${cnro##*.}" -v w1="$w1" -f "$HERE/check_standby.sql" 2>&1
echo "== placeholder GUC citus.use_secondary_nodes"
PGOPTIONS='-c citus.use_secondary_nodes=always' "$CLUSTER" psql --dir "$DIR" "pg${cn##*.}" -Atc \
    "SELECT 'PGOPTIONS: ' || current_setting('citus.use_secondary_nodes') || ', active workers: ' || count(*) FROM citus_get_active_worker_nodes()"
"$CLUSTER" psql --dir "$DIR" "pg${cn##*.}" -qAt -c "ALTER SYSTEM SET citus.use_secondary_nodes = 'always'" -c 'SELECT pg_reload_conf()' >/dev/null
sleep 0.3
"$CLUSTER" psql --dir "$DIR" "pg${cn##*.}" -Atc "SELECT 'ALTER SYSTEM + reload, new session: ' || current_setting('citus.use_secondary_nodes')"
"$CLUSTER" psql --dir "$DIR" "pg${cn##*.}" -qAt -c "ALTER SYSTEM RESET citus.use_secondary_nodes" -c 'SELECT pg_reload_conf()' >/dev/null
echo "check.sh: all stand-in checks passed"
