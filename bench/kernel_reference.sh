#!/usr/bin/env bash
# The reference path for netstack throughput: kernel TCP between two network namespaces through
# two stock wireguard-go instances (each a TUN), on this machine. Run as root.
#   sudo bench/kernel_reference.sh     (SECONDS_PER_RUN=N, default 10)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/tests/support/testbed.sh"
tb_init tlkref
T=${SECONDS_PER_RUN:-10}

tb_peer a 29881 100.64.1.1/24
tb_peer b 29882 100.64.1.2/24
# 7 MiB UDP buffers, as every path in bench/ gets (the Go reference's sockbuf, built here
# unless SOCKBUF names one).
if [ -z "${SOCKBUF:-}" ]; then
  SOCKBUF=$SRC/build/goref/bin/sockbuf
  bash "$SRC/bench/goref/build.sh" "$(dirname "$SOCKBUF")" >&2 || true
fi
if [ -x "$SOCKBUF" ]; then
  "$SOCKBUF" -pid "$TB_WGPID_a" >/dev/null && "$SOCKBUF" -pid "$TB_WGPID_b" >/dev/null
else
  echo "note: $SOCKBUF missing: kernel default socket buffers (slower)"
fi
tb_peer_allow a "$TB_PUB_b" 100.64.1.2/32 127.0.0.1:29882
tb_peer_allow b "$TB_PUB_a" 100.64.1.1/32 127.0.0.1:29881
tb_bg "$TB_NS_b" iperf3 -s -B 100.64.1.2 -1 > /dev/null
sleep 0.5
tb_ns a iperf3 -c 100.64.1.2 -t "$T" -f m | awk '/receiver/ {print "kernel->kernel via 2x wireguard-go:", $(NF-2), $(NF-1)}'
