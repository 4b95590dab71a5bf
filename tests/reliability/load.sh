#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Load runs against the real waitwatchd in a private network namespace (long; not part of CI,
# see docs/reliability.md for the figures):
#
#   sudo tests/reliability/load.sh [--build DIR] [--duration S] scrape
#       100,000 sockets (sockfarm: 50k CLOSE_WAIT, 50k ESTABLISHED, 8 holders), polled every 5 s;
#       wrk with 200 connections for S seconds (default 60): 150 rotating over /api/v1/snapshot,
#       /api/v1/alerts and /metrics, 50 on /metrics alone. Reports failed requests, p50/p99
#       latency of each, and whether polls kept their interval.
#   sudo tests/reliability/load.sh [--build DIR] [--duration S] slow
#       slow-loris (1,000 connections from one address, a header byte every 5 s), a 1 MiB header
#       and a garbage request line, then the same from 4 addresses; meanwhile a scrape every
#       0.5 s from another address: p50/p99/max scrape time and failures of each phase.
#   sudo tests/reliability/load.sh [--build DIR] cardinality
#       10,000 processes each holding one CLOSE_WAIT socket (10 sockfarms x 1,000 holders),
#       metrics.include_pid on and a rule firing for each: series count, folded groups,
#       /metrics size and scrape time, the daemon's RSS and poll time. NO_RULES=1: no rule, to
#       tell the memory of 10,000 firing alerts from that of attribution.
set -euo pipefail

BUILD=build
DURATION=60
PORT=9929
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    scrape|slow|cardinality) MODE="$1"; shift ;;
    *) echo "load.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "${MODE:-}" ] || { echo "load.sh: name a run: scrape, slow or cardinality (see --help)" >&2; exit 2; }
WAITWATCHD="$BUILD/daemon/waitwatchd/waitwatchd"
SOCKFARM="$BUILD/tests/integration/sockfarm"
for b in "$WAITWATCHD" "$SOCKFARM"; do
  [ -x "$b" ] || { echo "load.sh: $b not built" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "load.sh: needs root (ip netns)" >&2; exit 2; }
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "load.sh: needs $tool" >&2; exit 2; }
done

NS="ww-load-$$"
WORK="$(mktemp -d /tmp/waitwatch-load.XXXXXX)"
PIDS=()
FIFOS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "${FIFOS[@]}"; do exec {f}>&- 2>/dev/null || true; done
  wait 2>/dev/null || true
  # Thousands of holders take a moment to go; the namespace is deleted once they have.
  for _ in $(seq 1 20); do
    ip netns delete "$NS" 2>/dev/null && break
    sleep 0.5
  done
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

# farm ARGS...: a sockfarm in the namespace, held until the script ends (its stdin is a FIFO
# this shell keeps open); waits for READY.
farm() {
  local fifo out
  fifo="$WORK/farm-${#FIFOS[@]}.in"
  out="$WORK/farm-${#FIFOS[@]}.out"
  mkfifo "$fifo"
  in_ns "$SOCKFARM" "$@" <"$fifo" >"$out" 2>"$out.err" &
  local fd
  exec {fd}>"$fifo"
  FIFOS+=("$fd")
  for _ in $(seq 1 1200); do
    grep -q '^READY' "$out" && return 0
    kill -0 $! 2>/dev/null || { echo "load.sh: sockfarm failed: $(tail -3 "$out.err")" >&2; exit 1; }
    sleep 0.1
  done
  echo "load.sh: sockfarm not ready after 120 s" >&2
  exit 1
}

start_daemon() {  # start_daemon CONFIG_JSON
  echo "$1" >"$WORK/waitwatch.json"
  # Not through in_ns: a shell function in the background is a subshell, and $! must be the
  # daemon itself (ip netns exec execs it).
  ip netns exec "$NS" "$WAITWATCHD" --config "$WORK/waitwatch.json" --listen "127.0.0.1:$PORT" \
    >"$WORK/waitwatchd.out" 2>"$WORK/waitwatchd.err" &
  DAEMON=$!
  PIDS+=("$DAEMON")
  for _ in $(seq 1 600); do
    in_ns curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/v1/snapshot" && return 0
    sleep 0.1
  done
  echo "load.sh: waitwatchd not ready: $(tail -3 "$WORK/waitwatchd.err")" >&2
  exit 1
}

metrics() { in_ns curl -sS --max-time 10 "http://127.0.0.1:$PORT/metrics"; }
metric() {  # metric TEXT PREFIX
  awk -v p="$2" 'index($0, p) == 1 { print $NF; exit }' <<<"$1"
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON/status"; }

case "$MODE" in
scrape)
  echo "building 100,000 sockets..."
  farm --close-wait 50000 --established 50000 --holders 8
  start_daemon '{"poll_interval": "5s"}'
  sleep 12  # a few polls: the resolver's caches are warm
  before=$(metrics)
  cat >"$WORK/rotate.lua" <<'EOF'
