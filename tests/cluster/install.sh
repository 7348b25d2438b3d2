#!/usr/bin/env bash
# Install what the citusctl test cluster needs (Debian 12, run as root). Idempotent, quiet unless it fails,
# never reads standard input (safe in CI).
#   - apt: etcd-server, patroni (3.0.2 on Debian 12), haproxy, python3-venv, postgresql-15 (+ contrib: dblink)
#   - a Patroni 4.1 venv in ${CITUSCTL_TEST_CACHE:-/var/tmp/citusctl-test}/venv-patroni4 (readable by user postgres)
set -euo pipefail

CACHE=${CITUSCTL_TEST_CACHE:-/var/tmp/citusctl-test}
VENV=$CACHE/venv-patroni4
LOG=$(mktemp /tmp/citusctl-install.XXXXXX)
trap 'rm -f "$LOG"' EXIT

fail() { echo "install.sh: $*" >&2; echo "---- last output ----" >&2; tail -n 40 "$LOG" >&2; exit 1; }
run() { "$@" >>"$LOG" 2>&1 || fail "command failed: $*"; }

[ "$(id -u)" = 0 ] || { echo "install.sh: must run as root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
PKGS=(etcd-server patroni haproxy python3-venv python3-etcd postgresql-15 postgresql-contrib postgresql-client-15 ssl-cert curl)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    # Keep the distro's default clusters from being created/started by the postgresql package.
    mkdir -p /etc/postgresql-common/createcluster.d
    [ -e /etc/postgresql-common/createcluster.d/citusctl-test.conf ] ||
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/citusctl-test.conf
    run apt-get update -q
    run apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    # The Debian packages start system services; the test cluster runs its own processes instead.
    for svc in etcd patroni haproxy; do
        systemctl disable --now "$svc" >>"$LOG" 2>&1 || true
    done
fi

[ -x /usr/lib/postgresql/15/bin/postgres ] || fail "PostgreSQL 15 server binaries not found"
[ -f /usr/share/postgresql/15/extension/dblink.control ] || fail "dblink extension not found"
[ -f /etc/ssl/private/ssl-cert-snakeoil.key ] || run make-ssl-cert generate-default-snakeoil
id -nG postgres | grep -qw ssl-cert || run adduser postgres ssl-cert

# Patroni 4.1 venv, built with Debian's python so user postgres can execute it.
mkdir -p "$CACHE"
chmod 755 "$CACHE"
if ! "$VENV/bin/patroni" --version 2>/dev/null | grep -q ' 4\.1\.'; then
    rm -rf "$VENV"
    run /usr/bin/python3 -m venv "$VENV"
    run "$VENV/bin/pip" install -q --disable-pip-version-check 'patroni[etcd3]>=4.1,<4.2' psycopg2-binary
    "$VENV/bin/patroni" --version 2>/dev/null | grep -q ' 4\.1\.' || fail "patroni 4.1 not usable in $VENV"
fi
chmod -R a+rX "$VENV"
exit 0
