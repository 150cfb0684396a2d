#!/usr/bin/env bash
# One row of bench/compare_anchor.sh's set-up, for a profile of the packet path: the node's
# instructions per GiB under callgrind (wall clock is noise on a shared machine, instruction
# counts are not), or a perf profile, or its CPU seconds.
#
#   sudo bench/profile_path.sh [BUILD_DIR]
#     ROW=down (SOCKS5 download from a wireguard-go peer) | up (upload) | t2t (node 1's SOCKS5
#         to benchsrv published by node 2)
#     TOOL=callgrind (default) | perf (perf record -e cpu-clock) | none (CPU s/GiB)
#     WHO=n1 (default) | n2 | both: which node of the t2t row runs under TOOL
#     BYTES=N (default 64 MiB; under callgrind the node runs some 50 times slower)
#     OUT=DIR (keep callgrind.out / perf.data there, default: a temporary directory)
#
# It prints one line per profiled node: "ROW node=N bytes=B Ir=I Ir_per_GiB=J" (callgrind,
# counted from the first byte to the last: the handshake and the warm-up are zeroed), or
# "cpu_s_per_GiB=" (none), then the top of the profile. The HTTP server and sockbuf are the Go
# reference's (bench/goref/select.sh builds them; ANCHOR_SRC=DIR as in compare_anchor.sh).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD_ARG=${1:-}
ROW=${ROW:-down} TOOL=${TOOL:-callgrind} WHO=${WHO:-n1}
BYTES=${BYTES:-$((64 * 1024 * 1024))}
. "$SRC/bench/rig.sh"
rig_init tlprof
OUT=${OUT:-$TB_DIR}
mkdir -p "$OUT"

# Ports apart from compare_anchor.sh's, so both can run on one machine.
PEER_PORT=29971 T_PORT=29972 N1_PORT=29974 N2_PORT=29975
T_PROXY=127.0.0.1:18381 N_PROXY=127.0.0.1:18383 SRV_PORT=18384

# wrap NODE CMD...: CMD under TOOL when NODE is one WHO names (exec: $! is the node's pid).
wrap() {
  local node=$1; shift
  if [ "$TOOL" = callgrind ] && { [ "$WHO" = both ] || [ "$WHO" = "$node" ]; }; then
    exec valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$ROW.$node" "$@"
  else
    exec "$@"
  fi
}

declare -A PID=()
if [ "$ROW" = t2t ]; then
  rig_host_srv "$SRV_PORT"
  rig_pair_conf "$N1_PORT" "$N2_PORT"
  rig_node2 "$SRV_PORT" wrap n2
  rig_node1 "$N_PROXY" wrap n1
  PID[n2]=$NODE2_PID PID[n1]=$NODE1_PID
  PROXY=$N_PROXY TARGET=100.65.0.2:8000
else
  rig_peer "$PEER_PORT" "$T_PORT"
  WHO=n1
  wrap n1 "$TB_BIN" up --config "$TB_DIR/t.conf" --proxy "$T_PROXY" --state-dir "$TB_DIR/state" \
    --log-level warn > "$TB_DIR/node1.log" 2>&1 &
  PID[n1]=$!; TB_PIDS+=("$!")
  PROXY=$T_PROXY TARGET=100.64.0.2:8000
fi
for i in $(seq 300); do (exec 3<>"/dev/tcp/${PROXY%:*}/${PROXY##*:}") 2>/dev/null && break; sleep 0.2; done
rig_warm "$PROXY" "$TARGET" 60 10

nodes=(n1)
[ "$ROW" != t2t ] || case $WHO in both) nodes=(n1 n2) ;; n2) nodes=(n2) ;; esac
declare -A C0=()
perf_pids=()
for n in "${nodes[@]}"; do
  case $TOOL in
    callgrind) callgrind_control -z "${PID[$n]}" >/dev/null ;;
    perf) perf record -e cpu-clock -F 2000 -p "${PID[$n]}" -o "$OUT/perf.$ROW.$n" \
            >/dev/null 2>&1 & perf_pids+=($!) ;;
  esac
  C0[$n]=$(rig_ticks "${PID[$n]}")
done
if [ "$ROW" = up ]; then
  head -c "$BYTES" /dev/zero | curl -sS -o /dev/null --max-time 900 -T - \
    -x "socks5://$PROXY" "http://$TARGET/sink"
else
  curl -sS -o /dev/null --max-time 900 -x "socks5://$PROXY" "http://$TARGET/zero?n=$BYTES"
fi
for n in "${nodes[@]}"; do
  c1=$(rig_ticks "${PID[$n]}")
  awk -v r="$ROW" -v n="$n" -v b="$BYTES" -v c="$((c1 - C0[$n]))" -v tk="$(getconf CLK_TCK)" \
    'BEGIN { printf "%s node=%s bytes=%d cpu_s_per_GiB=%.2f (under %s)\n", r, n, b,
             c / tk / (b / 1073741824), ENVIRON["TOOL"] }'
  [ "$TOOL" != callgrind ] || callgrind_control -d "${PID[$n]}" >/dev/null
done
for p in "${perf_pids[@]}"; do kill -INT "$p"; wait "$p" || true; done

for n in "${nodes[@]}"; do
  if [ "$TOOL" = callgrind ]; then
    f=$(ls -t "$OUT/callgrind.$ROW.$n".* | head -1)
    ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$ROW node=$n bytes=$BYTES Ir=$ir Ir_per_GiB=$((ir * 1073741824 / BYTES)) file=$f"
    callgrind_annotate --threshold=95 "$f" 2>/dev/null | sed -n '/^Ir/,$p' | head -40
  elif [ "$TOOL" = perf ]; then
    perf report -i "$OUT/perf.$ROW.$n" --no-children --sort dso --stdio 2>/dev/null \
      | grep '%' | head -8 || true
    perf report -i "$OUT/perf.$ROW.$n" --no-children --sort dso,sym --stdio 2>/dev/null \
      | grep '%' | head -30 || true
  fi
done
