#!/usr/bin/env bash
# The benchmark cannot rot: bench/compare_anchor.sh runs every row (tunless and anchor-go, the
# WAN row through bench/wan.sh) with a few MB each, and bench/table.py --check finds a number
# in each. No timing is asserted. Root only, and anchor-go's source must be there
# (../shared/anchor-go beside the tree); exit 77 otherwise.
set -euo pipefail
SRC=${TB_SRC:?}
BUILD=$(dirname "${TB_BIN:?}")
[ "$(id -u)" = 0 ] || { echo "skip: needs root for network namespaces"; exit 77; }
ANCHOR_SRC=$SRC/../shared/anchor-go
[ -d "$ANCHOR_SRC" ] || ANCHOR_SRC=$SRC/../../shared/anchor-go
[ -d "$ANCHOR_SRC" ] || [ -x "$BUILD/anchor-go/bin/wgsocks-go" ] || {
  echo "skip: no anchor-go source beside the tree"; exit 77; }
for t in curl python3 go; do
  command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
[ -x "$BUILD/tests/lossy_relay" ] || { echo "skip: lossy_relay not built"; exit 77; }

out=$(mktemp -d /tmp/tunless-benchsmoke-XXXXXX)
trap 'rm -rf "$out"' EXIT
BYTES=$((4 * 1024 * 1024)) ROUNDS=1 STREAMS=8 RR_N=20 IDLE_N=200 WAN_SECS=2 KREF=0 \
  RESULTS="$out/results" ANCHOR_SRC="$ANCHOR_SRC" \
  bash "$SRC/bench/compare_anchor.sh" "$BUILD" > "$out/run.log" 2>&1 || {
  echo "FAIL: compare_anchor.sh exited $?"; tail -n 60 "$out/run.log"; exit 1; }
cat "$out/results"
python3 "$SRC/bench/table.py" --check "$out/results" || {
  echo "FAIL: a row has no number"; tail -n 60 "$out/run.log"; exit 1; }
python3 "$SRC/bench/table.py" "$out/results" | tail -n 14
