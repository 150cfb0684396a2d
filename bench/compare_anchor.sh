#!/usr/bin/env bash
# tunless against the Go reference (bench/goref: wireguard-go + gVisor + go-socks5, the
# architecture of wireproxy and tailscaled's userspace mode, built from Debian's packages by
# bench/goref/build.sh), same machine, same peer, same run.
#
#   sudo bench/compare_anchor.sh [BUILD_DIR]
#     BYTES=N (per transfer, default 512 MiB)  ROUNDS=3  WHO="tunless anchor"  STREAMS=8
#     RR_N=1000 (connect test)  IDLE_N=10000 (idle connections)  WAN_SECS=20 (0: no WAN row)
#     KREF=1 (the kernel reference)  RESULTS=FILE (keep the raw results there)
#     ANCHOR_SRC=DIR (run the anchor-go prototype in DIR as the reference instead)
#     ROWS="xfer rr idle wan kref" (the rows to run; e.g. ROWS=rr for the connect row alone)
#     RR_ROUNDS=1 (connect rounds, tunless and anchor interleaved; the table shows the median)
#
# "anchor" in WHO and in the results is the Go reference. One stock wireguard-go peer lives in
# a network namespace and serves the reference's httpsrv on its tunnel address. Both proxies
# are its peers (100.64.0.1 = tunless, 100.64.0.3 = the reference).
# Each measurement starts a fresh proxy process. Rows: SOCKS5 download and upload, HTTP
# CONNECT download, STREAMS parallel downloads, tunless to tunless (node A's SOCKS5 to
# httpsrv published by node B, both on this host), sequential connects (p50/p90/p99), RSS
# with IDLE_N idle connections, and bench/wan.sh's lossy long path. bench/table.py prints the
# medians, the ratios and the README's table from the results.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD_ARG=${1:-}
BYTES=${BYTES:-$((512 * 1024 * 1024))}
WHO=${WHO:-tunless anchor} STREAMS=${STREAMS:-8} RR_N=${RR_N:-1000} IDLE_N=${IDLE_N:-10000}
WAN_SECS=${WAN_SECS:-20} ROWS=${ROWS:-xfer rr idle wan kref} RR_ROUNDS=${RR_ROUNDS:-1}

. "$SRC/bench/rig.sh"
rig_init tlbench
echo "Go reference: $GOREF_WHAT"
RES=$TB_DIR/results
: > "$RES"
keep_results() { [ -z "${RESULTS:-}" ] || cp "$RES" "$RESULTS"; }

rig_ports
T_PROXY=127.0.0.1:$T_PROXY_PORT A_PROXY=127.0.0.1:$A_PROXY_PORT N_PROXY=127.0.0.1:$N_PROXY_PORT
rig_peer "$PEER_PORT" "$T_PORT"
a_key=$(wg genkey); a_pub=$(echo "$a_key" | wg pubkey)
tb_peer_allow peer "$a_pub" 100.64.0.3/32 "127.0.0.1:$A_PORT"
echo "$a_key" > "$TB_DIR/a.key"
# The tunless-to-tunless service, on the host, published by node 2.
rig_host_srv "$SRV_PORT"
rig_pair_conf "$N1_PORT" "$N2_PORT"

MAXCONN=()  # beyond the proxy's default of 1024 clients
[ "$IDLE_N" -lt 1000 ] || MAXCONN=(--max-connections $((IDLE_N + 1000)))
start_tunless() {
  "$TB_BIN" up --config "$TB_DIR/t.conf" --proxy "$T_PROXY" --state-dir "$TB_DIR/state" \
    "${MAXCONN[@]}" --log-level warn > "$TB_DIR/tunless.log" 2>&1 &
  PROXY_PID=$!; TB_PIDS+=("$PROXY_PID"); PROXY_ADDR=$T_PROXY; TARGET=100.64.0.2:8000
  tb_wait_tcp - 127.0.0.1 "${T_PROXY##*:}"
}
start_anchor() {
  "$GOREF_PROXY" -private-key-file "$TB_DIR/a.key" -address 100.64.0.3 \
    -peer-public-key "$TB_PUB_peer" -peer-endpoint "127.0.0.1:$PEER_PORT" -listen-port "$A_PORT" \
    -allowed-ips 100.64.0.0/10 -listen "$A_PROXY" > "$TB_DIR/anchor.log" 2>&1 &
  PROXY_PID=$!; TB_PIDS+=("$PROXY_PID"); PROXY_ADDR=$A_PROXY; TARGET=100.64.0.2:8000
  tb_wait_tcp - 127.0.0.1 "${A_PROXY##*:}"
}
# Node 1 (the proxy measured) and node 2 (publishing the host's httpsrv on its address).
start_pair() {
  rig_node2 "$SRV_PORT"
  rig_node1 "$N_PROXY"
  PROXY_PID=$NODE1_PID PROXY_ADDR=$N_PROXY TARGET=100.65.0.2:8000
  tb_wait_tcp - 127.0.0.1 "${N_PROXY##*:}"
}
stop_proxy() {
  local p
  for p in "$PROXY_PID" ${NODE2_PID:-}; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  NODE2_PID=
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
TICKS=$(getconf CLK_TCK)
has() { [[ " $WHO " == *" $1 "* ]]; }
row() { [[ " $ROWS " == *" $1 "* ]]; }

# measure NAME START_FN CMD...: Mbit/s, proxy CPU s/GiB, RSS after start and peak (MB); with
# a second node (start_pair) its CPU s/GiB too.
measure() {
  local name=$1 start=$2; shift 2
  $start
  rig_warm "$PROXY_ADDR" "$TARGET" 20 2
  local rss0 c0 c1 t0 t1 n0=0 n1=0
  rss0=$(rss_kb "$PROXY_PID"); c0=$(rig_ticks "$PROXY_PID"); t0=$(date +%s.%N)
  [ -z "${NODE2_PID:-}" ] || n0=$(rig_ticks "$NODE2_PID")
  "$@" > /dev/null 2>&1
  t1=$(date +%s.%N); c1=$(rig_ticks "$PROXY_PID")
  [ -z "${NODE2_PID:-}" ] || n1=$(rig_ticks "$NODE2_PID")
  local hwm; hwm=$(hwm_kb "$PROXY_PID")
  local second=${NODE2_PID:-}
  stop_proxy
  awk -v n="$name" -v b="$BYTES" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v tk="$TICKS" \
      -v r0="$rss0" -v h="$hwm" -v c2="$((n1 - n0))" -v two="$second" 'BEGIN {
        gib = b / 1073741824
        printf "%-34s %8.0f Mbit/s  %6.2f CPU s/GiB  RSS %5.1f -> %5.1f MB",
          n, b * 8 / (t1 - t0) / 1e6, (c / tk) / gib, r0 / 1024, h / 1024
        if (two != "") printf "  node2 %6.2f CPU s/GiB", (c2 / tk) / gib
        printf "\n" }' | tee -a "$RES"
}

