#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian package end to end, on this machine (root): build it with cpack, lint it, install it
# with dpkg, use what it installed, remove it, purge it, and check that nothing is left.
#
#   deb_test.sh SOURCE_DIR BUILD_DIR INSTALL_PREFIX BUILD_TYPE CMAKE CPACK
#
# The package needs a tree configured with CMAKE_INSTALL_PREFIX=/usr (packaging/CMakeLists.txt
# says why). When BUILD_DIR is configured otherwise, this script configures and builds a /usr
# tree of its own in BUILD_DIR/packaging-usr first: correct, but minutes instead of seconds.
#
# WAITWATCH_TEST_DEB=FILE tests that package instead of building one.
#
# It installs and purges the package `waitwatch` on this machine. It refuses to run when a
# waitwatch package it did not install itself is there. Exit 0: passed, 1: failed, 77: skipped.
set -euo pipefail
src=$1
build=$2
prefix=$3
build_type=${4:-RelWithDebInfo}
cmake=${5:-cmake}
cpack=${6:-cpack}

step() { echo "== [${SECONDS}s] $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
skip() {
  echo "SKIP: $*" >&2
  exit 77
}

[ "$(id -u)" = 0 ] || skip "installs a package: needs root"
for tool in dpkg dpkg-deb dpkg-shlibdeps file systemd-sysusers deb-systemd-helper; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (see .ci/deps)"
done

# One package test at a time on a machine (several build trees may run their suites at once).
exec 9>/run/lock/waitwatch-packaging-test.lock
flock -w 900 9 || fail "another packaging test holds /run/lock/waitwatch-packaging-test.lock"

marker=/run/waitwatch-packaging-test.installed
scratch=$(mktemp -d /tmp/waitwatch-deb-XXXXXX)
farm_pid=
netns=
cleanup() {
  [ -n "$farm_pid" ] && kill "$farm_pid" 2>/dev/null && wait "$farm_pid" 2>/dev/null
  [ -n "$netns" ] && ip netns del "$netns" 2>/dev/null
  if [ -e "$marker" ]; then
    dpkg --purge waitwatch >/dev/null 2>&1 || true
    rm -f "$marker"
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

installed() { dpkg-query -W -f='${Status}' waitwatch 2>/dev/null | grep -qv "not-installed"; }
if installed; then
  [ -e "$marker" ] || fail "a waitwatch package is installed on this machine and this test did not \
install it; purge it first (dpkg --purge waitwatch)"
  dpkg --purge waitwatch >/dev/null  # left by an earlier run of this test that was killed
fi

# ----- build (or take the .deb named by WAITWATCH_TEST_DEB, e.g. one packaging/build-deb made)
if [ -n "${WAITWATCH_TEST_DEB:-}" ]; then
  step "testing $WAITWATCH_TEST_DEB"
  mkdir "$scratch/out"
  cp "$WAITWATCH_TEST_DEB" "$scratch/out/"
else
  pkgbuild=$build
  if [ "$prefix" != /usr ]; then
    pkgbuild=$build/packaging-usr
    step "slow path: $build is configured with CMAKE_INSTALL_PREFIX=$prefix; building a /usr tree in $pkgbuild"
    "$cmake" -S "$src" -B "$pkgbuild" -DCMAKE_BUILD_TYPE="$build_type" -DCMAKE_INSTALL_PREFIX=/usr \
      -DWAITWATCH_BUILD_TESTS=OFF >/dev/null
    "$cmake" --build "$pkgbuild" -j"$(nproc)" >/dev/null
  fi
  step "cpack -G DEB in $pkgbuild"
  (cd "$pkgbuild" && "$cpack" -G DEB -B "$scratch/out" >"$scratch/cpack.log" 2>&1) ||
    fail "cpack: $(cat "$scratch/cpack.log")"
fi
debs=("$scratch"/out/waitwatch_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "no waitwatch_*.deb: $(ls "$scratch/out")"
deb=${debs[0]}
version=$(sed -n 's/^project(waitwatch VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ "$(basename "$deb")" = "waitwatch_${version}-1_$(dpkg --print-architecture).deb" ] ||
  fail "unexpected file name $(basename "$deb")"

step "control fields"
depends=$(dpkg-deb -f "$deb" Depends)
for dep in libc6 libstdc++6 libsystemd0 libmicrohttpd12 libprometheus-cpp-core; do
  grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep (dpkg-shlibdeps): $depends"
done
grep -q "systemd-sysusers" <<<"$depends" || fail "Depends lacks systemd-sysusers: $depends"
# Opened at run time by `waitwatch --from`: no dpkg-shlibdeps entry of its own.
grep -q "libcurl4 (>= 7.85.0)" <<<"$depends" || fail "Depends lacks libcurl4: $depends"
[ "$(dpkg-deb -I "$deb" conffiles)" = /etc/waitwatch/waitwatch.json ] ||
  fail "conffiles: $(dpkg-deb -I "$deb" conffiles)"
for script in postinst prerm postrm; do
  dpkg-deb -I "$deb" "$script" >/dev/null || fail "no $script"
done

step "contents"
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort >"$scratch/files"
expected="/etc/waitwatch/waitwatch.json
/usr/bin/waitwatch
/usr/lib/systemd/catalog/waitwatch.catalog
/usr/lib/systemd/system/waitwatchd.service
/usr/lib/sysusers.d/waitwatch.conf
/usr/sbin/waitwatchd
/usr/share/doc/waitwatch/changelog.Debian.gz
/usr/share/doc/waitwatch/copyright
/usr/share/doc/waitwatch/examples/all-namespaces.conf
/usr/share/lintian/overrides/waitwatch
/usr/share/man/man1/waitwatch.1.gz
/usr/share/man/man5/waitwatch.json.5.gz
/usr/share/man/man8/waitwatchd.8.gz
/usr/share/waitwatch/waitwatch-dashboard.json
/usr/share/waitwatch/waitwatch-rules.yml
/usr/share/waitwatch/waitwatch.schema.json"
missing=$(comm -23 <(sort <<<"$expected") "$scratch/files")
[ -z "$missing" ] || fail "the package lacks: $missing"
extra=$(comm -13 <(sort <<<"$expected") "$scratch/files")
[ -z "$extra" ] || echo "note: the package also ships: $extra"
! grep -q '^/usr/local/' "$scratch/files" || fail "files under /usr/local"
mkdir "$scratch/tree"
dpkg-deb -x "$deb" "$scratch/tree"
for binary in usr/bin/waitwatch usr/sbin/waitwatchd; do
  file -b "$scratch/tree/$binary" | grep -q ', stripped' || fail "$binary is not stripped"
done
# The licences a distribution checks: Apache-2.0 for everything, the BPF programs (which the
# kernel loads and whose helpers may be GPL-only) dual GPL-2.0-only or BSD-2-Clause.
copyright="$scratch/tree/usr/share/doc/waitwatch/copyright"
for line in 'Files: \*' 'License: Apache-2.0' 'Files: common/bpf/\*.bpf.c' \
  'License: GPL-2 or BSD-2-clause'; do
  grep -qx "$line" "$copyright" || fail "copyright has no line \"$line\""
done

if command -v lintian >/dev/null; then
  step "lintian"
  lintian --fail-on error,warning "$deb" ||
    fail "lintian reports errors or warnings"
else
  echo "note: lintian is not installed; not linted"
fi

# ----- install
step "dpkg -i"
touch "$marker"
dpkg -i "$deb" >"$scratch/install.log" 2>&1 || fail "dpkg -i: $(cat "$scratch/install.log")"
dpkg-query -W -f='${Status}\n' waitwatch | grep -q "install ok installed" || fail "not installed"

[ "$(/usr/bin/waitwatch --version)" = "waitwatch $version" ] || fail "/usr/bin/waitwatch --version"
[ "$(/usr/sbin/waitwatchd --version)" = "waitwatchd $version" ] || fail "/usr/sbin/waitwatchd --version"
out=$(/usr/sbin/waitwatchd --check-config /etc/waitwatch/waitwatch.json) ||
  fail "waitwatchd --check-config: $out"
grep -q '^/etc/waitwatch/waitwatch.json: OK: ' <<<"$out" || fail "--check-config said: $out"
cmp -s /etc/waitwatch/waitwatch.json "$src/config/waitwatch.json" ||
  fail "/etc/waitwatch/waitwatch.json is not config/waitwatch.json"
/usr/bin/waitwatch --json | grep -q '"CLOSE_WAIT"' || fail "waitwatch --json"

step "installed files"
dpkg -L waitwatch >"$scratch/listed"
while read -r path; do
  [ -e "$path" ] || fail "dpkg -L lists $path, which does not exist"
done <"$scratch/listed"
for path in $expected; do
  grep -qx "$path" "$scratch/listed" || fail "dpkg -L does not list $path"
done
verify=$(dpkg --verify waitwatch) || true
[ -z "$verify" ] || fail "dpkg --verify: $verify"
dpkg-query -W -f='${Conffiles}\n' waitwatch | grep -q '/etc/waitwatch/waitwatch.json' ||
  fail "/etc/waitwatch/waitwatch.json is not a conffile"

step "system user, unit, catalog, man pages"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd waitwatch) || fail "no user waitwatch"
[ "$uid" -lt 1000 ] && [ "$home" = /nonexistent ] && [ "$shell" = /usr/sbin/nologin ] ||
  fail "user waitwatch: uid $uid, home $home, shell $shell"
getent group waitwatch >/dev/null || fail "no group waitwatch"
# Enabled through deb-systemd-helper, whether or not systemd runs here.
[ -L /etc/systemd/system/multi-user.target.wants/waitwatchd.service ] ||
  fail "waitwatchd.service is not enabled"
out=$(systemd-analyze verify /usr/lib/systemd/system/waitwatchd.service 2>&1) ||
  fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify reported: $out"
journalctl --list-catalog 5568a84ca54e47a78310a571a8cf6af4 2>/dev/null | grep -q 'CLOSE_WAIT leak' ||
  fail "the journal catalog has no entry 5568a84ca54e47a78310a571a8cf6af4 (trigger not run?)"
if command -v man >/dev/null; then
  for page in waitwatch.1 waitwatch.json.5 waitwatchd.8; do
    name=${page%.*}
    section=${page##*.}
    [ "$(man -w "$section" "$name")" = "/usr/share/man/man$section/$page.gz" ] ||
      fail "man -w $section $name: $(man -w "$section" "$name" 2>&1)"
    warnings=$(MANWIDTH=80 man --warnings "$section" "$name" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "man $section $name: $warnings"
  done
fi
if [ -d /run/systemd/system ]; then
  if [ -x /usr/sbin/policy-rc.d ] && { /usr/sbin/policy-rc.d waitwatchd.service start; [ $? = 101 ]; }; then
    echo "note: policy-rc.d forbids starting services here: waitwatchd is enabled, not started"
  else
    systemctl is-active --quiet waitwatchd || fail "systemd runs here, but waitwatchd is not active"
    echo "systemd runs here: waitwatchd.service is active"
  fi
else
  echo "note: systemd is not running here: the service is enabled but not started"
fi

# ----- the installed daemon as the unit runs it: user waitwatch, the unit's ambient capabilities
# and nothing else, /proc mounted hidepid=invisible (ProtectProc=invisible). It must attribute
# CLOSE_WAIT sockets of another user's process; without the capabilities it must not.
sockfarm=$build/tests/integration/sockfarm
if [ -x "$sockfarm" ] && command -v setpriv >/dev/null && command -v curl >/dev/null; then
  step "installed daemon as user waitwatch with the unit's capabilities"
  caps=$(sed -n 's/^AmbientCapabilities=//p' /usr/lib/systemd/system/waitwatchd.service |
    tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
  [ -n "$caps" ] || fail "no AmbientCapabilities= in the unit"
  netns=ww-deb-$$
  ip netns add "$netns"
  ip -n "$netns" link set lo up
  mkfifo "$scratch/farm.in"
  ip netns exec "$netns" "$sockfarm" --close-wait 7 --uid 4242 <"$scratch/farm.in" >"$scratch/farm.out" 2>&1 &
  farm_pid=$!
  exec 8>"$scratch/farm.in"
  for _ in $(seq 200); do grep -q '^READY' "$scratch/farm.out" && break; sleep 0.05; done
  grep -q '^READY' "$scratch/farm.out" || fail "sockfarm: $(cat "$scratch/farm.out")"
  echo '{"poll_interval": "200ms", "rules": []}' >"$scratch/daemon.json"
  chmod 644 "$scratch/daemon.json"
  chmod 755 "$scratch"
  attributed() {  # $1: capabilities for setpriv ("" for none); prints the attributed count
    local capargs=(--inh-caps=-all --ambient-caps=-all --bounding-set=-all)
    [ -n "$1" ] && capargs=(--inh-caps="$1" --ambient-caps="$1" --bounding-set=-all,"$1")
    ip netns exec "$netns" unshare -m --propagation private sh -c \
      'mount -t proc -o hidepid=invisible proc /proc && exec "$@"' sh \
      setpriv --reuid=waitwatch --regid=waitwatch --clear-groups --no-new-privs "${capargs[@]}" \
      /usr/sbin/waitwatchd --config "$scratch/daemon.json" --listen 127.0.0.1:9929 \
      >"$scratch/daemon.out" 2>&1 &
    local pid=$! metrics=
    # Two complete polls: the first one after start-up has attributed everything it can. A poll
    # reads the fd tables of every process on the host: slow while a benchmark holds millions.
    for _ in $(seq 300); do
      metrics=$(ip netns exec "$netns" curl -sf http://127.0.0.1:9929/metrics) &&
        awk '/^waitwatch_polls_total / { exit !($2 >= 2) }' <<<"$metrics" && break
      metrics=
      sleep 0.1
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    [ -n "$metrics" ] || fail "the daemon as user waitwatch served no metrics: $(cat "$scratch/daemon.out")"
    awk '/^waitwatch_process_sockets\{comm="sockfarm".*state="CLOSE_WAIT"/ { n += $2 } END { print n + 0 }' <<<"$metrics"
  }
  with=$(attributed "$caps")
  [ "$with" = 7 ] || fail "with $caps the daemon attributed $with of 7 sockets: $(cat "$scratch/daemon.out")"
  without=$(attributed "")
  [ "$without" = 0 ] || fail "without capabilities the daemon attributed $without sockets"
  echo "attributed with $caps: $with of 7; without: $without"
  exec 8>&-
  wait "$farm_pid" 2>/dev/null || true
  farm_pid=
  ip netns del "$netns"
  netns=
else
  echo "note: no sockfarm/setpriv/curl: capabilities not exercised"
fi

# ----- remove: the configuration stays
step "dpkg -r"
dpkg -r waitwatch >"$scratch/remove.log" 2>&1 || fail "dpkg -r: $(cat "$scratch/remove.log")"
[ ! -e /usr/sbin/waitwatchd ] && [ ! -e /usr/bin/waitwatch ] || fail "binaries left after dpkg -r"
[ -f /etc/waitwatch/waitwatch.json ] || fail "dpkg -r removed the configuration"
dpkg-query -W -f='${Status}\n' waitwatch | grep -q "config-files" || fail "not in config-files state"
if [ -d /run/systemd/system ] && systemctl is-active --quiet waitwatchd; then
  fail "waitwatchd still runs after dpkg -r"
fi

# ----- purge: nothing left
step "dpkg --purge"
dpkg --purge waitwatch >"$scratch/purge.log" 2>&1 || fail "dpkg --purge: $(cat "$scratch/purge.log")"
rm -f "$marker"
! installed || fail "still known to dpkg after --purge"
while read -r path; do
  if [ -d "$path" ] && [ ! -L "$path" ]; then
    # A directory may stay when another package owns it too (/usr/share/man/man8).
    dpkg -S "$path" >/dev/null 2>&1 || fail "$path is left after purge and no package owns it"
  elif [ -e "$path" ] || [ -L "$path" ]; then
    fail "$path is left after purge"
  fi
done <"$scratch/listed"
for path in /etc/waitwatch /etc/systemd/system/waitwatchd.service \
  /etc/systemd/system/multi-user.target.wants/waitwatchd.service \
  /var/lib/systemd/deb-systemd-helper-enabled/waitwatchd.service.dsh-also \
  /var/lib/systemd/deb-systemd-helper-masked/waitwatchd.service; do
  [ ! -e "$path" ] && [ ! -L "$path" ] || fail "$path is left after purge"
done
left=$(find /etc /usr/bin /usr/sbin /usr/lib /usr/share /var/lib/systemd /var/lib/dpkg/info \
  -name '*waitwatch*' 2>/dev/null || true)
[ -z "$left" ] || fail "left after purge: $left"
! journalctl --list-catalog 5568a84ca54e47a78310a571a8cf6af4 2>/dev/null | grep -q 'CLOSE_WAIT leak' ||
  fail "the journal catalog still has waitwatch's entries after purge"
# Policy (postrm): the system user stays, as Debian does with system users; it owns no files.
getent passwd waitwatch >/dev/null || fail "the user waitwatch was removed (the policy keeps it)"
echo "PASS: $(basename "$deb") in ${SECONDS}s"
