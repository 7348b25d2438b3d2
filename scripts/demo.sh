#!/usr/bin/env bash
# The sandbox demo: a real local Citus-on-Patroni cluster and citusctl on it.
#   scripts/demo.sh          # install, build, start (or restart) the cluster, show `citusctl list`
#   scripts/demo.sh stop     # stop the demo cluster
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${CITUSCTL_DEMO_DIR:-/tmp/citusctl-demo}
NET=${CITUSCTL_DEMO_NET:-127.0.5}
FLAVOR=${CITUSCTL_DEMO_FLAVOR:-patroni4}

if [ "${1:-}" = stop ]; then
    exec bash tests/cluster/cluster.sh stop --dir "$DIR"
fi

echo "== installing what the demo needs (etcd, Patroni, PostgreSQL 15 are Debian packages; Patroni 4 from PyPI)"
bash tests/cluster/install.sh
echo "== building citusctl"
cargo build --release --locked --quiet
echo "== starting the cluster: cn (pg1, pg2), wk1 (pg3, pg4), wk2 (pg5, pg6) on $NET.1-6, Patroni $FLAVOR"
mkdir -p "$DIR"
bash tests/cluster/cluster.sh start --flavor "$FLAVOR" --dir "$DIR" --net "$NET" >/dev/null
# shellcheck disable=SC1091
. "$DIR/env"
BIN=$PWD/target/release/citusctl
echo
echo "\$ citusctl list"
"$BIN" -i "$DIR/inventory.yml" list || true
leader=$(curl -s "http://$NET.3:8008/cluster" | python3 -c 'import json,sys; print(next(m["name"] for m in json.load(sys.stdin)["members"] if m["role"]=="leader"))')
cat <<EOT

The cluster is yours. To continue, in your shell:

  source $DIR/env
  alias citusctl='$BIN -i $DIR/inventory.yml'
  citusctl list                      # the whole cluster; pg_dist_node agrees with Patroni
  citusctl list -f json | less       # the same, for scripts

Switch worker group wk1 over the way operators do today, with Patroni's REST API:

  curl -s -u "patroni:\$PATRONI_PASSWORD" -X POST -d '{"leader": "$leader"}' http://$NET.3:8008/switchover
  # (or: \$CITUSCTL_PATRONICTL -c \$CITUSCTL_PATRONICTL_CONFIG switchover wk1)

  citusctl list; echo "exit \$?"     # wk1: 'primary stale' on the old leader, exit 1
  citusctl list -W                   # watch it (Ctrl-C to stop)

Look inside:  bash tests/cluster/cluster.sh psql --dir $DIR pg1 -c 'TABLE pg_dist_node'
Stop it:      make demo-stop
EOT
