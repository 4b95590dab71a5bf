#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Soak: waitwatchd runs for a long time (default 30 minutes) against a churning population in a
# private network namespace: several churners each start a sockfarm (random CLOSE_WAIT,
# ESTABLISHED and TIME_WAIT counts over 1-4 holder processes), keep it a few seconds, stop it,
# and start the next, so processes, sockets, TIME_WAIT groups and alerts come and go all the
# time. Every minute the daemon's resident memory, open fds, series count and poll figures are
# sampled; at the end the first (after warm-up) and last samples are compared.
#
#   sudo tests/reliability/soak.sh [--build DIR] [--duration SECONDS] [--churners N]
#                                  [--out FILE.csv]
#
# Needs root (ip netns). Prints a summary; the per-minute samples go to --out (CSV). Exits 1 when
# the daemon dies or stops badly, or when from the first sample (after warm-up) to the last its
# resident memory grew by more than --max-rss-growth-kb (default 8192: a few polls' worth of
# allocator slack; a leak of a socket's bytes per poll passes it within minutes) or its open fds
# by more than --max-fd-growth (default 8: scrapes in flight).
set -euo pipefail

BUILD=build
DURATION=1800
CHURNERS=3
OUT=""
PORT=9929
MAX_RSS_GROWTH_KB=8192
MAX_FD_GROWTH=8
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --churners) CHURNERS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --max-rss-growth-kb) MAX_RSS_GROWTH_KB="$2"; shift 2 ;;
    --max-fd-growth) MAX_FD_GROWTH="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
