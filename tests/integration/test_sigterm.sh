#!/usr/bin/env bash
# One SIGTERM stops a node that holds open connections of every kind: a --forward to the mesh, a
# --forward to a host service, a --publish'ed connection from a peer and an endless stream through
# the proxy (and an idle DNS-over-TCP client). The node exits 0 within the drain time (5 s) plus
# a margin, and every client sees its cut stream end with a reset, never a clean end of file.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlsig

PEER_PORT=28641 NODE_PORT=28642 PROXY=127.0.0.1:19641
STREAMS=(python3 "$TB_SRC/tests/support/streams.py")
fail() { echo "FAIL: $*"; exit 1; }

tb_peer peer "$PEER_PORT" 100.64.0.2/10
node_key=$("$TB_BIN" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$TB_BIN" pubkey)
tb_peer_allow peer "$node_pub" 100.64.0.1/32 "127.0.0.1:$NODE_PORT"
tb_tunless_conf "$TB_DIR/wg0.conf" "$node_key" 100.64.0.1/32 "$NODE_PORT" "$TB_PUB_peer" \
  "127.0.0.1:$PEER_PORT" 100.64.0.2/32

# Endless senders: one on the peer, one on this host (behind --publish and a direct --forward).
tb_bg "$TB_NS_peer" "${STREAMS[@]}" serve 100.64.0.2 8000
tb_bg - "${STREAMS[@]}" serve 127.0.0.1 19643
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000
tb_wait_tcp - 127.0.0.1 19643

"$TB_BIN" up --config "$TB_DIR/wg0.conf" --proxy "$PROXY" \
  --forward tcp:127.0.0.1:19642=100.64.0.2:8000 --forward tcp:127.0.0.1:19644=127.0.0.1:19643 \
  --publish 8080=127.0.0.1:19643 --dns-listen 127.0.0.1:19645 \
  --state-dir "$TB_DIR/state" --log-level debug > "$TB_DIR/node.log" 2>&1 &
node_pid=$!
TB_PIDS+=("$node_pid")
tb_wait_tcp - 127.0.0.1 19641
tb_wait_tcp - 127.0.0.1 19642

echo "== four endless streams, one of each kind"
tb_bg - "${STREAMS[@]}" read "$TB_DIR/fwd-mesh" 127.0.0.1 19642
tb_bg - "${STREAMS[@]}" read "$TB_DIR/fwd-host" 127.0.0.1 19644
tb_bg - "${STREAMS[@]}" read "$TB_DIR/proxied" 127.0.0.1 19641 100.64.0.2 8000
tb_bg "$TB_NS_peer" "${STREAMS[@]}" read "$TB_DIR/publish" 100.64.0.1 8080
tb_bg - "${STREAMS[@]}" read "$TB_DIR/dns" 127.0.0.1 19645 # an idle DNS-over-TCP client
for c in fwd-mesh fwd-host proxied publish dns; do
  for _ in $(seq 100); do [ -f "$TB_DIR/$c.up" ] && break; sleep 0.1; done
  [ -f "$TB_DIR/$c.up" ] || fail "stream $c did not open: $(cat "$TB_DIR/$c" 2>/dev/null)"
done
sleep 1
for c in fwd-mesh fwd-host proxied publish; do
  [ ! -f "$TB_DIR/$c" ] || fail "stream $c ended before the signal: $(cat "$TB_DIR/$c")"
done

echo "== one SIGTERM: exit 0 within the drain time and a margin"
start=$(date +%s%N)
kill -TERM "$node_pid"
rc=0; timeout 20 tail --pid="$node_pid" -f /dev/null || rc=$?
if [ "$rc" -ne 0 ]; then
  for c in fwd-mesh fwd-host proxied publish; do echo "$c: $(cat "$TB_DIR/$c" 2>/dev/null || echo open)"; done
  fail "the node did not exit within 20 s of one SIGTERM"
fi
rc=0; wait "$node_pid" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
echo "stopped after $ms ms, exit $rc"
[ "$rc" -eq 0 ] || fail "exit code $rc after one SIGTERM"
[ "$ms" -lt 8000 ] || fail "stopping took $ms ms (drain 5 s + 3 s margin)"
grep -q 'event=stopped' "$TB_DIR/node.log" || fail "no event=stopped"

echo "== every cut stream ended with a reset"
for c in fwd-mesh fwd-host proxied publish; do
  for _ in $(seq 50); do [ -f "$TB_DIR/$c" ] && break; sleep 0.1; done
  got=$(cat "$TB_DIR/$c" 2>/dev/null || echo "no end seen")
  echo "$c: $got"
  [ "$got" = reset ] || fail "stream $c ended with '$got', want reset"
done
# DNS over TCP frames its messages: a FIN cuts nothing, but the connection must not hold the stop.
for _ in $(seq 50); do [ -f "$TB_DIR/dns" ] && break; sleep 0.1; done
echo "dns: $(cat "$TB_DIR/dns" 2>/dev/null || echo "no end seen")"
[ -f "$TB_DIR/dns" ] || fail "the DNS client's connection outlived the node"
grep -q 'event=drain_timeout' "$TB_DIR/node.log" || fail "no drain_timeout logged"
echo "sigterm: ok"
