#!/usr/bin/env bash
# tunless against ../shared/anchor-go (wireguard-go + gVisor + SOCKS5: the architecture of
# wireproxy and tailscaled's userspace mode), same machine, same peer, same run.
#
#   sudo bench/compare_anchor.sh [BUILD_DIR]      (BYTES=N to change the transfer size)
#
# One stock wireguard-go peer lives in a network namespace and serves anchor-go's benchsrv on
# its tunnel address. Both proxies are its peers (100.64.0.1 = tunless, 100.64.0.3 = anchor).
# Each measurement starts a fresh proxy process. Prints a table and the ratios.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build}
TB_BIN=$BUILD/tunless
BYTES=${BYTES:-$((512 * 1024 * 1024))}
ANCHOR_SRC=${ANCHOR_SRC:-$SRC/../shared/anchor-go}
ANCHOR=$BUILD/anchor-go

. "$SRC/tests/support/testbed.sh"
tb_init tlbench

# anchor-go's tree is read-only: build a copy beside our build.
if [ ! -x "$ANCHOR/bin/wgsocks-go" ]; then
  rm -rf "$ANCHOR" && cp -r "$ANCHOR_SRC" "$ANCHOR" && chmod -R u+w "$ANCHOR"
  (cd "$ANCHOR" && bash build.sh >/dev/null)
fi

PEER_PORT=51871 T_PORT=51872 A_PORT=51873
T_PROXY=127.0.0.1:18281 A_PROXY=127.0.0.1:18282
tb_peer peer "$PEER_PORT" 100.64.0.2/10
t_key=$("$TB_BIN" genkey); t_pub=$(echo "$t_key" | "$TB_BIN" pubkey)
a_key=$(wg genkey); a_pub=$(echo "$a_key" | wg pubkey)
tb_peer_allow peer "$t_pub" 100.64.0.1/32 "127.0.0.1:$T_PORT"
tb_peer_allow peer "$a_pub" 100.64.0.3/32 "127.0.0.1:$A_PORT"
tb_bg "$TB_NS_peer" "$ANCHOR/bin/benchsrv" -http 100.64.0.2:8000 -source '' -sink ''
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000
# The stock peer gets the same 7 MiB socket buffers as both proxies, or nothing compares.
"$ANCHOR/bin/sockbuf" -pid "$TB_WGPID_peer" >/dev/null

cat > "$TB_DIR/t.conf" <<CONF
[Interface]
PrivateKey = $t_key
Address = 100.64.0.1/32
ListenPort = $T_PORT
[Peer]
PublicKey = $TB_PUB_peer
Endpoint = 127.0.0.1:$PEER_PORT
AllowedIPs = 100.64.0.0/10
CONF
echo "$a_key" > "$TB_DIR/a.key"

start_tunless() {
  "$TB_BIN" up --config "$TB_DIR/t.conf" --proxy "$T_PROXY" --state-dir "$TB_DIR/state" \
    --log-level warn > "$TB_DIR/tunless.log" 2>&1 &
  PROXY_PID=$!; TB_PIDS+=("$PROXY_PID"); PROXY_ADDR=$T_PROXY
  tb_wait_tcp - 127.0.0.1 "${T_PROXY##*:}"
}
start_anchor() {
  "$ANCHOR/bin/wgsocks-go" -private-key-file "$TB_DIR/a.key" -address 100.64.0.3 \
    -peer-public-key "$TB_PUB_peer" -peer-endpoint "127.0.0.1:$PEER_PORT" -listen-port "$A_PORT" \
    -allowed-ips 100.64.0.0/10 -listen "$A_PROXY" > "$TB_DIR/anchor.log" 2>&1 &
  PROXY_PID=$!; TB_PIDS+=("$PROXY_PID"); PROXY_ADDR=$A_PROXY
  tb_wait_tcp - 127.0.0.1 "${A_PROXY##*:}"
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
TICKS=$(getconf CLK_TCK)

# measure NAME START_FN CURL_ARGS...: Mbit/s, proxy CPU s/GiB, RSS after start and peak (MB)
measure() {
  local name=$1 start=$2; shift 2
  $start
  # Warm-up: the handshake and first connection are not part of the transfer.
  curl -s -o /dev/null -x "socks5://$PROXY_ADDR" "http://100.64.0.2:8000/zero?n=1000" || true
  local rss0 c0 c1 t0 t1
  rss0=$(rss_kb "$PROXY_PID"); c0=$(cpu_ticks "$PROXY_PID"); t0=$(date +%s.%N)
  "$@" > /dev/null 2>&1
  t1=$(date +%s.%N); c1=$(cpu_ticks "$PROXY_PID")
  local hwm; hwm=$(hwm_kb "$PROXY_PID")
  stop_proxy
  awk -v n="$name" -v b="$BYTES" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v tk="$TICKS" \
      -v r0="$rss0" -v h="$hwm" 'BEGIN {
        printf "%-34s %8.0f Mbit/s  %6.2f CPU s/GiB  RSS %5.1f -> %5.1f MB\n",
          n, b * 8 / (t1 - t0) / 1e6, (c / tk) / (b / 1073741824), r0 / 1024, h / 1024 }' \
    | tee -a "$TB_DIR/results"
}

