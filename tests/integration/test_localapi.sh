#!/usr/bin/env bash
# The local API and `tunless status` / `reload` against `tunless up` with a stock wireguard-go
# peer: after traffic the status has the peer's key, a fresh handshake and bytes both ways; no
# key material in any output; as nobody with --socket-group reads work and a write gets 403,
# without the group connecting is refused; a stale socket is replaced, a live one refused (a
# second node on the socket or the state directory fails; the first stays reachable);
# whois names the peer for its tunnel address and, asked by a service behind --publish for
# the caller it sees, the peer and the tunnel address and port the connection came from;
# ping --wireguard times handshakes with the peer and reports no answer once it is gone.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlapi

PEER_PORT=29941 NODE_PORT=29942 PROXY=127.0.0.1:18941 SERVICE_PORT=18943
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
T=$TB_BIN
fail() { echo "FAIL: $*"; exit 1; }

tb_peer peer "$PEER_PORT" 100.64.0.2/10
node_key=$("$T" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$T" pubkey)
(umask 077 && wg genpsk > "$TB_DIR/psk")
psk=$(cat "$TB_DIR/psk")
tb_peer_allow peer "$node_pub" 100.64.0.1/32 "127.0.0.1:$NODE_PORT" "$TB_DIR/psk"
mkdir -p "$TB_DIR/www" && echo hello > "$TB_DIR/www/index.html"
tb_bg "$TB_NS_peer" python3 -m http.server --bind 100.64.0.2 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http.log" 2>&1
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000

write_conf() { # extra lines appended (the reload test)
  cat > "$TB_DIR/wg0.conf" <<CONF
[Interface]
PrivateKey = $node_key
Address = 100.64.0.1/32
ListenPort = $NODE_PORT

[Peer]
# Name = web
PublicKey = $TB_PUB_peer
PresharedKey = $psk
Endpoint = 127.0.0.1:$PEER_PORT
AllowedIPs = 100.64.0.2/32
$1
CONF
  chmod 600 "$TB_DIR/wg0.conf"
}
write_conf ""

SOCK=$TB_DIR/run/api.sock
start_node() { # extra flags
  "$T" up --config "$TB_DIR/wg0.conf" --proxy "$PROXY" --socket "$SOCK" --state-dir "$TB_DIR/state" \
    --log-level debug "$@" >> "$TB_DIR/node.log" 2>&1 &
  node_pid=$!
  TB_PIDS+=("$node_pid")
  tb_wait_tcp - 127.0.0.1 18941
  for _ in $(seq 50); do [ -S "$SOCK" ] && return 0; sleep 0.1; done
  fail "no socket at $SOCK"
}
outputs=()
keep() { outputs+=("$1"); printf '%s\n' "$1"; }

echo "== socket mode and group"
start_node --socket-group nogroup
[ "$(stat -c '%a %G' "$SOCK")" = "660 nogroup" ] || fail "socket mode: $(stat -c '%a %G' "$SOCK")"
[ "$(stat -c '%a' "$TB_DIR/run")" = 710 ] || fail "socket dir mode: $(stat -c '%a' "$TB_DIR/run")"

echo "== status after traffic through SOCKS5"
curl -sS --max-time 20 --socks5 "$PROXY" http://100.64.0.2:8000/ | grep -q hello || fail "curl"
json=$("$T" status --json --socket "$SOCK")
keep "$json"
echo "$json" | jq -e --arg k "$TB_PUB_peer" '.peers[0].public_key == $k' >/dev/null || fail "peer key"
echo "$json" | jq -e '.peers[0].last_handshake_seconds_ago < 60' >/dev/null || fail "handshake age"
echo "$json" | jq -e '.peers[0].rx_bytes > 0 and .peers[0].tx_bytes > 0' >/dev/null || fail "rx/tx"
echo "$json" | jq -e '.peers[0].last_handshake | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")' >/dev/null \
  || fail "RFC 3339 handshake time"
echo "$json" | jq -e --arg k "$node_pub" '.node.public_key == $k and .node.listen_port == 29942' \
  >/dev/null || fail "node key / port"
echo "$json" | jq -e '.netstack.tcp_connected > 0 and .peers[0].session == true' >/dev/null \
  || fail "netstack counters / session"
echo "$json" | jq -e '.node.listeners[0].counters | .accepted >= 1 and .socks5_replies["0"] >= 1 and .bytes_down > 0' \
  >/dev/null || fail "proxy counters"
table=$("$T" status --socket "$SOCK")
keep "$table"
echo "$table" | grep -E '^100\.64\.0\.2/32 +web +127\.0\.0\.1:29941 +[0-9]+s ago' >/dev/null \
  || fail "the table has no line for peer web"

echo "== the same through the environment"
TUNLESS_SOCKET=$SOCK "$T" status >/dev/null || fail "TUNLESS_SOCKET"

echo "== as nobody in the socket's group: reads work, a write gets 403"
keep "$("${NOBODY[@]}" "$T" status --socket "$SOCK")"
rc=0; out=$("${NOBODY[@]}" "$T" reload --socket "$SOCK" 2>&1) || rc=$?
keep "$out"
[ "$rc" = 1 ] && echo "$out" | grep -q "HTTP 403" && echo "$out" | grep -q "only root or the node's own user" \
  || fail "a reader's reload: rc=$rc $out"
"${NOBODY[@]}" "$T" ping --socket "$SOCK" -c 1 web >/dev/null || fail "a reader may ping"
code=$("${NOBODY[@]}" curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST http://x/v0/reload)
[ "$code" = 403 ] || fail "curl reload as nobody: $code"
# Refused on its head: no "100 Continue" first, and the 403 comes without the body being read.
head -c 500000 /dev/zero > "$TB_DIR/body"
"${NOBODY[@]}" curl -sv --max-time 20 --expect100-timeout 15 -o /dev/null --unix-socket "$SOCK" \
  -X POST -H 'Expect: 100-continue' --data-binary @- http://x/v0/reload \
  < "$TB_DIR/body" 2> "$TB_DIR/expect.err" || true
grep -q '^< HTTP/1.1 403' "$TB_DIR/expect.err" || fail "Expect: 100-continue as nobody: $(cat "$TB_DIR/expect.err")"
! grep -q '^< HTTP/1.1 100' "$TB_DIR/expect.err" || fail "100 Continue before the 403"
grep -q 'event=http_request server=localapi method=POST path=/v0/reload status=403 uid=65534' \
  "$TB_DIR/node.log" || fail "the request is not logged with uid"

echo "== reload: the change, then a bad file"
extra_pub=$(wg genkey | wg pubkey)
# The node also reloads by itself 200 ms after its file changes. Hold it while the file is
# written and the request is queued, so that the request is read before that timer ends and
# reports the change (on a loaded machine the CLI alone can take longer than 200 ms to start).
kill -STOP "$node_pid"
write_conf "
[Peer]
# Name = extra
PublicKey = $extra_pub
AllowedIPs = 100.64.0.9/32"
"$T" reload --socket "$SOCK" > "$TB_DIR/reload.out" 2>&1 & reload_pid=$!
for _ in $(seq 50); do
  ss -xp 2>/dev/null | grep -q "pid=$reload_pid," && break
  sleep 0.1
done
kill -CONT "$node_pid"
wait "$reload_pid" || fail "reload: $(cat "$TB_DIR/reload.out")"
out=$(cat "$TB_DIR/reload.out")
keep "$out"
echo "$out" | grep -q "added extra ($extra_pub)" || fail "reload did not report the added peer: $out"
echo "$out" | grep -q "1 added, 0 removed, 0 changed, 1 unchanged" || fail "reload summary: $out"
echo "[Interface]
PrivateKey = nonsense" > "$TB_DIR/wg0.conf"
rc=0; out=$("$T" reload --socket "$SOCK" 2>&1) || rc=$?
keep "$out"
[ "$rc" = 1 ] && echo "$out" | grep -q "wg0.conf" || fail "bad reload: rc=$rc $out"
write_conf ""
curl -sS --max-time 20 --socks5 "$PROXY" http://100.64.0.2:8000/ | grep -q hello || fail "curl after reload"

echo "== a live node is refused, with its PID"
# Same socket, another state directory: the socket check names the running node.
rc=0; out=$("$T" up --config "$TB_DIR/wg0.conf" --proxy off --socket "$SOCK" \
  --state-dir "$TB_DIR/state2" 2>&1) || rc=$?
[ "$rc" = 2 ] && echo "$out" | grep -q "another node is running (PID $node_pid) on $SOCK" \
  || fail "second node: rc=$rc $out"
# Same state directory, another socket (or two started at the same moment): its lock.
rc=0; out=$("$T" up --config "$TB_DIR/wg0.conf" --proxy off --socket "$TB_DIR/run/other.sock" \
  --state-dir "$TB_DIR/state" 2>&1) || rc=$?
[ "$rc" = 2 ] && echo "$out" | grep -q "another node is running (PID $node_pid) with state directory" \
  || fail "second node on the state directory: rc=$rc $out"
[ ! -e "$TB_DIR/run/other.sock" ] || fail "the refused node listened"
"$T" status --socket "$SOCK" > /dev/null || fail "the first node is unreachable after the second failed"

echo "== without the group: nobody cannot connect"
kill "$node_pid"; wait "$node_pid" || fail "node exit"
[ ! -e "$SOCK" ] || fail "the socket outlived the node"
start_node
[ "$(stat -c '%a' "$SOCK")" = 600 ] || fail "socket mode $(stat -c '%a' "$SOCK")"
rc=0; out=$("${NOBODY[@]}" "$T" status --socket "$SOCK" 2>&1) || rc=$?
keep "$out"
[ "$rc" = 1 ] && echo "$out" | grep -q "permission denied on $SOCK" || fail "nobody without group: rc=$rc $out"
[ "$(echo "$out" | wc -l)" = 1 ] || fail "more than one line: $out"

echo "== a stale socket (the node killed hard) is replaced"
kill -9 "$node_pid"; wait "$node_pid" 2>/dev/null || true
[ -S "$SOCK" ] || fail "no stale socket left to test with"
# A service behind --publish that asks whois who its caller is and answers with what it heard.
cat > "$TB_DIR/whois_service.py" <<'PY'
import socket, subprocess, sys
tunless, sock, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
srv = socket.create_server(("127.0.0.1", port))
while True:
    conn, (host, cport) = srv.accept()
    with conn:
        r = subprocess.run([tunless, "whois", "--socket", sock, f"{host}:{cport}"],
                           capture_output=True, text=True)
        conn.sendall(f"{host}:{cport} rc={r.returncode} {r.stdout}{r.stderr}".encode())
        try:
            conn.recv(1)  # until the client closes: the connection stays open as long as it wants
        except OSError:
            pass
PY
tb_bg - python3 "$TB_DIR/whois_service.py" "$T" "$SOCK" "$SERVICE_PORT"
tb_wait_tcp - 127.0.0.1 "$SERVICE_PORT"
start_node --publish "8080=127.0.0.1:$SERVICE_PORT"
"$T" status --socket "$SOCK" >/dev/null || fail "status after replacing a stale socket"

echo "== whois and ping"
out=$("$T" whois --socket "$SOCK" 100.64.0.2:8000) || fail "whois"
keep "$out"
[ "$out" = "100.64.0.2: peer web ($TB_PUB_peer)" ] || fail "whois: $out"
out=$("$T" whois --socket "$SOCK" 100.64.0.1) || fail "whois self"
[ "$out" = "100.64.0.1: this node" ] || fail "whois self: $out"
rc=0; out=$("$T" whois --socket "$SOCK" 100.64.0.77 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "no peer owns 100.64.0.77" || fail "whois nobody: rc=$rc $out"
out=$("$T" ping --socket "$SOCK" -c 2 web 2>&1) && rc=0 || rc=$?
keep "$out"
[ "$rc" = 0 ] || fail "ping web: $out"
echo "$out" | grep -q "reply from 100.64.0.2: icmp_seq=1" || fail "ping reply: $out"
echo "$out" | grep -q "2 sent, 2 received" || fail "ping summary: $out"

echo "== whois from a service behind --publish"
# The client in the peer's namespace reaches the service through the mesh; the service sees the
# relay's host end (127.0.0.1:N) and asks whois, which answers with the client's tunnel end.
client='import socket; s = socket.create_connection(("100.64.0.1", 8080), timeout=20)
print(s.getsockname()[1]); print(s.makefile().readline(), end="")'
out=$(tb_ns peer python3 -c "$client") || fail "client through the mesh: $out"
keep "$out"
cport=$(echo "$out" | head -1)
seen=$(echo "$out" | sed -n 2p | cut -d' ' -f1)
echo "$out" | grep -qxF "$seen rc=0 $seen: peer web ($TB_PUB_peer) from 100.64.0.2:$cport through --publish tcp:8080" \
  || fail "whois from the service: $out"
json=$(curl -sS --unix-socket "$SOCK" "http://x/v0/whois?addr=$seen")
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://x/v0/whois?addr=$seen")
for _ in $(seq 20); do # the relay forgets the connection once both ends closed
  [ "$code" = 404 ] && break
  sleep 0.1
  code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://x/v0/whois?addr=$seen")
done
[ "$code" = 404 ] || fail "whois still knows a closed connection: $code $json"
rc=0; out=$("$T" whois --socket "$SOCK" 127.0.0.1:1 2>&1) || rc=$?
keep "$out"
[ "$rc" = 1 ] && echo "$out" | grep -q "HTTP 404" \
  && echo "$out" | grep -q "no connection through --publish comes from 127.0.0.1 port 1" \
  || fail "whois an unknown port: rc=$rc $out"
# While a connection is open the API answers with the tunnel end as JSON.
coproc CLIENT { tb_ns peer python3 -c 'import socket, sys, time
s = socket.create_connection(("100.64.0.1", 8080), timeout=20)
print(s.getsockname()[1], flush=True); sys.stdin.read()'; }
read -r cport <&"${CLIENT[0]}"
local_end=$(ss -Htn state established "( sport = :$SERVICE_PORT )" | awk '{print $4}' | head -1)
json=$(curl -sS --unix-socket "$SOCK" "http://x/v0/whois?addr=$local_end")
keep "$json"
echo "$json" | jq -e --arg k "$TB_PUB_peer" --argjson p "$cport" \
  '.from.addr == "100.64.0.2" and .from.port == $p and .peer.public_key == $k and .peer.name == "web"
   and .publish.port == 8080' >/dev/null || fail "whois JSON for an open connection: $json"
eval "exec ${CLIENT[1]}>&-"
wait "$CLIENT_PID" 2>/dev/null || true

echo "== ping --wireguard"
sleep 1 # wireguard-go's handshake time (in seconds) must move for the check below
before=$(date +%s)
out=$("$T" ping --socket "$SOCK" --wireguard -c 2 web 2>&1) && rc=0 || rc=$?
keep "$out"
[ "$rc" = 0 ] || fail "ping --wireguard web: $out"
echo "$out" | grep -qE "^handshake with web via 127\.0\.0\.1:$PEER_PORT: seq=2 time=[0-9.]+ ms$" \
  || fail "ping --wireguard reply: $out"
echo "$out" | grep -q "2 sent, 2 received" || fail "ping --wireguard summary: $out"
hs=$(tb_ns peer wg show "$TB_IF_peer" latest-handshakes | awk '{print $2}')
[ "$hs" -ge "$before" ] || fail "wireguard-go saw no new handshake: $hs < $before"
json=$(curl -sS --unix-socket "$SOCK" -X POST -d '{"target": "web", "type": "wireguard"}' http://x/v0/ping)
keep "$json"
echo "$json" | jq -e '.type == "wireguard" and .received == 1 and (.replies[0].rtt_ms | type) == "number"' \
  >/dev/null || fail "ping wireguard JSON: $json"
rc=0; out=$("$T" ping --socket "$SOCK" --wireguard 100.64.0.1 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "HTTP 400" || fail "ping --wireguard ourselves: rc=$rc $out"

kill "$TB_WGPID_peer"; wait "$TB_WGPID_peer" 2>/dev/null || true
rc=0; out=$("$T" ping --socket "$SOCK" -c 1 100.64.0.2 2>&1) || rc=$?
keep "$out"
[ "$rc" = 1 ] && echo "$out" | grep -q "1 sent, 0 received, no answer" || fail "ping a dead peer: rc=$rc $out"
rc=0; out=$("$T" ping --socket "$SOCK" --wireguard -c 1 web 2>&1) || rc=$?
keep "$out"
[ "$rc" = 1 ] && echo "$out" | grep -q "^seq=1: no answer" && echo "$out" | grep -q "1 sent, 0 received, no answer" \
  || fail "ping --wireguard a dead peer: rc=$rc $out"
kill "$node_pid"; wait "$node_pid" || fail "node exit"

echo "== no node running; a path too long"
rc=0; out=$("$T" status --socket "$SOCK" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "no node is running on $SOCK" && echo "$out" | grep -q 'tunless up' \
  || fail "no node: rc=$rc $out"
long=$TB_DIR/$(printf 'x%.0s' $(seq 110))/api.sock
rc=0; out=$("$T" up --config "$TB_DIR/wg0.conf" --socket "$long" 2>&1) || rc=$?
[ "$rc" = 2 ] && echo "$out" | grep -q "longer than a unix socket path may be" || fail "long path: rc=$rc $out"

echo "== no key material anywhere"
priv_b64=$node_key
for o in "${outputs[@]}" "$(cat "$TB_DIR/node.log")"; do
  case "$o" in *"$priv_b64"* | *"$psk"*) fail "a private or preshared key appears in: ${o:0:200}" ;; esac
done
echo "localapi: ok"