WAITWATCHD="$BUILD/daemon/waitwatchd/waitwatchd"
SOCKFARM="$BUILD/tests/integration/sockfarm"
for b in "$WAITWATCHD" "$SOCKFARM"; do
  [ -x "$b" ] || { echo "soak.sh: $b not built (cmake --build $BUILD --target waitwatchd sockfarm)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "soak.sh: needs root (ip netns)" >&2; exit 2; }

NS="ww-soak-$$"
WORK="$(mktemp -d /tmp/waitwatch-soak.XXXXXX)"
OUT="${OUT:-$WORK/samples.csv}"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for _ in $(seq 1 20); do
    ip netns delete "$NS" 2>/dev/null && break
    sleep 0.5
  done
  rm -rf "$WORK/churn"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up

cat > "$WORK/waitwatch.json" <<'EOF'
{
  "poll_interval": "2s",
  "metrics": {"max_groups": 50},
  "alerts": {"reminder_interval": "1m"},
  "rules": [
    {"name": "cw", "type": "close_wait", "min_sockets": 5, "min_age": "0s", "for": "0s",
     "clear_for": "0s", "growth": 10, "growth_window": "10s"},
    {"name": "cw-unit", "type": "close_wait", "group_by": "unit", "min_sockets": 20,
     "min_age": "2s", "for": "2s", "clear_for": "2s"},
    {"name": "tw", "type": "time_wait", "min_sockets": 50, "rate_per_second": 5,
     "port_usage_ratio": 0.01, "for": "0s", "clear_for": "5s", "time_wait_overflow": true}
  ]
}
EOF
ip netns exec "$NS" "$WAITWATCHD" --config "$WORK/waitwatch.json" --listen "127.0.0.1:$PORT" \
  >"$WORK/waitwatchd.out" 2>"$WORK/waitwatchd.err" &
DAEMON=$!
PIDS+=("$DAEMON")

# One churner: sockfarms one after another, each kept 1-5 s. Source ports are disjoint per
# churner, and the TIME_WAIT destination port cycles over 40 values, so that no 4-tuple is
# reused while an older TIME_WAIT socket of it lives (60 s).
churn() {
  local i=$1 n=0
  mkdir -p "$WORK/churn"
  while :; do
    local cw=$((RANDOM % 60)) est=$((2 * (RANDOM % 20))) tw=$((RANDOM % 40)) holders=$((1 + RANDOM % 4))
    local port=$((10000 + i * 100 + n % 40))
    local lo=$((20000 + i * 10000)) hi=$((29999 + i * 10000))
    local fifo="$WORK/churn/$i.in"
    rm -f "$fifo"; mkfifo "$fifo"
    ip netns exec "$NS" "$SOCKFARM" --listen-port "$port" --close-wait "$cw" --established "$est" \
      --time-wait "$tw" --holders "$holders" --source-ports "$lo-$hi" <"$fifo" \
      >"$WORK/churn/$i.out" 2>>"$WORK/churn/$i.err" &
    local farm=$!
    exec {fd}>"$fifo"
    sleep "$((1 + RANDOM % 5))"
    exec {fd}>&-  # stdin EOF: the farm aborts its sockets and exits
    wait "$farm" || echo "churner $i: sockfarm exit $?" >>"$WORK/churn/$i.err"
    n=$((n + 1))
  done
}
for i in $(seq 0 $((CHURNERS - 1))); do
  churn "$i" &
  PIDS+=("$!")
done

metric() {  # metric NAME_PREFIX: the value of the first sample line starting with it
  awk -v p="$1" 'index($0, p) == 1 { print $NF; exit }' "$WORK/metrics.txt"
}
sample() {
  ip netns exec "$NS" curl -sS --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" || true
  local rss fds series
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON/status")
  fds=$(ls "/proc/$DAEMON/fd" | wc -l)
  series=$(grep -vc '^#' "$WORK/metrics.txt" || true)
  echo "$1,$rss,$fds,$series,$(metric waitwatch_polls_total),$(metric waitwatch_poll_overruns_total),$(metric 'waitwatch_poll_duration_seconds_sum'),$(metric 'waitwatch_sockets{netns="'"$NS"'",state="CLOSE_WAIT"}'),$(metric 'waitwatch_sockets{netns="'"$NS"'",state="TIME_WAIT"}')" >>"$OUT"
}
echo "elapsed_s,rss_kb,fds,series,polls,overruns,poll_seconds_sum,close_wait,time_wait" >"$OUT"
sleep 5
START=$(date +%s)
while :; do
  now=$(date +%s)
  elapsed=$((now - START))
  kill -0 "$DAEMON" 2>/dev/null || { echo "soak.sh: waitwatchd died:" >&2; tail -5 "$WORK/waitwatchd.err" >&2; exit 1; }
  sample "$elapsed"
  [ "$elapsed" -ge "$DURATION" ] && break
  sleep $((60 - (elapsed % 60)))
done

echo "soak: $DURATION s, $CHURNERS churners, samples in $OUT"
column -s, -t "$OUT"
awk -F, 'NR == 2 { warm = $0 } NR > 1 { last = $0 }
  END {
    split(warm, w, ","); split(last, l, ",");
    printf "start (after %d s): RSS %d kB, %d fds; end (%d s): RSS %d kB, %d fds\n", w[1], w[2], w[3], l[1], l[2], l[3];
    printf "polls %d, overruns %d, mean poll %.1f ms\n", l[5], l[6], (l[5] > 0 ? 1000 * l[7] / l[5] : 0)
  }' "$OUT"
echo "sockfarm runs: $(cat "$WORK"/churn/*.err 2>/dev/null | grep -c 'exit' || true) failed"
status=0
read -r rss_growth fd_growth < <(awk -F, 'NR == 2 { r = $2; f = $3 } NR > 1 { lr = $2; lf = $3 }
  END { print lr - r, lf - f }' "$OUT")
if [ "$rss_growth" -gt "$MAX_RSS_GROWTH_KB" ]; then
  echo "soak.sh: FAIL: resident memory grew by $rss_growth kB (bound $MAX_RSS_GROWTH_KB kB)" >&2
  status=1
fi
if [ "$fd_growth" -gt "$MAX_FD_GROWTH" ]; then
  echo "soak.sh: FAIL: open fds grew by $fd_growth (bound $MAX_FD_GROWTH)" >&2
  status=1
fi
kill -TERM "$DAEMON"
if wait "$DAEMON"; then
  echo "waitwatchd stopped cleanly"
else
  rc=$?
  echo "soak.sh: FAIL: waitwatchd exit status $rc" >&2
  status=1
fi
exit "$status"
