#!/usr/bin/env bash
# Print the path of a tarball of a Debian 11 (bullseye) minbase root with man-db and
# bash-completion, for tests/package/test.sh. Made with debootstrap once and cached in
# ${CITUSCTL_TEST_CACHE:-/var/tmp/citusctl-test}/debian11-root-KEY.tar, KEY a hash of this
# script and the mirror, so a change of either makes a new one (and removes the old). Each test
# run unpacks a fresh copy, so no run sees what an earlier one left. Quiet unless it fails.
#   DEBIAN_MIRROR=http://deb.debian.org/debian (default)
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=${CITUSCTL_TEST_CACHE:-/var/tmp/citusctl-test}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bullseye
INCLUDE=man-db,bash-completion

key=$( { cat "$0"; echo "$MIRROR"; } | sha256sum | cut -c1-12)
tarball=$CACHE/debian11-root-$key.tar
if [ -s "$tarball" ]; then
    echo "$tarball"
    exit 0
fi

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/debian11-root.XXXXXX")
log=$(mktemp /tmp/citusctl-debootstrap.XXXXXX)
trap 'rm -rf "$work" "$log"' EXIT
if ! nice -n 15 debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/root" "$MIRROR" \
    >"$log" 2>&1 </dev/null; then
    echo "debian-root.sh: debootstrap $SUITE from $MIRROR failed" >&2
    tail -n 40 "$log" >&2
    [ -f "$work/root/debootstrap/debootstrap.log" ] && tail -n 20 "$work/root/debootstrap/debootstrap.log" >&2
    exit 1
fi
# The package cache is not needed by the tests.
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
tar -C "$work/root" --numeric-owner -cf "$work/root.tar" .
rm -f "$CACHE"/debian11-root-*.tar
mv "$work/root.tar" "$tarball"
echo "$tarball"
