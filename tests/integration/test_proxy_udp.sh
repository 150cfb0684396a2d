#!/usr/bin/env bash
# UDP through the node against a real wireguard-go peer: SOCKS5 UDP ASSOCIATE to mesh
# destinations (IPv4, IPv6, a MagicDNS name) and to a host address, --forward udp: and
# --publish udp:, payloads compared byte for byte by tests/tools/udp_probe.py. Then a reload
# that changes the node's tunnel address under open mesh connections and UDP flows.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlpu

PEER_PORT=29881 NODE_PORT=29882 PROXY_PORT=18201 FWD_PORT=18202 HOST_ECHO=18203
PROBE=(python3 "$TB_SRC/tests/tools/udp_probe.py")
RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)

tb_peer peer "$PEER_PORT" 100.64.0.2/10 fd7a:115c:a1e0::2/48
node_key=$("$TB_BIN" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$TB_BIN" pubkey)
# 100.64.0.11 is the address the reload below moves the node to.
tb_peer_allow peer "$node_pub" 100.64.0.1/32,100.64.0.11/32,fd7a:115c:a1e0::1/128 \
  "127.0.0.1:$NODE_PORT"

# UDP echo services: two in the peer's namespace, one on this host.
tb_bg "$TB_NS_peer" "${PROBE[@]}" serve 100.64.0.2 7777
tb_bg "$TB_NS_peer" "${PROBE[@]}" serve fd7a:115c:a1e0::2 7777
tb_bg - "${PROBE[@]}" serve 127.0.0.1 "$HOST_ECHO"
# And a TCP service for the connection that lives across the reload: big enough that the
# buffers on the way (lwIP window, proxy, loopback socket) cannot hold all of it.
mkdir -p "$TB_DIR/www"
head -c 32000000 /dev/urandom > "$TB_DIR/www/blob"
tb_bg "$TB_NS_peer" python3 -m http.server --bind 100.64.0.2 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http.log" 2>&1
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000

write_conf() { # $1: the node's IPv4 tunnel address
  cat > "$TB_DIR/wg0.conf" <<CONF
[Interface]
PrivateKey = $node_key
Address = $1/32, fd7a:115c:a1e0::1/128
ListenPort = $NODE_PORT

[Peer]
# Name = echo
PublicKey = $TB_PUB_peer
Endpoint = 127.0.0.1:$PEER_PORT
AllowedIPs = 100.64.0.2/32, fd7a:115c:a1e0::2/128
CONF
  chown nobody "$TB_DIR/wg0.conf"
  chmod 600 "$TB_DIR/wg0.conf"
}
write_conf 100.64.0.1

mkdir -p "$TB_DIR/state" && chown nobody "$TB_DIR/state"
"${RUN_AS[@]}" "$TB_BIN" up --config "$TB_DIR/wg0.conf" --proxy "127.0.0.1:$PROXY_PORT" \
  --forward "udp:127.0.0.1:$FWD_PORT=echo:7777" --publish "udp:5353=127.0.0.1:$HOST_ECHO" \
  --state-dir "$TB_DIR/state" --log-level debug > "$TB_DIR/node.log" 2>&1 &
node_pid=$!
TB_PIDS+=("$node_pid")
tb_wait_tcp - 127.0.0.1 "$PROXY_PORT"

echo "== SOCKS5 UDP ASSOCIATE: mesh IPv4, IPv6, a MagicDNS name, and a host address"
"${PROBE[@]}" socks5 127.0.0.1 "$PROXY_PORT" 100.64.0.2:7777 '[fd7a:115c:a1e0::2]:7777' \
  echo:7777 "127.0.0.1:$HOST_ECHO"
grep -q 'event=proxy_open .*proto=socks5_udp relay=127.0.0.1:' "$TB_DIR/node.log" || { echo "no association logged"; exit 1; }

echo "== --forward udp: a local port to a mesh destination by name, two clients at once"
"${PROBE[@]}" send 127.0.0.1 "$FWD_PORT" &
first=$!
"${PROBE[@]}" send 127.0.0.1 "$FWD_PORT"
wait "$first"

echo "== --publish udp: the peer's kernel reaches a UDP service on this host"
tb_ns peer "${PROBE[@]}" send 100.64.0.1 5353
grep -q 'event=publish_accept proto=udp' "$TB_DIR/node.log" || { echo "no UDP publish logged"; exit 1; }
echo "== the published service's replies come only from the service"
# The session's host socket is unconnected: datagrams from anyone else must not reach the peer.
tb_ns peer "${PROBE[@]}" quiet 100.64.0.1 5353 3 > "$TB_DIR/quiet.log" 2>&1 &
quiet=$!
for _ in $(seq 50); do grep -q ready "$TB_DIR/quiet.log" && break; sleep 0.1; done
ports=$(ss -Hunap | awk -v pid="pid=$node_pid," '$0 ~ pid && ($4 ~ /^0\.0\.0\.0:/ || $4 ~ /^\*:/) {sub(/.*:/, "", $4); print $4}')
[ -n "$ports" ] || { echo "no host socket of the publish session found"; exit 1; }
for p in $ports; do
  python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"spoofed", ("127.0.0.1", int(sys.argv[1])))' "$p"
done
wait "$quiet" || { cat "$TB_DIR/quiet.log"; echo "a stranger's datagram was relayed to the peer"; exit 1; }

echo "== an unpublished UDP port answers ICMP port unreachable"
tb_ns peer "${PROBE[@]}" send 100.64.0.1 5354 --refused

echo "== a reload that moves the node's address resets open mesh connections, the node goes on"
curl -sS --max-time 60 --limit-rate 200K --socks5 "127.0.0.1:$PROXY_PORT" \
  http://100.64.0.2:8000/blob -o /dev/null 2> "$TB_DIR/cut.log" &
cut=$!
"${PROBE[@]}" send 127.0.0.1 "$FWD_PORT" # a forward session with an open flow
sleep 1
write_conf 100.64.0.11
kill -HUP "$node_pid"
rc=0; wait "$cut" || rc=$?
[ "$rc" -ne 0 ] || { echo "the connection from the old address survived the address change"; exit 1; }
kill -0 "$node_pid" || { echo "the node died on the address change"; exit 1; }
grep -q 'event=reloaded' "$TB_DIR/node.log" || { echo "no reload logged"; exit 1; }
"${PROBE[@]}" send 127.0.0.1 "$FWD_PORT"
"${PROBE[@]}" socks5 127.0.0.1 "$PROXY_PORT" echo:7777
got=$(curl -sS --max-time 30 --socks5 "127.0.0.1:$PROXY_PORT" http://100.64.0.2:8000/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$(sha256sum < "$TB_DIR/www/blob" | cut -d' ' -f1)" ] || { echo "download after the move differs"; exit 1; }

kill -TERM "$node_pid"
rc=0; wait "$node_pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "node exited $rc after SIGTERM"; exit 1; }
echo "proxy_udp: ok"