down() { curl -sS -o /dev/null --max-time 300 -x "socks5://$PROXY_ADDR" "http://$TARGET/zero?n=$BYTES"; }
down_connect() { curl -sS -o /dev/null --max-time 300 -p -x "http://$PROXY_ADDR" "http://$TARGET/zero?n=$BYTES"; }
up() { head -c "$BYTES" /dev/zero | curl -sS -o /dev/null --max-time 300 -T - -x "socks5://$PROXY_ADDR" "http://$TARGET/sink"; }
down_parallel() { # STREAMS downloads at once, BYTES in all
  local pids=() i rc=0
  for i in $(seq "$STREAMS"); do
    curl -sS -o /dev/null --max-time 300 -x "socks5://$PROXY_ADDR" \
      "http://$TARGET/zero?n=$((BYTES / STREAMS))" & pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  return $rc
}

row xfer && echo "bytes per transfer: $BYTES"
row xfer && for round in $(seq "${ROUNDS:-3}"); do
  for who in $WHO; do
    measure "$(printf '%-7s download socks5' "$who") #$round" "start_$who" down
  done
  for who in $WHO; do
    measure "$(printf '%-7s upload   socks5' "$who") #$round" "start_$who" up
  done
  for who in $WHO; do
    measure "$(printf '%-7s download socks5-x%s' "$who" "$STREAMS") #$round" "start_$who" \
      down_parallel
  done
  if has tunless; then
    measure "tunless download http-CONNECT #$round" start_tunless down_connect
    measure "tunless download tunless-to-tunless #$round" start_pair down
  fi
done

rr() { # RR_N sequential CONNECT + GET /small + close
  $1
  "$GOREF_CLIENT" rr -socks "$PROXY_ADDR" -target "$TARGET" -n "$RR_N" 2>&1 \
    | grep '^rr ' | sed "s/^/$2 /" | tee -a "$RES"
  stop_proxy
}
# Rounds alternate between the two, so that the machine's load changes hit both alike.
for round in $(seq "$RR_ROUNDS"); do
  row rr || break
  has tunless && rr start_tunless "tunless"
  has anchor && rr start_anchor "anchor "
done

idle() { # RSS with IDLE_N idle tunnels, once all are open
  $1
  local out=$TB_DIR/idle.out
  "$GOREF_CLIENT" idle -socks "$PROXY_ADDR" -target "$TARGET" -n "$IDLE_N" -hold 600s \
    > "$out" 2>&1 &
  local bp=$! i
  for i in $(seq 600); do grep -q READY "$out" && break; sleep 0.5; done
  if grep -q READY "$out"; then
    echo "$2 RSS with $IDLE_N idle tunnels: $(( $(rss_kb "$PROXY_PID") / 1024 )) MB" | tee -a "$RES"
  else
    echo "$2 idle: not all $IDLE_N tunnels opened: $(tail -1 "$out")"
  fi
  kill "$bp" 2>/dev/null; wait "$bp" 2>/dev/null || true
  stop_proxy
}
if row idle; then
  has tunless && idle start_tunless tunless
  has anchor && idle start_anchor "anchor "
fi
keep_results

if [ "$WAN_SECS" != 0 ] && row wan; then
  echo
  echo "== the WAN row (bench/wan.sh)"
  WHO="$WHO" SECS="$WAN_SECS" ROUNDS=1 ANCHOR_SRC="${ANCHOR_SRC:-}" \
    bash "$SRC/bench/wan.sh" "$BUILD" | tee "$TB_DIR/wan.out"
  grep ' wan ' "$TB_DIR/wan.out" | grep '#' >> "$RES" || true
  keep_results
fi

echo
python3 "$SRC/bench/table.py" "$RES"

if [ "${KREF:-1}" = 1 ] && row kref; then
  echo
  echo "== reference: kernel TCP between two namespaces through two wireguard-go TUNs"
  SOCKBUF="$GOREF_SOCKBUF" bash "$SRC/bench/kernel_reference.sh" 2>&1 | tail -1
fi
