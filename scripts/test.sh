#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, then unit and CLI tests, then
# the integration tests against a real local cluster, once per Patroni flavour.
#   scripts/test.sh                 # everything
#   FLAVORS=patroni4 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/cluster/install.sh
cargo build --locked --all-targets --features cluster-tests
cargo test --locked

for flavor in ${FLAVORS:-patroni3 patroni4}; do
    dir=$(mktemp -d "/tmp/citusctl-$flavor.XXXXXX")
    echo "== integration tests on $flavor (cluster in $dir)"
    trap 'bash tests/cluster/cluster.sh stop --dir "$dir" || true' EXIT
    bash tests/cluster/cluster.sh start --flavor "$flavor" --dir "$dir"
    CITUSCTL_TEST_DIR=$dir cargo test --locked --features cluster-tests --test cluster -- --test-threads=1
    bash tests/cluster/cluster.sh stop --dir "$dir"
    trap - EXIT
    rm -rf "$dir"
done
