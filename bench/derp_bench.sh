#!/usr/bin/env bash
# Throughput and memory of one `tunless derp` server on loopback (plain HTTP), beside the
# loopback TCP ceiling measured the same way: 1400-byte packets, 1 pair and 100 pairs of
# clients, as fast as they go and at offered rates, then memory per connected client (1000
# clients). Port 34390.
#   bench/derp_bench.sh [build/tunless]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/tunless}
PY=/usr/bin/python3
SECONDS_EACH=${SECONDS_EACH:-5}
ulimit -n 8192
WORK=$(mktemp -d /tmp/tunless-derp-bench-XXXXXX)
"$BIN" derp --http --listen 127.0.0.1:34390 --stun off --state-dir "$WORK" --log-level warn \
    2>"$WORK/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
sleep 0.3
echo "# $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg) at start"
$PY bench/derp_load.py --direct --pairs 1 --seconds "$SECONDS_EACH"
$PY bench/derp_load.py --direct --pairs 100 --seconds "$SECONDS_EACH"
# As fast as the senders go (the queues drop what receivers cannot take), then offered rates.
for pairs in 1 100; do
    $PY bench/derp_load.py --port 34390 --pid $PID --pairs $pairs --seconds "$SECONDS_EACH"
    for pps in 100000 200000 400000; do
        $PY bench/derp_load.py --port 34390 --pid $PID --pairs $pairs --seconds "$SECONDS_EACH" \
            --pps $pps
    done
done
$PY tests/tools/derp_test.py load --port 34390 --pid $PID --clients 1000 --count 1 | grep '^load:'
