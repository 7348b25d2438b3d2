#!/usr/bin/env bash
# The package tests (run by scripts/test.sh in its first cluster run, so CI runs them):
#   1. the binary's ELF version needs: nothing above GLIBC_2.17; `--version` says so
#   2. the tarball holds the binary, man pages, completions, the unit, the example inventory
#   3. the .rpm lists the same files as the .deb, with the same modes (`rpm -qlp`); it installs
#      into an empty root with Debian's rpm and erases cleanly
#   4. lintian: no error on the .deb, and no warning that tests/package/lintian-allowed does not
#      explain
#   5. in a Debian 11 root (debootstrap, cached: tests/package/debian-root.sh): `dpkg -i`,
#      `citusctl --version`, `man -w citusctl-list`, bash completion, `citusctl list -f json`
#      against the running test cluster, `dpkg -r` leaves only the conffile, `dpkg -P` nothing
#   tests/package/test.sh --cluster-dir DIR   # DIR: a cluster from tests/cluster/cluster.sh start
#   tests/package/test.sh                     # without step 5's `list`
# Builds the packages first with scripts/dist.sh (a no-op build when nothing changed).
set -euo pipefail
cd "$(dirname "$0")/../.."

GLIBC=2.17
cluster_dir=
while [ $# -gt 0 ]; do
    case $1 in
        --cluster-dir) cluster_dir=$2; shift 2 ;;
        *) echo "usage: $0 [--cluster-dir DIR]" >&2; exit 2 ;;
    esac
done

fail() { echo "package test FAILED: $*" >&2; exit 1; }
t0=$(date +%s)
step() { echo "package: $* ($(($(date +%s) - t0)) s)"; }

bash scripts/dist.sh >/dev/null
OUT=${CARGO_TARGET_DIR:-target}/dist
tarball=$(ls "$OUT"/citusctl-*-x86_64-linux-gnu.tar.gz)
deb=$(ls "$OUT"/citusctl_*_amd64.deb)
rpm=$(ls "$OUT"/citusctl-*.x86_64.rpm)
bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/citusctl
step "built $(basename "$tarball") $(basename "$deb") $(basename "$rpm")"

# 1. ELF version needs (.gnu.version_r): every GLIBC_x.y the binary asks for.
needs=$(readelf --version-info --wide "$bin" | grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: GLIBC_//' | sort -uV)
[ -n "$needs" ] || fail "readelf found no GLIBC version needs in $bin"
newest=$(printf '%s\n' "$needs" | tail -n 1)
[ "$(printf '%s\n%s\n' "$newest" "$GLIBC" | sort -V | tail -n 1)" = "$GLIBC" ] ||
    fail "$bin needs GLIBC_$newest, above GLIBC_$GLIBC (all: $(echo $needs))"
version=$("$bin" --version)
grep -qE "^citusctl [0-9.]+ \(commit [0-9a-f]{12}(-dirty)?, glibc >= $GLIBC\)$" <<<"$version" ||
    fail "unexpected --version: $version"
step "ELF needs GLIBC_$newest at most (<= $GLIBC); $version"

# 2. The tarball.
want_tar="citusctl completions/_citusctl completions/citusctl.bash completions/citusctl.fish
systemd/citusctl-resync.service inventory.yml.example man/man1/citusctl.1.gz man/man1/citusctl-list.1.gz
README.md copyright changelog"
listing=$(tar -tzf "$tarball")
for f in $want_tar; do
    grep -qx "citusctl-[^/]*/$f" <<<"$listing" || fail "$tarball lacks $f"
done
grep -q '^-rw-r----- .*/inventory.yml.example$' <<<"$(tar -tvzf "$tarball")" || fail "inventory.yml.example in $tarball is not 0640"
step "tarball holds the binary, man pages, completions, unit, example inventory"

# 3. The .rpm holds the .deb's files, with the same modes. Where the distributions put a file in
# different places (Cargo.toml, [package.metadata.deb]), the .deb's path is mapped to the .rpm's.
deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { p = $6; sub(/^\./, "", p); print $1, p }' |
    sed -e 's#^\(\S*\) /lib/systemd/system/#\1 /usr/lib/systemd/system/#' \
        -e 's#/usr/share/zsh/vendor-completions/#/usr/share/zsh/site-functions/#' \
        -e 's#/usr/share/doc/citusctl/changelog.Debian.gz$#/usr/share/doc/citusctl/changelog.gz#' | sort)
