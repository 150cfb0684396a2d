#!/usr/bin/env bash
# PUT /v0/netmap (`tunless netmap apply`) on a node started without a configuration file,
# against stock wireguard-go peers: the first netmap brings the node up; a second one adds a
# peer while a 200 MB transfer from the first goes on (the transfer's SHA-256 matches, the new
# peer answers); a bad one is refused with its JSON path and changes nothing; the last netmap
# is kept (0600) and resumed after a restart; a node whose configuration is a file answers 409.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlnmput
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 77; }

P1_PORT=28651 P2_PORT=28652 NODE_PORT=28653 PROXY=127.0.0.1:18651
RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
STATE="$TB_DIR/state"
SOCK="$STATE/tunless.sock"
tb_tunless_state "$STATE" "$NODE_PORT"
node_pub=$TB_NODE_PUB

tb_peer one "$P1_PORT" 100.64.0.2/10
tb_peer two "$P2_PORT" 100.64.0.3/10
tb_peer_allow one "$node_pub" 100.64.0.1/32 "127.0.0.1:$NODE_PORT"
tb_peer_allow two "$node_pub" 100.64.0.1/32 "127.0.0.1:$NODE_PORT"
mkdir -p "$TB_DIR/www1" "$TB_DIR/www2"
head -c 200000000 /dev/urandom > "$TB_DIR/www1/big"
echo "peer two" > "$TB_DIR/www2/hello"
want=$(sha256sum < "$TB_DIR/www1/big" | cut -d' ' -f1)
tb_bg "$TB_NS_one" python3 -m http.server --bind 100.64.0.2 8000 --directory "$TB_DIR/www1" \
  > "$TB_DIR/http1.log" 2>&1
tb_bg "$TB_NS_two" python3 -m http.server --bind 100.64.0.3 8000 --directory "$TB_DIR/www2" \
  > "$TB_DIR/http2.log" 2>&1
tb_wait_tcp "$TB_NS_one" 100.64.0.2 8000
tb_wait_tcp "$TB_NS_two" 100.64.0.3 8000

peer_json() { # name pub port addr
  printf '{"name": "%s", "public_key": "%s", "endpoints": ["127.0.0.1:%s"], "allowed_ips": ["%s"]}' "$@"
}
netmap() { # peers...
  local IFS=,
  printf '{"version": 1, "self": {"addresses": ["100.64.0.1/32"]}, "peers": [%s]}\n' "$*"
}
one=$(peer_json one "$TB_PUB_one" "$P1_PORT" 100.64.0.2/32)
two=$(peer_json two "$TB_PUB_two" "$P2_PORT" 100.64.0.3/32)

start_node() {
  "${RUN_AS[@]}" "$TB_BIN" up --state-dir "$STATE" --proxy "$PROXY" "$@" \
    >> "$TB_DIR/node.log" 2>&1 &
  node_pid=$!
  TB_PIDS+=("$node_pid")
  tb_wait_tcp - 127.0.0.1 18651
  for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
}
stop_node() {
  kill -TERM "$node_pid"
  local rc=0
  wait "$node_pid" || rc=$?
  [ "$rc" -eq 0 ] || { echo "node exited $rc"; exit 1; }
}
apply() { "$TB_BIN" netmap apply --socket "$SOCK" "$@"; }

start_node
echo "== the first netmap brings the node up (from stdin)"
netmap "$one" | apply - | tee "$TB_DIR/apply1.out"
grep -q 'added one' "$TB_DIR/apply1.out" || { echo "the first netmap did not add peer one"; exit 1; }
curl -sS --max-time 20 --socks5 "$PROXY" http://100.64.0.2:8000/ -o /dev/null \
  || { echo "peer one unreachable after the first netmap"; exit 1; }

echo "== a second netmap adds peer two while 200 MB come from peer one"
curl -sS --max-time 120 --limit-rate 40M --socks5 "$PROXY" http://100.64.0.2:8000/big \
  | sha256sum | cut -d' ' -f1 > "$TB_DIR/big.sha" &
transfer=$!
sleep 1.5
netmap "$one" "$two" > "$TB_DIR/two.json"
kill -0 "$transfer" 2>/dev/null || { echo "the transfer ended before the PUT: make it slower"; exit 1; }
apply "$TB_DIR/two.json" | tee "$TB_DIR/apply2.out"
grep -q 'added two' "$TB_DIR/apply2.out" || { echo "peer two was not added"; exit 1; }
grep -q '1 unchanged' "$TB_DIR/apply2.out" || { echo "peer one did not stay unchanged"; exit 1; }
[ "$(curl -sS --max-time 20 --socks5 "$PROXY" http://100.64.0.3:8000/hello)" = "peer two" ] \
  || { echo "peer two unreachable after the PUT"; exit 1; }
kill -0 "$transfer" 2>/dev/null || { echo "the transfer was not running across the PUT"; exit 1; }
wait "$transfer"
[ "$(cat "$TB_DIR/big.sha")" = "$want" ] || { echo "the 200 MB transfer across the PUT differs"; exit 1; }

echo "== a bad netmap: refused with its JSON path, nothing changes"
bad=$(peer_json three "$TB_PUB_two" 1 100.64.0.9/33)
rc=0; netmap "$one" "$two" "$bad" | apply - > /dev/null 2> "$TB_DIR/bad.err" || rc=$?
cat "$TB_DIR/bad.err"
[ "$rc" -eq 1 ] || { echo "a bad netmap: exit $rc, want 1"; exit 1; }
grep -q 'peers\[2\].allowed_ips\[0\]' "$TB_DIR/bad.err" || { echo "the refusal does not name the path"; exit 1; }
grep -q 'HTTP 400' "$TB_DIR/bad.err" || { echo "a bad netmap is not a 400"; exit 1; }
"$TB_BIN" status --socket "$SOCK" --json > "$TB_DIR/status.json"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert len(s["peers"]) == 2, s["peers"]' \
  "$TB_DIR/status.json" || { echo "the bad netmap changed the peers"; exit 1; }
[ "$(curl -sS --max-time 20 --socks5 "$PROXY" http://100.64.0.3:8000/hello)" = "peer two" ] \
  || { echo "peer two unreachable after the bad PUT"; exit 1; }

echo "== kept in the state directory (0600) and resumed after a restart"
[ "$(stat -c %a "$STATE/netmap.json")" = 600 ] || { echo "netmap.json is not 0600"; exit 1; }
stop_node
start_node
grep -q 'event=netmap_resumed' "$TB_DIR/node.log" || { echo "no netmap_resumed logged"; exit 1; }
[ "$(curl -sS --max-time 20 --socks5 "$PROXY" http://100.64.0.3:8000/hello)" = "peer two" ] \
  || { echo "peer two unreachable after the restart"; exit 1; }
stop_node

echo "== a node configured from a file answers 409 naming it"
netmap "$one" > "$TB_DIR/node.json"
chown nobody "$TB_DIR/node.json" && chmod 600 "$TB_DIR/node.json"
start_node --netmap "$TB_DIR/node.json"
rc=0; apply "$TB_DIR/two.json" 2> "$TB_DIR/409.err" || rc=$?
cat "$TB_DIR/409.err"
[ "$rc" -eq 1 ] && grep -q 'HTTP 409' "$TB_DIR/409.err" && grep -q "$TB_DIR/node.json" "$TB_DIR/409.err" \
  || { echo "a PUT on a file-configured node is not a 409 naming the file"; exit 1; }
stop_node
! grep -q "$(cat "$STATE/private.key")" "$TB_DIR/node.log" || { echo "the private key was logged"; exit 1; }
echo "netmap_put: ok"
