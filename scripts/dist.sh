#!/usr/bin/env bash
# `make dist`: the release binary for x86_64 Linux with glibc 2.17 and newer, and the tarball,
# .deb and .rpm around it, in ${CARGO_TARGET_DIR:-target}/dist/. Installs what it needs first
# (tests/package/install.sh: zig from PyPI, cargo-zigbuild, cargo-deb, cargo-generate-rpm).
#   scripts/dist.sh            # prints the three paths
# The build runs at low priority (nice), so it does not disturb timing-sensitive work.
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC=2.17                       # the oldest glibc the binary runs on (CentOS 7)
TRIPLE=x86_64-unknown-linux-gnu
CACHE=${CITUSCTL_TEST_CACHE:-/var/tmp/citusctl-test}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
REL=$TARGET_DIR/$TRIPLE/release
OUT=$TARGET_DIR/dist

bash tests/package/install.sh
export PATH=$CACHE/venv-zig/bin:$CACHE/cargo-tools/bin:$PATH
# Same bytes for the same commit: file times in every archive are the commit's time.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

# build.rs puts CITUSCTL_GLIBC into `citusctl --version`; zig links against that glibc's symbols.
CITUSCTL_GLIBC=$GLIBC nice -n 15 cargo zigbuild --locked --release --quiet --target "$TRIPLE.$GLIBC"
bin=$REL/citusctl
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
"$bin" --version | grep -qF "glibc >= $GLIBC" || { echo "dist.sh: $bin --version does not say glibc >= $GLIBC" >&2; exit 1; }

# Generated files the .rpm and the tarball take from target/release/dist (cargo-deb gzips its own).
rm -rf "$REL/dist" "$OUT"
mkdir -p "$REL/dist/man1" "$OUT"
for page in man/*.1; do
    gzip -9n <"$page" >"$REL/dist/man1/$(basename "$page").gz"
done
gzip -9n <packaging/changelog >"$REL/dist/changelog.gz"

# Tarball: citusctl-VERSION-x86_64-linux-gnu/ with the binary and everything the packages hold.
name=citusctl-$version-x86_64-linux-gnu
stage=$REL/dist/$name
mkdir -p "$stage/man/man1" "$stage/completions" "$stage/systemd"
install -m 0755 "$bin" "$stage/citusctl"
install -m 0644 "$REL"/dist/man1/*.1.gz "$stage/man/man1/"
install -m 0644 completions/citusctl.bash completions/_citusctl completions/citusctl.fish "$stage/completions/"
install -m 0644 contrib/citusctl-resync.service "$stage/systemd/"
install -m 0640 tests/inventory/valid/example.yml "$stage/inventory.yml.example"
install -m 0644 README.md packaging/copyright "$stage/"
install -m 0644 packaging/changelog "$stage/changelog"
tar -C "$REL/dist" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -cf - "$name" | gzip -9n >"$OUT/$name.tar.gz"

# --no-build: the binary above is the one to ship (already stripped by the release profile).
nice -n 15 cargo deb --quiet --no-build --no-strip --target "$TRIPLE" --output "$OUT/" >/dev/null
nice -n 15 cargo generate-rpm --target "$TRIPLE" --target-dir "$TARGET_DIR" --payload-compress gzip \
    --source-date "$SOURCE_DATE_EPOCH" --output "$OUT/"

ls -1 "$OUT"/*.tar.gz "$OUT"/*.deb "$OUT"/*.rpm
