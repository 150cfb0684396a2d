#!/usr/bin/env bash
# The connect row (bench/compare_anchor.sh ROWS=rr) under a loopback capture, and where each
# proxy's connection time goes, step by step (bench/rr_timeline.py): what the client, the proxy
# and the peer each add between the client's SYN and its FIN. The capture itself loads the
# machine a little, so read the steps beside each other, not as the row's figures.
#
#   sudo bench/rr_timeline.sh [BUILD_DIR]
#     RR_N=1000 (connections per proxy)  WHO="tunless anchor"  CAP=FILE (keep the capture)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/tunless-rrtl-XXXXXX)
CAP=${CAP:-$TMP/rr.pcap}
TD=
trap '[ -z "$TD" ] || kill "$TD" 2>/dev/null; rm -rf "$TMP"' EXIT  # the capture, if cut short

# compare_anchor.sh's ports: the proxies' SOCKS5 listeners and their WireGuard UDP ports.
. "$SRC/bench/rig.sh"
rig_ports
tcpdump -i lo -n -B 65536 -s 128 -w "$CAP" \
  "tcp port $T_PROXY_PORT or tcp port $A_PROXY_PORT or udp port $T_PORT or udp port $A_PORT" \
  2> "$TMP/tcpdump.log" &
TD=$!
sleep 1
ROWS=rr RR_ROUNDS=1 bash "$SRC/bench/compare_anchor.sh" "$@" | grep ' rr n=' || true
kill "$TD"
wait "$TD" 2>/dev/null || true
TD=
tail -1 "$TMP/tcpdump.log"  # "0 packets dropped by kernel", or the capture is short
WHO=${WHO:-tunless anchor}
for who in $WHO; do
  case $who in
    tunless) ports="$T_PROXY_PORT $T_PORT" ;;
    anchor) ports="$A_PROXY_PORT $A_PORT" ;;
    *) continue ;;
  esac
  echo "== $who"
  # shellcheck disable=SC2086
  tcpdump -r "$CAP" -tt -n 2> /dev/null | python3 "$SRC/bench/rr_timeline.py" $ports
done