local paths = {"/api/v1/snapshot", "/api/v1/alerts", "/metrics"}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
EOF
  echo "wrk: 150 connections over /api/v1/*, /metrics and 50 on /metrics, ${DURATION}s"
  in_ns wrk -t1 -c150 -d"${DURATION}s" --timeout 10s --latency -s "$WORK/rotate.lua" \
    "http://127.0.0.1:$PORT" >"$WORK/wrk-api.txt" 2>&1 &
  W1=$!
  in_ns wrk -t1 -c50 -d"${DURATION}s" --timeout 10s --latency "http://127.0.0.1:$PORT/metrics" \
    >"$WORK/wrk-metrics.txt" 2>&1 &
  W2=$!
  wait "$W1" "$W2"
  after=$(metrics)
  for f in api metrics; do
    echo "--- wrk ($f)"
    grep -E 'Latency|50%|99%|requests in|Requests/sec|Socket errors|Non-2xx' "$WORK/wrk-$f.txt"
  done
  p0=$(metric "$before" waitwatch_polls_total); p1=$(metric "$after" waitwatch_polls_total)
  o0=$(metric "$before" waitwatch_poll_overruns_total); o1=$(metric "$after" waitwatch_poll_overruns_total)
  s0=$(metric "$before" waitwatch_poll_duration_seconds_sum); s1=$(metric "$after" waitwatch_poll_duration_seconds_sum)
  echo "--- polls during the run: $((p1 - p0)) (expected about $((DURATION / 5))), overruns $((o1 - o0)), mean poll $(awk -v a="$s0" -v b="$s1" -v n="$((p1 - p0))" 'BEGIN { if (n > 0) printf "%.0f ms", 1000 * (b - a) / n }')"
  echo "--- sockets: $(metric "$after" 'waitwatch_sockets{netns="'"$NS"'",state="CLOSE_WAIT"}') CLOSE_WAIT, $(metric "$after" 'waitwatch_sockets{netns="'"$NS"'",state="ESTABLISHED"}') ESTABLISHED; daemon RSS $(rss_kb) kB"
  ;;

slow)
  farm --close-wait 1000 --established 1000 --holders 2
  start_daemon '{"poll_interval": "1s"}'
  cat >"$WORK/slow.py" <<'EOF'
import socket, statistics, sys, time
port, duration, sources = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].split(",")
slow = []
for i in range(1000):
    s = socket.socket()
    s.bind((sources[i % len(sources)], 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    slow.append(s)
time.sleep(0.2)
def trickle(data):
    for s in slow:
        try:
            s.send(data)
        except OSError:
            pass
trickle(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
extra = []
for payload in (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n"):
    e = socket.socket(); e.bind(("127.0.0.200", 0)); e.setblocking(False)
    try:
        e.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    time.sleep(0.05)
    try:
        e.send(payload)
    except OSError:
        pass
    extra.append(e)
times, failures = [], 0
start = last = time.time()
while time.time() - start < duration:
    if time.time() - last >= 5:
        trickle(b"X: y\r\n"); last = time.time()
    t = time.time()
    try:
        c = socket.socket(); c.bind(("127.0.0.100", 0)); c.settimeout(5)
        c.connect(("127.0.0.1", port))
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
        c.close()
        if not data.startswith(b"HTTP/1.1 200"):
            failures += 1
        times.append((time.time() - t) * 1000)
    except OSError:
        failures += 1
    time.sleep(0.5)
times.sort()
q = lambda p: times[min(len(times) - 1, int(p * len(times)))] if times else float("nan")
print(f"sources {','.join(sources)}: {len(times)} scrapes, {failures} failed, "
      f"p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {max(times) if times else 0:.1f} ms")
EOF
  ulimit -n 8192
  echo "--- one address, 1,000 slow-loris connections, a 1 MiB header, a garbage line (${DURATION}s)"
  in_ns python3 "$WORK/slow.py" "$PORT" "$DURATION" 127.0.0.2
  echo "    daemon RSS $(rss_kb) kB, fds $(ls /proc/$DAEMON/fd | wc -l)"
  echo "--- four addresses, 1,000 slow-loris connections (${DURATION}s)"
  in_ns python3 "$WORK/slow.py" "$PORT" "$DURATION" 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5
  echo "    daemon RSS $(rss_kb) kB, fds $(ls /proc/$DAEMON/fd | wc -l)"
  ;;

cardinality)
  echo "starting 10,000 processes with one CLOSE_WAIT socket each..."
  for i in $(seq 0 9); do
    farm --holders 1000 --close-wait 1000 --listen-port $((8000 + i)) \
      --source-ports "$((20000 + i * 4000))-$((23999 + i * 4000))"
  done
  rules='[{"name": "cw", "type": "close_wait", "min_sockets": 1, "min_age": "0s",
            "for": "0s", "clear_for": "0s"}]'
  [ "${NO_RULES:-}" = 1 ] && rules='[]'  # to tell the alerts' memory from attribution's
  start_daemon '{"poll_interval": "5s", "metrics": {"include_pid": true, "max_groups": 50},
    "rules": '"$rules"'}'
  sleep 15
  rss_polls=$(rss_kb)
  t0=$(date +%s.%N)
  text=$(metrics)
  t1=$(date +%s.%N)
  sleep 20
  text2=$(metrics)
  rss_metrics=$(rss_kb)
  echo "--- processes with sockets: $(in_ns curl -sS "http://127.0.0.1:$PORT/api/v1/snapshot" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["processes"]))')"
  echo "--- daemon RSS after the first polls $rss_polls kB, after scrapes $rss_metrics kB, after /api/v1/snapshot $(rss_kb) kB"
  echo "--- series in /metrics: $(grep -vc '^#' <<<"$text2"), of them waitwatch_process_sockets: $(grep -c '^waitwatch_process_sockets{' <<<"$text2"), waitwatch_alert_firing: $(grep -c '^waitwatch_alert_firing{' <<<"$text2")"
  grep '^waitwatch_series_folded' <<<"$text2" || true
  echo "--- /metrics: $(wc -c <<<"$text2") bytes, scrape $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f ms", 1000 * (b - a) }')"
  echo "--- daemon RSS $(rss_kb) kB; polls $(metric "$text2" waitwatch_polls_total), overruns $(metric "$text2" waitwatch_poll_overruns_total), poll time sum $(metric "$text2" waitwatch_poll_duration_seconds_sum) s"
  ;;
esac
kill -TERM "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null && echo "waitwatchd stopped cleanly" || true
