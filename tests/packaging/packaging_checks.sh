#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks of what the package ships, with the real tools, no root needed:
#   packaging_checks.sh CHECK SOURCE_DIR WAITWATCHD WAITWATCH
# CHECK: prometheus_rules | unit_verify | unit_security | man_pages | sysusers | kubernetes
# Exit 0: passed; 1: failed (the reason is printed); 77: a needed tool is missing.
set -euo pipefail
check=$1
src=$2
waitwatchd=$3
waitwatch=$4

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed" >&2; exit 77; }
  done
}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

unit=$src/systemd/waitwatchd.service
dropin=$src/systemd/all-namespaces.conf

# A file system root holding what `systemd-analyze verify` looks at: the unit, the binary at its
# ExecStart path, /bin/kill for ExecReload, and the targets the unit is ordered against.
make_root() {
  local root=$1
  mkdir -p "$root/usr/sbin" "$root/bin" "$root/usr/lib/systemd/system"
  cp "$waitwatchd" "$root/usr/sbin/waitwatchd"
  cp /bin/kill "$root/bin/kill"
  cp "$unit" "$root/usr/lib/systemd/system/"
  local dir
  for dir in /usr/lib/systemd/system /lib/systemd/system; do
    [ -d "$dir" ] && cp -n "$dir"/*.target "$root/usr/lib/systemd/system/" 2>/dev/null || true
  done
  # The man pages the unit's Documentation= names, found through MANPATH.
  mkdir -p "$root/man/man1" "$root/man/man5" "$root/man/man8"
  cp "$src/packaging/man/waitwatch.1" "$root/man/man1/"
  cp "$src/packaging/man/waitwatch.json.5" "$root/man/man5/"
  cp "$src/packaging/man/waitwatchd.8" "$root/man/man8/"
}

case $check in
  prometheus_rules)
    need promtool
    cd "$src/packaging/prometheus"
    promtool check rules waitwatch-rules.yml || fail "promtool check rules"
    promtool test rules waitwatch-rules.test.yml || fail "promtool test rules"
    ;;

  unit_verify)
    need systemd-analyze man
    root=$scratch/root
    make_root "$root"
    # verify prints nothing for a clean unit (it exits 0 even on unknown keys, so the output is
    # what counts). First the unit alone, then with the all-namespaces drop-in.
    out=$(cd / && MANPATH=$root/man systemd-analyze verify --root="$root" waitwatchd.service 2>&1) ||
      fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify reported: $out"
    mkdir -p "$root/etc/systemd/system/waitwatchd.service.d"
    cp "$dropin" "$root/etc/systemd/system/waitwatchd.service.d/"
    out=$(cd / && MANPATH=$root/man systemd-analyze verify --root="$root" waitwatchd.service 2>&1) ||
      fail "systemd-analyze verify with the drop-in: $out"
    [ -z "$out" ] || fail "systemd-analyze verify with the drop-in reported: $out"
    # The check is real: a unit whose binary is missing does not pass.
    rm "$root/usr/sbin/waitwatchd"
    if out=$(cd / && MANPATH=$root/man systemd-analyze verify --root="$root" waitwatchd.service 2>&1) &&
       [ -z "$out" ]; then
      fail "systemd-analyze verify passed without /usr/sbin/waitwatchd"
    fi
    echo "systemd-analyze verify: clean (unit, unit + all-namespaces drop-in)"
    ;;

  unit_security)
    need systemd-analyze
    # Exposure as systemd-analyze prints it ("2.0"), times ten for --threshold.
    exposure() {
      local root=$1
      { (cd / && systemd-analyze security --offline=true --root="$root" waitwatchd.service 2>&1) || true; } |
        sed -n 's/.*Overall exposure level for waitwatchd.service: \([0-9.]*\).*/\1/p'
    }
    root=$scratch/root
    make_root "$root"
    base=$(exposure "$root")
    [ -n "$base" ] || fail "no exposure level in systemd-analyze security's output"
    (cd / && systemd-analyze security --offline=true --root="$root" --threshold=25 \
       waitwatchd.service >/dev/null 2>&1) || fail "exposure $base is above 2.5"
    mkdir -p "$root/etc/systemd/system/waitwatchd.service.d"
    cp "$dropin" "$root/etc/systemd/system/waitwatchd.service.d/"
    all=$(exposure "$root")
    (cd / && systemd-analyze security --offline=true --root="$root" --threshold=25 \
       waitwatchd.service >/dev/null 2>&1) || fail "exposure with the all-namespaces drop-in $all is above 2.5"
    # The drop-in must really add CAP_SYS_ADMIN: it raises the exposure.
    awk -v a="$all" -v b="$base" 'BEGIN { exit !(a > b) }' ||
      fail "the drop-in does not change the exposure ($base -> $all): is it read?"
    echo "systemd-analyze security --offline=true: $base (all namespaces: $all), target <= 2.5"
    ;;

  man_pages)
    need man
    for page in waitwatch.1 waitwatch.json.5 waitwatchd.8; do
      warnings=$(MANWIDTH=80 man --warnings -l "$src/packaging/man/$page" 2>&1 >/dev/null)
      [ -z "$warnings" ] || fail "$page: $warnings"
      MANWIDTH=80 man -l "$src/packaging/man/$page" 2>/dev/null | grep -q '^NAME' ||
        fail "$page renders without a NAME section"
    done
    # The long options each page documents are exactly those the program's --help lists.
    options_of_page() {
      grep -o '\\-\\-[a-z][a-z\\-]*' "$1" | sed 's/\\//g' | sort -u | tr '\n' ' '
    }
    options_of_help() {
      "$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u | tr '\n' ' '
    }
    for pair in "waitwatchd.8:$waitwatchd" "waitwatch.1:$waitwatch"; do
      page=${pair%%:*}
      program=${pair#*:}
      documented=$(options_of_page "$src/packaging/man/$page")
      accepted=$(options_of_help "$program")
      [ "$documented" = "$accepted" ] ||
        fail "$page documents [$documented], $(basename "$program") --help lists [$accepted]"
    done
    # The example configuration of waitwatch.json(5) compiles.
    MANWIDTH=100 man -l "$src/packaging/man/waitwatch.json.5" 2>/dev/null |
      awk '/^EXAMPLE/ { inside = 1; next } /^[A-Z]/ { inside = 0 } inside' |
      awk '/^ *[{] *$/ { json = 1 } json' >"$scratch/example.json"
    grep -q '"rules"' "$scratch/example.json" || fail "no example found in waitwatch.json.5"
    "$waitwatchd" --check-config "$scratch/example.json" ||
      fail "the example of waitwatch.json(5) does not compile"
    ;;

  sysusers)
    need systemd-sysusers
    root=$scratch/root
    mkdir -p "$root/etc" "$root/usr/lib/sysusers.d"
    cp "$src/systemd/waitwatch.sysusers" "$root/usr/lib/sysusers.d/waitwatch.conf"
    systemd-sysusers --root="$root" waitwatch.conf || fail "systemd-sysusers"
    entry=$(grep '^waitwatch:' "$root/etc/passwd") || fail "no waitwatch user in $root/etc/passwd"
    IFS=: read -r name _ uid gid _ home shell <<<"$entry"
    [ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "uid $uid is not a system uid"
    grep -q "^waitwatch:x:$gid:" "$root/etc/group" || fail "no waitwatch group with gid $gid"
    [ "$home" = /nonexistent ] || fail "home is $home"
    [ "$shell" = /usr/sbin/nologin ] || fail "shell is $shell"
    grep -q '^User=waitwatch$' "$unit" || fail "the unit does not run as $name"
    echo "sysusers: $entry"
    ;;

  kubernetes)
    manifest=$src/packaging/kubernetes/waitwatch-daemonset.yaml
    # The DaemonSet grants exactly the unit's capabilities with its all-namespaces drop-in (pods'
    # sockets are in their own network namespaces).
    unit_caps=$(sed -n 's/^AmbientCapabilities=//p' "$unit" "$dropin" | tr ' ' '\n' | sed 's/^CAP_//' | sort | xargs)
    pod_caps=$(sed -n 's/^ *add: \[\(.*\)\]$/\1/p' "$manifest" | tr -d '" ' | tr ',' '\n' | sort | xargs)
    [ -n "$unit_caps" ] && [ "$unit_caps" = "$pod_caps" ] ||
      fail "the DaemonSet adds [$pod_caps], the unit grants [$unit_caps]"
    if python3 -c 'import yaml' 2>/dev/null; then
      python3 - "$manifest" <<'PY' || fail "$manifest"
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = [d["kind"] for d in docs]
assert kinds == ["Namespace", "ConfigMap", "DaemonSet"], kinds
spec = docs[2]["spec"]["template"]["spec"]
assert spec["hostPID"] and spec["hostNetwork"], "hostPID and hostNetwork"
assert json.loads(docs[1]["data"]["waitwatch.json"])["namespaces"] == "all"
c = spec["containers"][0]
sc = c["securityContext"]
assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"], sc
assert sc["capabilities"]["drop"] == ["ALL"], sc
assert c["livenessProbe"]["httpGet"]["path"] == "/metrics"
assert c["readinessProbe"]["httpGet"]["path"] == "/metrics"
ann = docs[2]["spec"]["template"]["metadata"]["annotations"]
assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9929", ann
# State survives a restart of the pod: STATE_DIRECTORY is a writable mount from the node.
env = {e["name"]: e["value"] for e in c["env"]}
mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
state = mounts[env["STATE_DIRECTORY"]]
assert not state.get("readOnly", False), state
volume = {v["name"]: v for v in spec["volumes"]}[state["name"]]
assert volume["hostPath"]["path"] == env["STATE_DIRECTORY"], volume
# Container names come through /proc/1/root: the only node paths mounted are the state.
config = docs[1]["data"]["waitwatch.json"]
assert json.loads(config)["containers"]["root"] == "/proc/1/root", config
host = [v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v]
assert host == [env["STATE_DIRECTORY"]], host
PY
      # Its configuration compiles.
      python3 -c 'import sys, yaml; print(list(yaml.safe_load_all(open(sys.argv[1])))[1]["data"]["waitwatch.json"])' \
        "$manifest" >"$scratch/k8s.json"
      "$waitwatchd" --check-config "$scratch/k8s.json" || fail "the ConfigMap's waitwatch.json"
    else
      echo "note: python3-yaml is not installed: the manifest's structure is not checked"
    fi
    echo "kubernetes: capabilities [$pod_caps] as the unit"
    ;;

  *)
    fail "unknown check $check"
    ;;
esac