down() { curl -sS -o /dev/null --max-time 300 -x "socks5://$PROXY_ADDR" "http://100.64.0.2:8000/zero?n=$BYTES"; }
down_connect() { curl -sS -o /dev/null --max-time 300 -p -x "http://$PROXY_ADDR" "http://100.64.0.2:8000/zero?n=$BYTES"; }
up() { head -c "$BYTES" /dev/zero | curl -sS -o /dev/null --max-time 300 -T - -x "socks5://$PROXY_ADDR" "http://100.64.0.2:8000/sink"; }

echo "bytes per transfer: $BYTES"
for round in $(seq "${ROUNDS:-3}"); do
  measure "tunless download socks5 #$round" start_tunless down
  measure "anchor  download socks5 #$round" start_anchor down
  measure "tunless upload   socks5 #$round" start_tunless up
  measure "anchor  upload   socks5 #$round" start_anchor up
  measure "tunless download http-CONNECT #$round" start_tunless down_connect
done

rr() { # 1000 sequential CONNECT + GET /small + close
  $1
  "$ANCHOR/bin/sockbench" rr -socks "$PROXY_ADDR" -target 100.64.0.2:8000 -n 1000 2>&1 | tail -2 \
    | sed "s/^/$2 rr: /" | tee -a "$TB_DIR/results"
  stop_proxy
}
rr start_tunless tunless
rr start_anchor "anchor "

idle() { # RSS with 1000 idle tunnels
  $1
  "$ANCHOR/bin/sockbench" idle -socks "$PROXY_ADDR" -target 100.64.0.2:8000 -n 1000 -hold 5s \
    > /dev/null 2>&1 &
  local bp=$!
  sleep 4
  echo "$2 RSS with 1000 idle tunnels: $(( $(rss_kb "$PROXY_PID") / 1024 )) MB" | tee -a "$TB_DIR/results"
  wait "$bp" || true
  stop_proxy
}
idle start_tunless tunless
idle start_anchor "anchor "

echo
echo "== medians of 3 and ratios (tunless / anchor)"
python3 - "$TB_DIR/results" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+)\s+(\w+)\s+(\S+) #\d+\s+([\d.]+) Mbit/s\s+([\d.]+) CPU", line)
    if m:
        runs.setdefault(f"{m[1]} {m[2]} {m[3]}", []).append((float(m[4]), float(m[5])))
med = {k: (statistics.median(x for x, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
for k, (mbit, cpu) in sorted(med.items()):
    print(f"{k:34} {mbit:8.0f} Mbit/s  {cpu:6.2f} CPU s/GiB")
for k, (mbit, cpu) in sorted(med.items()):
    other = k.replace("tunless", "anchor", 1)
    if k.startswith("tunless") and other in med:
        print(f"ratio {k[8:]:26} throughput x{mbit / med[other][0]:.2f}  CPU per GiB x{cpu / med[other][1]:.2f}")
PY

echo
echo "== reference: kernel TCP between two namespaces through two wireguard-go TUNs"
SOCKBUF="$ANCHOR/bin/sockbuf" bash "$SRC/bench/kernel_reference.sh" 2>&1 | tail -1
