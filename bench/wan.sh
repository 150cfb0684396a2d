#!/usr/bin/env bash
# The WAN row: tunless against the Go reference (bench/goref, or ANCHOR_SRC=DIR's anchor-go, as
# in compare_anchor.sh) on a lossy, long path, upload and download through SOCKS5, same peer,
# same run.
#
#   sudo bench/wan.sh [BUILD_DIR]    (DELAY_MS=25 each way, LOSS=0.005 each way, SECS=20,
#                                     SEED=1, ROUNDS=1, WHO="tunless anchor", DIRS="up down",
#                                     ANCHOR_SRC=DIR: anchor-go as the reference)
#
# The path: each proxy's WireGuard packets go through its own tests/tools/lossy_relay (a
# userspace netem: fixed delay and seeded random loss each way) to one stock wireguard-go peer
# in a namespace, which runs tests/tools/socks_bulk.py as the far end. Goodput is measured by
# whoever receives (the peer's sink for uploads, the client for downloads).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build}
TB_BIN=$BUILD/tunless
RELAY=$BUILD/tests/lossy_relay
BULK=$SRC/tests/tools/socks_bulk.py
DELAY_MS=${DELAY_MS:-25} LOSS=${LOSS:-0.005} SECS=${SECS:-20} SEED=${SEED:-1}

. "$SRC/bench/goref/select.sh"
. "$SRC/tests/support/testbed.sh"
tb_init tlwan

PEER_PORT=29881 T_PORT=29882 A_PORT=29883
T_RELAY_A=29884 T_RELAY_B=29885 A_RELAY_A=29886 A_RELAY_B=29887
T_PROXY=127.0.0.1:18291 A_PROXY=127.0.0.1:18292
tb_peer peer "$PEER_PORT" 100.64.0.2/10
t_key=$("$TB_BIN" genkey); t_pub=$(echo "$t_key" | "$TB_BIN" pubkey)
a_key=$(wg genkey); a_pub=$(echo "$a_key" | wg pubkey)
tb_peer_allow peer "$t_pub" 100.64.0.1/32 "127.0.0.1:$T_RELAY_B"
tb_peer_allow peer "$a_pub" 100.64.0.3/32 "127.0.0.1:$A_RELAY_B"
tb_bg "$TB_NS_peer" python3 "$BULK" serve 100.64.0.2 9000
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 9000
"$GOREF_SOCKBUF" -pid "$TB_WGPID_peer" >/dev/null

relay() { # A_LISTEN A_PEER B_LISTEN
  tb_bg - "$RELAY" --a-listen "$1" --a-peer "$2" --b-listen "$3" --b-peer "$PEER_PORT" \
    --delay-ms "$DELAY_MS" --loss "$LOSS" --seed "$SEED"
}
relay "$T_RELAY_A" "$T_PORT" "$T_RELAY_B" > "$TB_DIR/relay-t.log"
relay "$A_RELAY_A" "$A_PORT" "$A_RELAY_B" > "$TB_DIR/relay-a.log"

tb_tunless_conf "$TB_DIR/t.conf" "$t_key" 100.64.0.1/32 "$T_PORT" "$TB_PUB_peer" \
  "127.0.0.1:$T_RELAY_A" 100.64.0.0/10
echo "$a_key" > "$TB_DIR/a.key"

start_tunless() {
  "$TB_BIN" up --config "$TB_DIR/t.conf" --proxy "$T_PROXY" --state-dir "$TB_DIR/state" \
    --log-level warn > "$TB_DIR/tunless.log" 2>&1 &
  PROXY_PID=$!; TB_PIDS+=("$PROXY_PID"); PROXY_ADDR=$T_PROXY
  tb_wait_tcp - 127.0.0.1 "${T_PROXY##*:}"
}
start_anchor() {
  "$GOREF_PROXY" -private-key-file "$TB_DIR/a.key" -address 100.64.0.3 \
    -peer-public-key "$TB_PUB_peer" -peer-endpoint "127.0.0.1:$A_RELAY_A" -listen-port "$A_PORT" \
    -allowed-ips 100.64.0.0/10 -listen "$A_PROXY" > "$TB_DIR/anchor.log" 2>&1 &
  PROXY_PID=$!; TB_PIDS+=("$PROXY_PID"); PROXY_ADDR=$A_PROXY
  tb_wait_tcp - 127.0.0.1 "${A_PROXY##*:}"
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; }

# measure NAME START_FN up|down: goodput over SECS seconds, as the receiver saw it
measure() {
  local name=$1 start=$2 dir=$3 out
  $start
  python3 "$BULK" down "$PROXY_ADDR" 100.64.0.2 9000 --bytes 1000 > /dev/null  # handshake
  out=$(python3 "$BULK" "$dir" "$PROXY_ADDR" 100.64.0.2 9000 --secs "$SECS")
  stop_proxy
  awk -v n="$name" -v o="$out" 'BEGIN {
      split(o, f, /[ =]/); b = f[2]; s = f[6]
      printf "%-30s %8.1f Mbit/s  (%d bytes in %.1f s)\n", n, b * 8 / s / 1e6, b, s }' \
    | tee -a "$TB_DIR/results"
}

echo "path: ${DELAY_MS} ms each way, loss ${LOSS} each way, seed ${SEED}, ${SECS} s per transfer"
for round in $(seq "${ROUNDS:-1}"); do
  for dir in ${DIRS:-up down}; do
    for who in ${WHO:-tunless anchor}; do
      [ "$dir" = up ] && label=upload || label=download
      measure "$(printf '%-7s wan %-8s #%s' "$who" "$label" "$round")" "start_$who" "$dir"
    done
  done
done
python3 - "$TB_DIR/results" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+)\s+wan (\w+)\s+#\d+\s+([\d.]+) Mbit/s", line)
    if m:
        runs.setdefault((m[1], m[2]), []).append(float(m[3]))
for d in ("upload", "download"):
    t, a = runs.get(("tunless", d)), runs.get(("anchor", d))
    if t and a:
        mt, ma = statistics.median(t), statistics.median(a)
        print(f"wan {d:8} tunless {mt:6.1f} Mbit/s  anchor {ma:6.1f} Mbit/s  x{mt / ma:.2f}")
PY
