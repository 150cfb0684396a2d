#!/usr/bin/env bash
# The netstack behind our engine against a stock peer's kernel TCP: wireguard-go in a network
# namespace, tests/tools/ns_peer_tool on our side. Our node connects to a server in the
# namespace, the namespace's kernel connects to a listener on our node; bytes are compared by
# SHA-256 at both ends; window scaling is read from the kernel's TCP_INFO; ping both ways.
# Root only (exit 77 otherwise).
set -euo pipefail
source "${TB_SRC:?}/tests/support/testbed.sh"
TOOL_BIN="${TB_TOOLS:?}/ns_peer_tool"
[ -x "$TOOL_BIN" ] || { echo "skip: $TOOL_BIN not built"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }

tb_init tlns
PEER_PORT=29830 OUR_PORT=29831
OUR_ADDR=100.64.0.1 PEER_ADDR=100.64.0.2
OUR_KEY=$(wg genkey)
OUR_PUB=$(wg pubkey <<<"$OUR_KEY")
BYTES=$((32 * 1024 * 1024))

fail() { echo "FAIL: $*"; exit 1; }

tb_peer peer "$PEER_PORT" "$PEER_ADDR/24"
tb_peer_allow peer "$OUR_PUB" "$OUR_ADDR/32" "127.0.0.1:$OUR_PORT"

tool() { # mode args... : runs the tool, its one result line in $RESULT
  RESULT=$(timeout 120 "$TOOL_BIN" --private-key "$OUR_KEY" --address "$OUR_ADDR" \
      --listen-port "$OUR_PORT" --peer-key "$TB_PUB_peer" --peer-allowed "$PEER_ADDR/32" \
      --peer-endpoint "127.0.0.1:$PEER_PORT" "$@" 2>>"$TB_DIR/tool.log" | grep -v '^ready') ||
    fail "tool $* failed: $RESULT"
  echo "  tool $1: $RESULT"
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# Kernel-side helpers: an echo server reporting what it got, and a client.
cat > "$TB_DIR/echo.py" <<'PY'
import hashlib, socket, struct, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4)
while True:
    c, _ = s.accept()
    data = bytearray()
    while True:
        b = c.recv(1 << 20)
        if not b: break
        data += b
    info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    c.sendall(data); c.shutdown(socket.SHUT_WR)
    while c.recv(65536): pass
    c.close()
    if data:
        with open(sys.argv[3], "w") as f:
            f.write("recv=%d recv_sha256=%s snd_wscale=%d\n" % (len(data), hashlib.sha256(data).hexdigest(), info[6] & 15))
PY
cat > "$TB_DIR/client.py" <<'PY'
import hashlib, os, socket, sys
n = int(sys.argv[3]); data = os.urandom(n)
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
c.sendall(data); c.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    b = c.recv(1 << 20)
    if not b: break
    got += b
info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
print("sent=%d sent_sha256=%s recv=%d recv_sha256=%s snd_wscale=%d" % (n, hashlib.sha256(data).hexdigest(), len(got), hashlib.sha256(got).hexdigest(), info[6] & 15))
PY

SECONDS=0
echo "== 1. our node connects to the peer's kernel: $BYTES bytes there and echoed back"
tb_bg "$TB_NS_peer" python3 "$TB_DIR/echo.py" "$PEER_ADDR" 8080 "$TB_DIR/echo.out"
tb_wait_tcp "$TB_NS_peer" "$PEER_ADDR" 8080
tool connect "$PEER_ADDR" 8080 "$BYTES"
for i in $(seq 50); do [ -s "$TB_DIR/echo.out" ] && break; sleep 0.1; done
ECHO=$(cat "$TB_DIR/echo.out")
echo "  kernel: $ECHO"
[ "$(field sent "$RESULT")" = "$BYTES" ] || fail "not all bytes sent"
[ "$(field recv "$ECHO")" = "$BYTES" ] || fail "the kernel got $(field recv "$ECHO") bytes"
[ "$(field recv_sha256 "$ECHO")" = "$(field sent_sha256 "$RESULT")" ] || fail "bytes differ on the way out"
[ "$(field recv_sha256 "$RESULT")" = "$(field sent_sha256 "$RESULT")" ] || fail "echo differs"
[ "$(field snd_wscale "$ECHO")" = 7 ] || fail "the kernel does not see our window scale 7"

