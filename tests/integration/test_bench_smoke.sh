#!/usr/bin/env bash
# The benchmark cannot rot: bench/compare_anchor.sh runs every row (tunless and the Go reference
# that bench/goref builds, the WAN row through bench/wan.sh) with a few MB each, and
# bench/table.py --check finds a number in each; bench/rr_timeline.sh finds every step of a
# connection in its capture, for both proxies. No timing is asserted. Root only; exit 77 when
# the Go reference's Debian packages are missing and cannot be installed.
set -euo pipefail
SRC=${TB_SRC:?}
BUILD=$(dirname "${TB_BIN:?}")
[ "$(id -u)" = 0 ] || { echo "skip: needs root for network namespaces"; exit 77; }
for t in curl python3 tcpdump; do
  command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
rc=0
bash "$SRC/bench/goref/build.sh" "$BUILD/goref/bin" || rc=$?
[ "$rc" != 77 ] || { echo "skip: the Go reference's packages cannot be installed"; exit 77; }
[ "$rc" = 0 ] || { echo "FAIL: bench/goref/build.sh exited $rc"; exit 1; }
[ -x "$BUILD/tests/lossy_relay" ] || { echo "skip: lossy_relay not built"; exit 77; }

out=$(mktemp -d /tmp/tunless-benchsmoke-XXXXXX)
trap 'rm -rf "$out"' EXIT
BYTES=$((4 * 1024 * 1024)) ROUNDS=1 STREAMS=8 RR_N=20 IDLE_N=200 WAN_SECS=2 KREF=0 \
  RESULTS="$out/results" ANCHOR_SRC= \
  bash "$SRC/bench/compare_anchor.sh" "$BUILD" > "$out/run.log" 2>&1 || {
  echo "FAIL: compare_anchor.sh exited $?"; tail -n 60 "$out/run.log"; exit 1; }
cat "$out/results"
python3 "$SRC/bench/table.py" --check "$out/results" || {
  echo "FAIL: a row has no number"; tail -n 60 "$out/run.log"; exit 1; }
python3 "$SRC/bench/table.py" "$out/results" | tail -n 14

# 80 connections: rr_timeline.py skips the first 50 as warm-up and fails when none is left.
RR_N=80 bash "$SRC/bench/rr_timeline.sh" "$BUILD" > "$out/timeline.log" 2>&1 || {
  echo "FAIL: rr_timeline.sh exited $?"; tail -n 40 "$out/timeline.log"; exit 1; }
grep -c 'client_fin' "$out/timeline.log" | grep -qx 2 || {
  echo "FAIL: rr_timeline.sh lacks a proxy's steps"; cat "$out/timeline.log"; exit 1; }
tail -n 32 "$out/timeline.log"
