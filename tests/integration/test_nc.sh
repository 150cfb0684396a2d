#!/usr/bin/env bash
# `tunless nc HOST PORT` through a running `tunless up`'s SOCKS5 proxy, to a direct destination
# on loopback: bytes both ways, stdin's EOF reaches the server as a FIN (it answers only then),
# the server's FIN ends nc with exit 0; a refused destination is one line naming the SOCKS5
# reply, exit 1; no node at all is one line, exit 1; without --proxy nc asks the node's local API
# for its proxy. Needs no root (ports 18775-18778).
set -euo pipefail
: "${TB_BIN:?}"
BIN=$TB_BIN
unset TB_BIN TB_TOOLS TB_SRC
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; cat "$dir"/*.log 2>/dev/null || true; exit 1; }

# A server that reads until EOF, then answers with what it read, reversed, and closes.
python3 - > "$dir/server.log" 2>&1 <<'PY' &
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 18776)); s.listen(4)
while True:
    c, _ = s.accept(); data = b""
    while True:
        b = c.recv(65536)
        if not b: break
        data += b
    c.sendall(data[::-1]); c.close()
PY
pids+=($!)
"$BIN" up --proxy 127.0.0.1:18775 --state-dir "$dir/state" > "$dir/node.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do grep -q 'event=up ' "$dir/node.log" && break; sleep 0.1; done
for _ in $(seq 50); do (exec 3<> /dev/tcp/127.0.0.1/18776) 2> /dev/null && break; sleep 0.1; done

echo "== bytes both ways, half-close in both directions"
out=$(printf 'hello mesh' | "$BIN" nc --proxy 127.0.0.1:18775 127.0.0.1 18776) || fail "nc exit $?"
[ "$out" = "hsem olleh" ] || fail "got '$out'"
head -c 300000 /dev/urandom > "$dir/big"
TUNLESS_PROXY=127.0.0.1:18775 "$BIN" nc 127.0.0.1 18776 < "$dir/big" > "$dir/back" || fail "nc exit $?"
python3 -c 'import sys; a=open(sys.argv[1],"rb").read(); b=open(sys.argv[2],"rb").read(); sys.exit(0 if a[::-1]==b else 1)' "$dir/big" "$dir/back" || fail "300 kB did not come back reversed"

echo "== no --proxy: the node found through its local API, whose status names its proxy"
out=$(printf 'via api' | TUNLESS_STATE_DIR="$dir/state" "$BIN" nc 127.0.0.1 18776) || fail "nc exit $?"
[ "$out" = "ipa aiv" ] || fail "through the local API: got '$out'"
out=$(printf 'socket' | "$BIN" nc --socket "$dir/state/tunless.sock" 127.0.0.1 18776) || fail "nc --socket exit $?"
[ "$out" = "tekcos" ] || fail "through --socket: got '$out'"

echo "== a refused destination: one line naming the SOCKS5 reply, exit 1"
rc=0; "$BIN" nc --proxy 127.0.0.1:18775 127.0.0.1 18777 < /dev/null > /dev/null 2> "$dir/err.log" || rc=$?
[ "$rc" = 1 ] || fail "exit $rc"
grep -qx 'tunless nc: 127.0.0.1:18777: the proxy answered connection refused (SOCKS5 reply 5)' "$dir/err.log" || fail "no SOCKS5 reply named"

echo "== a proxy with credentials: refused without them, used with TUNLESS_PROXY_USER/PASS"
printf 'pw\n' > "$dir/pass"
"$BIN" up --proxy 127.0.0.1:18770 --proxy-user u --proxy-pass-file "$dir/pass" \
  --state-dir "$dir/state2" > "$dir/node2.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do grep -q 'event=up ' "$dir/node2.log" && break; sleep 0.1; done
rc=0; "$BIN" nc --proxy 127.0.0.1:18770 127.0.0.1 18776 < /dev/null 2> "$dir/err.log" || rc=$?
[ "$rc" = 1 ] && grep -qx 'tunless nc: the proxy requires credentials (set TUNLESS_PROXY_USER and TUNLESS_PROXY_PASS)' "$dir/err.log" || fail "no credentials: exit $rc"
out=$(printf 'abc' | TUNLESS_PROXY_USER=u TUNLESS_PROXY_PASS=pw "$BIN" nc --proxy 127.0.0.1:18770 127.0.0.1 18776) || fail "with credentials: exit $?"
[ "$out" = cba ] || fail "with credentials: got '$out'"

echo "== no node: one line, exit 1"
rc=0; "$BIN" nc --proxy 127.0.0.1:18778 127.0.0.1 18776 < /dev/null 2> "$dir/err.log" || rc=$?
[ "$rc" = 1 ] && grep -q "cannot reach the node's proxy at 127.0.0.1:18778" "$dir/err.log" || fail "exit $rc"
rc=0; "$BIN" nc onlyhost < /dev/null 2> /dev/null || rc=$?
[ "$rc" = 2 ] || fail "usage: exit $rc"
echo "nc: ok"