rpm -qlp "$rpm" >/dev/null 2>&1 || fail "rpm -qlp $rpm failed"
rpm_files=$(rpm -qp --queryformat '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" 2>/dev/null | sort)
if [ "$deb_files" != "$rpm_files" ]; then
    diff <(echo "$deb_files") <(echo "$rpm_files") >&2 || true
    fail ".deb (<) and .rpm (>) differ"
fi
step "rpm -qlp: the .rpm holds the .deb's $(wc -l <<<"$rpm_files") files with the same modes"

# Debian's rpm can install it into an empty root (no RPM distribution here to run it in): the
# payload unpacks with its modes, the binary runs, and `rpm -e` removes everything (rpm also
# removes an unmodified %config file; an edited one would stay as .rpmsave).
rroot=$(mktemp -d)
rpm --root "$rroot" --initdb
rpm --root "$rroot" -i --nodeps "$rpm" 2>"$rroot.log" || { cat "$rroot.log" >&2; fail "rpm -i $rpm into an empty root"; }
[ "$(stat -c %a "$rroot/etc/citusctl/inventory.yml.example")" = 640 ] || fail "rpm: inventory.yml.example is not 0640"
[ "$("$rroot/usr/bin/citusctl" --version)" = "$version" ] || fail "rpm: the installed citusctl --version differs"
rpm --root "$rroot" -e citusctl 2>"$rroot.log" || { cat "$rroot.log" >&2; fail "rpm -e citusctl"; }
left=$(cd "$rroot" && find etc usr -type f 2>/dev/null || true)
rm -rf "$rroot" "$rroot.log"
[ -z "$left" ] || fail "after rpm -e, left: $(echo $left)"
step "rpm -i into an empty root: modes kept, --version runs; rpm -e removes it all"

# 4. lintian.
lint=$(lintian --no-cfg --display-level '>=warning' "$deb" 2>&1 || true)
if grep -q '^E: ' <<<"$lint"; then
    echo "$lint" >&2
    fail "lintian reports errors"
fi
allowed=$(sed -e 's/#.*//' -e '/^\s*$/d' tests/package/lintian-allowed | awk '{ print $1 }')
unexplained=$(grep '^W: ' <<<"$lint" | awk '{ print $3 }' | grep -vxF -f <(echo "$allowed") || true)
[ -z "$unexplained" ] || { echo "$lint" >&2; fail "lintian warnings not in tests/package/lintian-allowed: $(echo $unexplained)"; }
step "lintian: no error; warnings: $(grep -c '^W: ' <<<"$lint" || true) (all in tests/package/lintian-allowed)"

# The unit, with ExecStart pointing at the built binary (verify checks that it exists).
unitdir=$(mktemp -d)
sed "s#/usr/bin/citusctl#$(realpath "$bin")#" contrib/citusctl-resync.service >"$unitdir/citusctl-resync.service"
systemd-analyze verify --man=no "$unitdir/citusctl-resync.service" || fail "systemd-analyze verify contrib/citusctl-resync.service"
exposure=$(systemd-analyze security --offline=yes "$unitdir/citusctl-resync.service" 2>/dev/null | grep -o 'exposure level for [^:]*: [0-9.]* [A-Z]*' | sed 's/.*: //')
rm -rf "$unitdir"
step "systemd-analyze verify: the unit is valid; exposure ${exposure:-not measured}"

# 5. Debian 11.
root_tar=$(bash tests/package/debian-root.sh)
root=$(mktemp -d "${CITUSCTL_TEST_CACHE:-/var/tmp/citusctl-test}/debian11.XXXXXX")
trap 'rm -rf "$root"' EXIT
tar -C "$root" --numeric-owner -xpf "$root_tar"
in_root() { chroot "$root" /usr/bin/env -u LANG -u LC_ALL PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
grep -q '^11\.' "$root/etc/debian_version" || fail "the root is not Debian 11: $(cat "$root/etc/debian_version")"
step "Debian $(cat "$root/etc/debian_version") root unpacked from $(basename "$root_tar")"

cp "$deb" "$root/tmp/"
in_root dpkg -i "/tmp/$(basename "$deb")" >"$root/tmp/dpkg-i.log" 2>&1 || { cat "$root/tmp/dpkg-i.log" >&2; fail "dpkg -i"; }
[ "$(in_root citusctl --version 2>&1)" = "$version" ] || fail "citusctl --version in Debian 11: $(in_root citusctl --version 2>&1)"
[ "$(in_root man -w citusctl-list)" = /usr/share/man/man1/citusctl-list.1.gz ] ||
    fail "man -w citusctl-list: $(in_root man -w citusctl-list 2>&1)"
# bash-completion loads completions on first use; an interactive login shell gets its loader from
# /etc/profile.d/bash_completion.sh, then asks for citusctl's.
comp=$(in_root bash -lic '__load_completion citusctl; complete -p citusctl' 2>/dev/null </dev/null) ||
    fail "no bash completion for citusctl in an interactive bash"
grep -q 'complete .* citusctl$' <<<"$comp" || fail "unexpected completion spec: $comp"
in_root test ! -e /etc/systemd/system/multi-user.target.wants/citusctl-resync.service ||
    fail "the unit was enabled on install"
step "dpkg -i; --version, man -w citusctl-list, '$comp', unit not enabled"

if [ -n "$cluster_dir" ]; then
    cp "$cluster_dir/inventory.yml" "$root/tmp/inventory.yml"
    # The passwords reach citusctl through the environment (the inventory's password_env): the
    # chroot keeps it; nothing secret is on a command line.
    set +e
    (
        set -a; . "$cluster_dir/env"; set +a
        chroot "$root" /usr/bin/citusctl -i /tmp/inventory.yml list -f json
    ) >"$root/tmp/list.json" 2>"$root/tmp/list.err"
    rc=$?
    set -e
    [ $rc -le 1 ] || { cat "$root/tmp/list.err" >&2; fail "citusctl list in Debian 11 exited $rc"; }
    summary=$(python3 - "$root/tmp/list.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format_version"] == 1, r["format_version"]
scopes = [g["scope"] for g in r["groups"]]
assert scopes == ["cn", "wk1", "wk2"], scopes
members = [m for g in r["groups"] for m in g["members"]]
assert len(members) == 6 and all(m["reachable"] for m in members), [(m["name"], m["error"]) for m in members]
assert all(g["leader"] for g in r["groups"]), [(g["scope"], g["leader"]) for g in r["groups"]]
rows = [row for g in r["groups"] for row in g["pg_dist_node"]]
assert rows, "no pg_dist_node rows: the coordinator leader was not read"
print(f"ok={r['ok']}, leaders {','.join(g['leader'] for g in r['groups'])}, {len(rows)} pg_dist_node rows")
PY
) || { cat "$root/tmp/list.json" "$root/tmp/list.err" >&2; fail "unexpected JSON from citusctl list in Debian 11"; }
    step "citusctl list -f json in Debian 11 against $cluster_dir: exit $rc, $summary"
else
    step "citusctl list in Debian 11: skipped (no --cluster-dir)"
fi

files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { p = $6; sub(/^\./, "", p); print p }')
in_root dpkg -r citusctl >"$root/tmp/dpkg-r.log" 2>&1 || { cat "$root/tmp/dpkg-r.log" >&2; fail "dpkg -r"; }
left=$(for f in $files; do [ -e "$root$f" ] && echo "$f"; done || true)
[ "$left" = /etc/citusctl/inventory.yml.example ] || fail "after dpkg -r, left: $(echo $left)"
[ "$(stat -c %a "$root/etc/citusctl/inventory.yml.example")" = 640 ] || fail "inventory.yml.example is not 0640"
in_root dpkg -P citusctl >"$root/tmp/dpkg-p.log" 2>&1 || { cat "$root/tmp/dpkg-p.log" >&2; fail "dpkg -P"; }
[ ! -e "$root/etc/citusctl" ] || fail "after dpkg -P, /etc/citusctl is left"
step "dpkg -r leaves only /etc/citusctl/inventory.yml.example (0640); dpkg -P removes it"
echo "package tests: all passed in $(($(date +%s) - t0)) s"
