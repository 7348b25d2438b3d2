#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, then unit and CLI tests, then
# the integration tests against a real local cluster, once per Patroni flavour.
#   scripts/test.sh                 # everything
#   FLAVORS=patroni4 scripts/test.sh
#   RUNS="patroni4:11.3" scripts/test.sh
# Each run is FLAVOR:CITUS. On the stand-in, CITUS 11.3 models Citus before 12.1 (no
# citus_pause_node_within_txn: the pause renames the row), so the pause's rename path is tested
# too; with real Citus installed, the installed version decides and the 11.3 run is skipped.
# The package tests (tests/package/test.sh: make dist, glibc 2.17, the .deb in a Debian 11 root
# against the cluster, the .rpm, lintian) run once, in the first run, after its cluster tests.
#   SKIP_PACKAGE_TESTS=1 scripts/test.sh   # a quick local run without them (ignored when CI=true)
#   CLUSTER_TEST_ARGS=--nocapture scripts/test.sh   # see each fault test's figures (`fault:` lines)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/cluster/install.sh
cargo build --locked --all-targets --features cluster-tests
cargo test --locked

if [ -n "${FLAVORS:-}" ]; then
    RUNS=$(for f in $FLAVORS; do printf '%s:13 ' "$f"; done)
fi
package_tests=1
if [ -n "${SKIP_PACKAGE_TESTS:-}" ]; then
    if [ "${CI:-}" = true ]; then echo "== SKIP_PACKAGE_TESTS ignored: CI runs the package tests"; else package_tests=; fi
fi
for run in ${RUNS:-patroni3:13 patroni4:13 patroni4:11.3}; do
    flavor=${run%%:*} citus=${run#*:}
    if [ "$citus" != 13 ] && [ -f /usr/share/postgresql/15/extension/citus.control ]; then
        echo "== $flavor with the Citus $citus stand-in: skipped, real Citus is installed"
        continue
    fi
    dir=$(mktemp -d "/tmp/citusctl-$flavor.XXXXXX")
    echo "== integration tests on $flavor, Citus $citus (cluster in $dir)"
    trap 'bash tests/cluster/cluster.sh stop --dir "$dir" || true' EXIT
    bash tests/cluster/cluster.sh start --flavor "$flavor" --dir "$dir" --citus "$citus"
    # shellcheck disable=SC2086 # CLUSTER_TEST_ARGS: extra libtest flags, e.g. --nocapture for the fault figures
    CITUSCTL_TEST_DIR=$dir cargo test --locked --features cluster-tests --test cluster -- --test-threads=1 ${CLUSTER_TEST_ARGS:-}
    if [ -n "$package_tests" ]; then
        echo "== package tests on $flavor (tests/package/test.sh)"
        bash tests/package/test.sh --cluster-dir "$dir"
        package_tests=
    fi
    bash tests/cluster/cluster.sh stop --dir "$dir"
    trap - EXIT
    rm -rf "$dir"
done
