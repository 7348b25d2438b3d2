#!/usr/bin/env bash
# Install what `make dist` and the package tests need (Debian 12, run as root). Idempotent, quiet
# unless it fails, never reads standard input (safe in CI). Pinned versions:
#   - apt: debootstrap (the Debian 11 root), rpm (rpm -qlp), lintian, binutils (readelf), xz-utils,
#     systemd (systemd-analyze verify of the unit)
#   - zig from PyPI's ziglang, in a venv: ${CITUSCTL_TEST_CACHE:-/var/tmp/citusctl-test}/venv-zig
#   - cargo-zigbuild, cargo-deb, cargo-generate-rpm: `cargo install --locked` into .../cargo-tools
# Prints nothing; scripts/dist.sh puts venv-zig/bin and cargo-tools/bin first on PATH.
set -euo pipefail

ZIGLANG_VERSION=0.16.0
CARGO_ZIGBUILD_VERSION=0.24.1
CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

CACHE=${CITUSCTL_TEST_CACHE:-/var/tmp/citusctl-test}
LOG=$(mktemp /tmp/citusctl-package-install.XXXXXX)
trap 'rm -f "$LOG"' EXIT

fail() { echo "tests/package/install.sh: $*" >&2; echo "---- last output ----" >&2; tail -n 40 "$LOG" >&2; exit 1; }
run() { "$@" >>"$LOG" 2>&1 </dev/null || fail "command failed: $*"; }

[ "$(id -u)" = 0 ] || { echo "tests/package/install.sh: must run as root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
PKGS=(debootstrap rpm lintian binutils xz-utils python3-venv systemd)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    run apt-get update -q
    run apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

mkdir -p "$CACHE"
chmod 755 "$CACHE"

# zig, as the ziglang wheel (no download from anywhere but PyPI). cargo-zigbuild finds it as
# `python3 -m ziglang` when the venv's bin is first on PATH.
ZVENV=$CACHE/venv-zig
if [ "$("$ZVENV/bin/python3" -m ziglang version 2>/dev/null)" != "$ZIGLANG_VERSION" ]; then
    rm -rf "$ZVENV"
    run /usr/bin/python3 -m venv "$ZVENV"
    run "$ZVENV/bin/pip" install -q --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
    [ "$("$ZVENV/bin/python3" -m ziglang version 2>/dev/null)" = "$ZIGLANG_VERSION" ] ||
        fail "zig $ZIGLANG_VERSION not usable in $ZVENV"
fi

# Cargo subcommands, built from crates.io with their own lock files, in a root of their own.
TOOLS=$CACHE/cargo-tools
tool() { # crate version binary
    "$TOOLS/bin/$3" --version 2>/dev/null | grep -qF " $2" && return 0
    # Built at low priority: the machine's other work (timing-sensitive tests) comes first.
    run nice -n 15 cargo install --locked --quiet --root "$TOOLS" "$1" --version "=$2"
    "$TOOLS/bin/$3" --version 2>/dev/null | grep -qF " $2" || fail "$1 $2 not usable in $TOOLS"
}
tool cargo-zigbuild "$CARGO_ZIGBUILD_VERSION" cargo-zigbuild
tool cargo-deb "$CARGO_DEB_VERSION" cargo-deb
tool cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION" cargo-generate-rpm
exit 0