echo "  (${SECONDS}s)"; SECONDS=0
echo "== 2. the peer's kernel connects to our node: $BYTES bytes each way"
tool_bg_out="$TB_DIR/serve.out"
"$TOOL_BIN" --private-key "$OUR_KEY" --address "$OUR_ADDR" --listen-port "$OUR_PORT" \
    --peer-key "$TB_PUB_peer" --peer-allowed "$PEER_ADDR/32" --peer-endpoint "127.0.0.1:$PEER_PORT" \
    serve 9000 "$BYTES" "$PEER_ADDR" > "$tool_bg_out" 2>>"$TB_DIR/tool.log" &
SERVE_PID=$!
TB_PIDS+=("$SERVE_PID")
for i in $(seq 100); do grep -q "pinged=ok" "$tool_bg_out" && break; sleep 0.1; done
grep -q "pinged=ok" "$tool_bg_out" || fail "no session for the serving tool"
CLIENT=$(tb_ns peer timeout 120 python3 "$TB_DIR/client.py" "$OUR_ADDR" 9000 "$BYTES") ||
  fail "kernel client failed"
wait "$SERVE_PID" || fail "serve exited with an error"
SERVED=$(grep -v "^ready" "$tool_bg_out")
echo "  kernel: $CLIENT"
echo "  tool serve: $SERVED"
[ "$(field recv "$SERVED")" = "$BYTES" ] || fail "we got $(field recv "$SERVED") bytes"
[ "$(field recv_sha256 "$SERVED")" = "$(field sent_sha256 "$CLIENT")" ] || fail "bytes differ on the way in"
[ "$(field recv "$CLIENT")" = "$BYTES" ] || fail "the kernel got $(field recv "$CLIENT") bytes back"
[ "$(field recv_sha256 "$CLIENT")" = "$(field sent_sha256 "$SERVED")" ] || fail "bytes differ on the way back"
[ "$(field snd_wscale "$CLIENT")" = 7 ] || fail "the kernel does not see our window scale 7"

echo "  (${SECONDS}s)"
echo "== 3. ping both ways"
tool ping "$PEER_ADDR" 3
[ "$(field received "$RESULT")" = 3 ] || fail "echo replies from the peer"
"$TOOL_BIN" --private-key "$OUR_KEY" --address "$OUR_ADDR" --listen-port "$OUR_PORT" \
    --peer-key "$TB_PUB_peer" --peer-allowed "$PEER_ADDR/32" --peer-endpoint "127.0.0.1:$PEER_PORT" \
    idle 10 "$PEER_ADDR" > "$TB_DIR/idle.out" 2>>"$TB_DIR/tool.log" &
IDLE_PID=$!
TB_PIDS+=("$IDLE_PID")
for i in $(seq 100); do grep -q "pinged=ok" "$TB_DIR/idle.out" && break; sleep 0.1; done
grep -q "pinged=ok" "$TB_DIR/idle.out" || fail "no session for the idle tool"
tb_ns peer ping -c 3 -W 5 "$OUR_ADDR" || fail "the peer's ping to us"
wait "$IDLE_PID" || fail "idle tool failed"

echo "== 4. no route: a connect outside the peer's allowed IPs fails as unreachable"
RESULT=$(timeout 60 "$TOOL_BIN" --private-key "$OUR_KEY" --address "$OUR_ADDR" \
    --listen-port "$OUR_PORT" --peer-key "$TB_PUB_peer" --peer-allowed "$PEER_ADDR/32" \
    --peer-endpoint "127.0.0.1:$PEER_PORT" connect 100.64.0.99 80 10 2>>"$TB_DIR/tool.log" | grep -v ready) || true
echo "  tool connect to 100.64.0.99: $RESULT"
[ "$RESULT" = "error=unreachable" ] || fail "expected unreachable"
echo "--- tool counters:"; grep "^tool:" "$TB_DIR/tool.log" || true
echo "PASS"
