#!/usr/bin/env bash
# UDP through the node: SOCKS5 UDP ASSOCIATE and --forward udp: to an echo server in a stock
# wireguard-go peer's namespace, next to the same client against a loopback echo server (what
# the Python client itself can do). The Go reference (bench/goref) has no UDP ASSOCIATE, so
# there is no ratio.
#
#   sudo bench/udp_socks.sh [BUILD_DIR]      (SECONDS_EACH=N, SIZE=B)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build}
TB_BIN=$BUILD/tunless
SECS=${SECONDS_EACH:-5} SIZE=${SIZE:-1200}
LOAD=(python3 "$SRC/bench/udp_load.py" --seconds "$SECS" --size "$SIZE")
ECHO=(python3 "$SRC/tests/tools/udp_probe.py" serve)

. "$SRC/tests/support/testbed.sh"
tb_init tlubench
PEER_PORT=29891 NODE_PORT=29892 PROXY=127.0.0.1:18291 FWD=18292 LOCAL_ECHO=18293
tb_peer peer "$PEER_PORT" 100.64.0.2/10
key=$("$TB_BIN" genkey); pub=$(echo "$key" | "$TB_BIN" pubkey)
tb_peer_allow peer "$pub" 100.64.0.1/32 "127.0.0.1:$NODE_PORT"
tb_bg "$TB_NS_peer" "${ECHO[@]}" 100.64.0.2 7777
tb_bg - "${ECHO[@]}" 127.0.0.1 "$LOCAL_ECHO"
cat > "$TB_DIR/wg0.conf" <<CONF
[Interface]
PrivateKey = $key
Address = 100.64.0.1/32
ListenPort = $NODE_PORT
[Peer]
PublicKey = $TB_PUB_peer
Endpoint = 127.0.0.1:$PEER_PORT
AllowedIPs = 100.64.0.2/32
CONF
"$TB_BIN" up --config "$TB_DIR/wg0.conf" --proxy "$PROXY" --forward "udp:127.0.0.1:$FWD=100.64.0.2:7777" \
  --state-dir "$TB_DIR/state" --log-level warn > "$TB_DIR/node.log" 2>&1 &
node=$!; TB_PIDS+=("$node")
tb_wait_tcp - 127.0.0.1 "${PROXY##*:}"
sleep 1

echo "== client ceiling: loopback echo, no tunnel"
"${LOAD[@]}" --target "127.0.0.1:$LOCAL_ECHO"
echo "== SOCKS5 UDP ASSOCIATE -> tunnel -> peer's echo"
"${LOAD[@]}" --target 100.64.0.2:7777 --socks "$PROXY"
echo "== --forward udp: -> tunnel -> peer's echo"
"${LOAD[@]}" --target "127.0.0.1:$FWD"
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
echo "== node after both runs: RSS $(ps -o rss= -p "$node") KiB, CPU $(cpu "$node") s; peer's wireguard-go CPU $(cpu "$TB_WGPID_peer") s"
