#!/usr/bin/env bash
# A node started with no configuration: it makes a key (0600) in its state directory, prints
# that key's [Peer] block, serves its proxy, and picks up STATE_DIR/tunless.conf on SIGHUP;
# after which the mesh works through it. A restart keeps the same key.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlkg
RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
PROXY=127.0.0.1:18581
state="$TB_DIR/state"
mkdir -p "$state" && chown nobody "$state" && chmod 700 "$state"

start() {
  "${RUN_AS[@]}" "$TB_BIN" up --proxy "$PROXY" --state-dir "$state" > "$TB_DIR/node.log" 2>&1 &
  node_pid=$!
  TB_PIDS+=("$node_pid")
  tb_wait_tcp - 127.0.0.1 18581
}
start

echo "== the key: created, 0600, owned by the node's user, announced"
[ "$(stat -c '%a %U' "$state/private.key")" = "600 nobody" ] || { ls -l "$state"; exit 1; }
pub=$("$TB_BIN" pubkey < "$state/private.key")
grep -q "^PublicKey = $pub\$" "$TB_DIR/node.log" || { echo "no [Peer] block for $pub"; exit 1; }
port=$(sed -n 's/^Endpoint = <this host>:\([0-9]*\)$/\1/p' "$TB_DIR/node.log")
[ -n "$port" ] || { echo "no endpoint port printed"; exit 1; }
# It says where the key is rather than asking for it to be pasted: the config names the file.
grep -q "^Then write $state/tunless.conf, a wg-quick file whose \[Interface\] has\$" "$TB_DIR/node.log" &&
  grep -q '^  PrivateKeyFile = private.key$' "$TB_DIR/node.log" ||
  { cat "$TB_DIR/node.log"; echo "no PrivateKeyFile instructions"; exit 1; }

echo "== the proxy serves direct destinations meanwhile"
tb_bg - python3 -m http.server --bind 127.0.0.1 18582 --directory "$TB_SRC/examples" \
  > "$TB_DIR/host-http.log" 2>&1
tb_wait_tcp - 127.0.0.1 18582
curl -sS --max-time 10 --socks5 "$PROXY" http://127.0.0.1:18582/wg0.conf | cmp - "$TB_SRC/examples/wg0.conf"

echo "== a configuration dropped into the state directory (as printed) is picked up on SIGHUP"
tb_peer peer 29591 100.64.0.2/10
tb_peer_allow peer "$pub" 100.64.0.1/32 "127.0.0.1:$port"
tb_bg "$TB_NS_peer" python3 -m http.server --bind 100.64.0.2 8000 --directory "$TB_SRC/examples" \
  > "$TB_DIR/http.log" 2>&1
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000
cat > "$state/tunless.conf" <<CONF
[Interface]
PrivateKeyFile = private.key
Address = 100.64.0.1/32
[Peer]
PublicKey = $TB_PUB_peer
Endpoint = 127.0.0.1:29591
AllowedIPs = 100.64.0.2/32
CONF
chown nobody "$state/tunless.conf" && chmod 600 "$state/tunless.conf"
kill -HUP "$node_pid"
for _ in $(seq 50); do grep -q 'event=reloaded' "$TB_DIR/node.log" && break; sleep 0.1; done
curl -sS --max-time 20 --socks5 "$PROXY" http://100.64.0.2:8000/wg0.conf | cmp - "$TB_SRC/examples/wg0.conf"

echo "== a restart keeps the key"
kill -TERM "$node_pid"; wait "$node_pid" || true
start
[ "$("$TB_BIN" pubkey < "$state/private.key")" = "$pub" ] || { echo "key changed"; exit 1; }
grep -q "public_key=$pub" "$TB_DIR/node.log" || { echo "restarted node uses another key"; exit 1; }
# ... and its UDP port, so the [Peer] block printed on the first start stays valid.
[ "$(stat -c '%a' "$state/listen-port")" = 600 ] || { ls -l "$state"; exit 1; }
grep -q "event=up public_key=$pub port=$port " "$TB_DIR/node.log" ||
  { grep 'event=up' "$TB_DIR/node.log"; echo "restarted node moved off port $port"; exit 1; }
curl -sS --max-time 20 --socks5 "$PROXY" http://100.64.0.2:8000/wg0.conf | cmp - "$TB_SRC/examples/wg0.conf"
echo "keygen: ok"
