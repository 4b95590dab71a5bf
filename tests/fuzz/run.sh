#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs one libFuzzer target for a chosen time with the options it wants (see README.md).
#   tests/fuzz/run.sh BUILD_DIR TARGET SECONDS [SCRATCH_DIR]
# TARGET: netlink, tcp_walk, kernel_counters, proc, core_text, config, http, api, state or containers. New
# inputs go to
# SCRATCH_DIR (default /tmp/waitwatch-fuzz-TARGET); the tree's corpus is only read. Prints the
# final statistics (stat::number_of_executed_units is the number of executions); exits non-zero
# with the input in SCRATCH_DIR/crash-* when the fuzzer finds something.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,7p' "$0" >&2; exit 2; }
BUILD="$1"; TARGET="$2"; SECONDS_="$3"
HERE="$(cd "$(dirname "$0")" && pwd)"
SCRATCH="${4:-/tmp/waitwatch-fuzz-$TARGET}"
BIN="$BUILD/tests/fuzz/fuzz_$TARGET"
[ -x "$BIN" ] || { echo "run.sh: $BIN not built (clang, -DWAITWATCH_FUZZ=ON)" >&2; exit 2; }
OPTS=(-max_total_time="$SECONDS_" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1)
case "$TARGET" in
  netlink) OPTS+=(-max_len=4096) ;;
  tcp_walk) OPTS+=(-max_len=2048) ;;
  kernel_counters) OPTS+=(-max_len=8192) ;;
  proc) OPTS+=(-max_len=8192) ;;
  core_text) OPTS+=(-max_len=512) ;;
  config) OPTS+=(-max_len=8192 -dict="$HERE/dict/config.dict") ;;
  http) OPTS+=(-max_len=8192 -dict="$HERE/dict/http.dict") ;;
  api) OPTS+=(-max_len=16384 -dict="$HERE/dict/config.dict") ;;
  state) OPTS+=(-max_len=16384) ;;
  containers) OPTS+=(-max_len=8192 -dict="$HERE/dict/config.dict") ;;
  *) echo "run.sh: unknown target '$TARGET'" >&2; exit 2 ;;
esac
mkdir -p "$SCRATCH"
exec "$BIN" "${OPTS[@]}" -artifact_prefix="$SCRATCH/" "$SCRATCH" "$HERE/corpus/$TARGET"
