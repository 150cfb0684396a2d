#!/usr/bin/env bash
# Issue 12: PersistentKeepalive with a host-name Endpoint. The node adds the peer, resolves
# `localhost`, then sets the endpoint; that must start the keepalive (a handshake) at once, so
# a peer that cannot reach the node (it has no endpoint for it, as when the node is behind NAT)
# hears from it without the node having any traffic of its own to send.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlka

PEER_PORT=29893 NODE_PORT=29894
tb_peer peer "$PEER_PORT" 100.64.0.2/10
node_key=$("$TB_BIN" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$TB_BIN" pubkey)
tb_peer_allow peer "$node_pub" 100.64.0.1/32 # no endpoint: the peer cannot start a handshake

cat > "$TB_DIR/wg0.conf" <<CONF
[Interface]
PrivateKey = $node_key
Address = 100.64.0.1/32
ListenPort = $NODE_PORT

[Peer]
PublicKey = $TB_PUB_peer
Endpoint = localhost:$PEER_PORT
AllowedIPs = 100.64.0.2/32
PersistentKeepalive = 25
CONF
chmod 600 "$TB_DIR/wg0.conf"
mkdir -p "$TB_DIR/state"
"$TB_BIN" up --config "$TB_DIR/wg0.conf" --proxy 127.0.0.1:18893 --state-dir "$TB_DIR/state" \
  --log-level debug > "$TB_DIR/node.log" 2>&1 &
TB_PIDS+=("$!")

echo "== the endpoint is resolved by name, and the handshake starts without traffic"
hs=0
for _ in $(seq 100); do
  hs=$(tb_ns peer wg show "$TB_IF_peer" latest-handshakes | awk '{print $2}')
  [ "${hs:-0}" != 0 ] && break
  sleep 0.1
done
grep -q 'event=endpoint_resolved' "$TB_DIR/node.log" || { cat "$TB_DIR/node.log"; echo "no endpoint_resolved"; exit 1; }
[ "${hs:-0}" != 0 ] || { cat "$TB_DIR/node.log"; echo "the peer saw no handshake in 10 s"; exit 1; }

echo "== the peer learned where the node is from it"
tb_ns peer wg show "$TB_IF_peer" endpoints | grep -q ":$NODE_PORT\$" \
  || { tb_ns peer wg show "$TB_IF_peer"; echo "the peer has no endpoint for the node"; exit 1; }
echo "ok"
