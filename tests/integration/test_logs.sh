#!/usr/bin/env bash
# Logs that explain, read as a log shipper would: against a real wireguard-go peer, each proxied
# connection logs proxy_open and proxy_close with the client, what was asked, where it went
# (via=tunnel peer=NAME, or via=direct), bytes each way, duration and the error with its cause;
# a failed HTTP-proxy request shows curl a Proxy-Status header (RFC 9209) and a body that says
# why; every line parses as key=value (tests/tools/logcheck.py), and with --log-format json
# every line is a JSON object with the same keys.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tllogs

PEER_PORT=29661 NODE_PORT=29662 PROXY=127.0.0.1:18661 DIRECT_PORT=18662 CLOSED_PORT=18663
LOGCHECK=(python3 "$TB_SRC/tests/tools/logcheck.py")
fail() { echo "FAIL: $*"; exit 1; }

tb_peer peer "$PEER_PORT" 100.64.0.2/10
node_key=$("$TB_BIN" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$TB_BIN" pubkey)
tb_peer_allow peer "$node_pub" 100.64.0.1/32 "127.0.0.1:$NODE_PORT"
mkdir -p "$TB_DIR/www" && head -c 100000 /dev/urandom > "$TB_DIR/www/blob"
tb_bg "$TB_NS_peer" python3 -m http.server --bind 100.64.0.2 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http.log" 2>&1
tb_bg - python3 -m http.server --bind 127.0.0.1 "$DIRECT_PORT" --directory "$TB_DIR/www" \
  > "$TB_DIR/direct.log" 2>&1
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000
tb_wait_tcp - 127.0.0.1 "$DIRECT_PORT"

tb_tunless_conf "$TB_DIR/wg0.conf" "$node_key" 100.64.0.1/32 "$NODE_PORT" "$TB_PUB_peer" \
  "127.0.0.1:$PEER_PORT" 100.64.0.2/32
sed -i 's/^\[Peer\]$/[Peer]\n# Name = web/' "$TB_DIR/wg0.conf" # MagicDNS and peer= name it

# start_node LOGFILE [ENV...]: a node with the proxy on $PROXY, until stop_node.
start_node() {
  local log=$1; shift
  env "$@" "$TB_BIN" up --config "$TB_DIR/wg0.conf" --proxy "$PROXY" \
    --state-dir "$TB_DIR/state" --log-level debug > "$log" 2>&1 &
  node_pid=$!
  TB_PIDS+=("$node_pid")
  tb_wait_tcp - 127.0.0.1 "${PROXY##*:}"
}
stop_node() {
  kill -TERM "$node_pid"
  local rc=0
  wait "$node_pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "node exited $rc"
}
want=$(sha256sum < "$TB_DIR/www/blob" | cut -d' ' -f1)
fetch() { curl -sS --max-time 20 "$@" | sha256sum | cut -d' ' -f1; }
find_line() { "${LOGCHECK[@]}" find "$@" >/dev/null || { "${LOGCHECK[@]}" find "$@"; exit 1; }; }

echo "== text: connections through the tunnel and direct, and failures"
mkdir -p "$TB_DIR/state"
log=$TB_DIR/node.log
start_node "$log"
[ "$(fetch --socks5-hostname "$PROXY" http://web:8000/blob)" = "$want" ] || fail "tunnel download"
[ "$(fetch -x "http://$PROXY" "http://127.0.0.1:$DIRECT_PORT/blob")" = "$want" ] || fail "direct download"
# What curl shows of failed HTTP-proxy requests: the status, Proxy-Status and a body saying why.
out=$(curl -sS -i --max-time 20 -x "http://$PROXY" http://nosuch.mesh.internal/ || true)
echo "$out" | grep -q '^HTTP/1.1 502 ' || fail "NXDOMAIN: no 502: $out"
echo "$out" | grep -qi '^Proxy-Status: tunless; error=dns_error; rcode="NXDOMAIN"' || fail "NXDOMAIN: no Proxy-Status: $out"
echo "$out" | grep -q 'could not reach nosuch.mesh.internal:80' || fail "NXDOMAIN: the body does not say why: $out"
out=$(curl -sS -i --max-time 20 -x "http://$PROXY" "http://127.0.0.1:$CLOSED_PORT/" || true)
echo "$out" | grep -qi '^Proxy-Status: tunless; error=connection_refused' || fail "refused: no Proxy-Status: $out"
rc=0; curl -sS --max-time 20 --socks5 "$PROXY" "http://127.0.0.1:$CLOSED_PORT/" >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a SOCKS5 connection to a closed port succeeded"
stop_node

fields=client,target,dest,via,bytes_up,bytes_down,duration_ms,conn
find_line "$log" event=proxy_open proto=socks5 target=web:8000 dest=100.64.0.2:8000 via=tunnel peer=web --keys client,conn,peer_key
find_line "$log" event=proxy_close proto=socks5 target=web:8000 via=tunnel peer=web reply=0 --keys $fields,peer_key
find_line "$log" event=proxy_open proto=http "target=127.0.0.1:$DIRECT_PORT" via=direct --keys client,conn
find_line "$log" event=proxy_close proto=http via=direct status=200 --keys $fields
find_line "$log" event=proxy_close target=nosuch.mesh.internal:80 status=502 err=ENXDOMAIN \
  proxy_status=dns_error rcode=NXDOMAIN --keys reason,duration_ms,bytes_up,bytes_down
find_line "$log" event=proxy_close proto=socks5 "dest=127.0.0.1:$CLOSED_PORT" via=direct reply=5 \
  err=ECONNREFUSED proxy_status=connection_refused --keys reason
# The tunnel download's bytes: curl's request up, the whole file (and headers) down.
line=$("${LOGCHECK[@]}" find "$log" event=proxy_close target=web:8000)
down=$(echo "$line" | grep -o 'bytes_down=[0-9]*' | cut -d= -f2)
[ "$down" -gt 100000 ] || fail "bytes_down=$down for a 100000-byte file"
[ "$(grep -c 'event=listening service=socks5+http' "$log")" -eq 1 ] || fail "the proxy listener is not announced once"
"${LOGCHECK[@]}" check "$log" --peer "${TB_PUB_peer:0:8}=web" ||
  fail "a line that is not key=value, or that names the peer another way"

echo "== json: every line one object, the same keys"
jlog=$TB_DIR/node.json
start_node "$jlog" TUNLESS_LOG_FORMAT=json
[ "$(fetch --socks5-hostname "$PROXY" http://web:8000/blob)" = "$want" ] || fail "tunnel download (json)"
curl -sS --max-time 20 -x "http://$PROXY" http://nosuch.mesh.internal/ >/dev/null || true
stop_node
"${LOGCHECK[@]}" check --json "$jlog" --peer "${TB_PUB_peer:0:8}=web" ||
  fail "a line that is not a JSON object, or that names the peer another way"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$jlog"
find_line --json "$jlog" event=proxy_close target=web:8000 via=tunnel peer=web --keys $fields
find_line --json "$jlog" event=proxy_close err=ENXDOMAIN rcode=NXDOMAIN --keys reason
find_line --json "$jlog" event=stopped
echo "logs: ok"
