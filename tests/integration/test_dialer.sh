#!/usr/bin/env bash
# The dialer against a real wireguard-go peer, with the node in a namespace of its own whose
# default routes (IPv4 and IPv6) lead to a sink namespace that takes every address (AnyIP) and
# whose TCP/UDP counters the test reads:
#   - Happy Eyeballs: MagicDNS names whose AAAA address is dead (A works), and the reverse,
#     connect well inside the connect timeout; a name with only dead addresses fails at
#     --connect-timeout;
#   - the node answers its own addresses: 100.100.100.100:53 through the proxy is MagicDNS
#     over TCP, the node's tunnel address reaches what it publishes, an unpublished port is
#     refused (SOCKS5 5, HTTP 502), an unrouted address of its own prefix is unreachable; and
#     none of it reaches the sink, while a real outside address does (the watch is live).
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tldial

PEER_PORT=29941 NODE_PORT=29942 PROXY=127.0.0.1:18941 SERVICE_PORT=18943
PROBE=(python3 "$TB_SRC/tests/tools/socks_probe.py" "$PROXY")
RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)

# The node's namespace and the sink behind its default routes.
NODE_NS=tldial-node SINK_NS=tldial-sink
ip netns add "$NODE_NS"; TB_NETNS+=("$NODE_NS")
ip netns add "$SINK_NS"; TB_NETNS+=("$SINK_NS")
ip -n "$NODE_NS" link set lo up
ip -n "$SINK_NS" link set lo up
ip -n "$NODE_NS" link add tldialn type veth peer name tldials netns "$SINK_NS"
ip -n "$NODE_NS" addr add 10.99.0.1/24 dev tldialn
ip -n "$NODE_NS" addr add fd99::1/64 dev tldialn nodad
ip -n "$SINK_NS" addr add 10.99.0.2/24 dev tldials
ip -n "$SINK_NS" addr add fd99::2/64 dev tldials nodad
ip -n "$NODE_NS" link set tldialn up
ip -n "$SINK_NS" link set tldials up
ip -n "$NODE_NS" route add default via 10.99.0.2
ip -n "$NODE_NS" -6 route add default via fd99::2
# The sink takes every destination as its own, so whatever reaches it is counted by its TCP/UDP.
ip -n "$SINK_NS" route add local 0.0.0.0/0 dev lo
ip -n "$SINK_NS" -6 route add local ::/0 dev lo
sink_count() { # TCP segments and UDP datagrams the sink received, v4 and v6
  ip netns exec "$SINK_NS" awk '
    $1 == "Tcp:" && $2 ~ /^[0-9]/ { n += $11 }            # InSegs
    $1 == "Udp:" && $2 ~ /^[0-9]/ { n += $2 + $3 }        # InDatagrams NoPorts
    $1 == "Udp6InDatagrams" || $1 == "Udp6NoPorts" { n += $2 }
    END { print n + 0 }' /proc/net/snmp /proc/net/snmp6
}

# The peer: wireguard-go's UDP socket in the node's namespace (the node reaches it on that
# namespace's loopback), its interface in the peer's namespace with the live addresses .2/::2;
# .99 and ::99 are routed to it but dropped there (no answer at all: dead addresses).
TB_WG_NETNS=$NODE_NS tb_peer peer "$PEER_PORT" 100.64.0.2/10 fd7a:115c:a1e0::2/48
node_key=$("$TB_BIN" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$TB_BIN" pubkey)
tb_peer_allow peer "$node_pub" 100.64.0.1/32,fd7a:115c:a1e0::1/128 "127.0.0.1:$NODE_PORT"
mkdir -p "$TB_DIR/www" && echo "served by the peer" > "$TB_DIR/www/index.html"
tb_bg "$TB_NS_peer" python3 -m http.server --bind 100.64.0.2 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http4.log" 2>&1
tb_bg "$TB_NS_peer" python3 -m http.server --bind fd7a:115c:a1e0::2 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http6.log" 2>&1
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000
tb_wait_tcp "$TB_NS_peer" fd7a:115c:a1e0::2 8000
# What the node publishes on its own tunnel address: a service in the node's namespace.
mkdir -p "$TB_DIR/pub" && echo "published by the node" > "$TB_DIR/pub/index.html"
tb_bg "$NODE_NS" python3 -m http.server --bind 127.0.0.1 "$SERVICE_PORT" --directory "$TB_DIR/pub" \
  > "$TB_DIR/pub.log" 2>&1
tb_wait_tcp "$NODE_NS" 127.0.0.1 "$SERVICE_PORT"

cat > "$TB_DIR/netmap.json" <<JSON
{
  "version": 1,
  "self": {"name": "node", "addresses": ["100.64.0.1/10", "fd7a:115c:a1e0::1/48"],
           "private_key": "$node_key", "listen_port": $NODE_PORT},
  "peers": [{"name": "web", "public_key": "$TB_PUB_peer", "endpoints": ["127.0.0.1:$PEER_PORT"],
             "allowed_ips": ["100.64.0.2/32", "fd7a:115c:a1e0::2/128",
                             "100.64.0.99/32", "fd7a:115c:a1e0::99/128"]}],
  "dns": {"suffix": "mesh.test", "extra_records": [
    {"name": "dead6.mesh.test", "type": "AAAA", "value": "fd7a:115c:a1e0::99"},
    {"name": "dead6.mesh.test", "type": "A", "value": "100.64.0.2"},
    {"name": "dead4.mesh.test", "type": "A", "value": "100.64.0.99"},
    {"name": "dead4.mesh.test", "type": "AAAA", "value": "fd7a:115c:a1e0::2"},
    {"name": "dead.mesh.test", "type": "A", "value": "100.64.0.99"},
    {"name": "dead.mesh.test", "type": "AAAA", "value": "fd7a:115c:a1e0::99"}]}
}
JSON
chown nobody "$TB_DIR/netmap.json" && chmod 600 "$TB_DIR/netmap.json"
mkdir -p "$TB_DIR/state" && chown nobody "$TB_DIR/state"
tb_bg "$NODE_NS" "${RUN_AS[@]}" "$TB_BIN" up --netmap "$TB_DIR/netmap.json" --proxy "$PROXY" \
  --publish "8080=127.0.0.1:$SERVICE_PORT" --connect-timeout 3s --state-dir "$TB_DIR/state" \
  --log-level debug > "$TB_DIR/node.log" 2>&1
tb_wait_tcp "$NODE_NS" 127.0.0.1 18941
in_node() { ip netns exec "$NODE_NS" "$@"; }
ms() { date +%s%3N; }

echo "== Happy Eyeballs: a dead AAAA (the A works), a dead A (the AAAA works)"
for name in dead6 dead4 web; do
  t0=$(ms)
  got=$(in_node curl -sS --max-time 10 --socks5-hostname "$PROXY" "http://$name.mesh.test:8000/")
  took=$(( $(ms) - t0 ))
  [ "$got" = "served by the peer" ] || { echo "$name: got '$got'"; exit 1; }
  [ "$took" -lt 2500 ] || { echo "$name took $took ms"; exit 1; }
  echo "$name.mesh.test: connected in $took ms"
done
got=$(in_node curl -sS --max-time 10 -x "http://$PROXY" "http://dead6.mesh.test:8000/")
[ "$got" = "served by the peer" ] || { echo "HTTP proxy to dead6: got '$got'"; exit 1; }

echo "== every address dead: the connect timeout (3 s), SOCKS5 6"
rep=$(in_node "${PROBE[@]}" --time dead.mesh.test 8000 2> "$TB_DIR/probe.err")
took=$(sed -n 's/^connect_ms=//p' "$TB_DIR/probe.err")
[ "$rep" = 6 ] || { echo "dead.mesh.test: SOCKS5 reply $rep, want 6"; exit 1; }
[ "$took" -ge 2800 ] && [ "$took" -lt 4500 ] || { echo "dead.mesh.test failed after $took ms"; exit 1; }

echo "== the node answers its own addresses; nothing reaches the host's routes"
before=$(sink_count)
mapfile -t dns < <(in_node "${PROBE[@]}" 100.100.100.100 53 --dns web.mesh.test)
[ "${dns[0]}" = 0 ] || { echo "100.100.100.100:53: SOCKS5 reply ${dns[0]}"; exit 1; }
printf '%s\n' "${dns[@]:1}" | grep -qx 100.64.0.2 || { echo "MagicDNS over TCP answered: ${dns[*]}"; exit 1; }
got=$(in_node curl -sS --max-time 10 --socks5 "$PROXY" http://100.64.0.1:8080/)
[ "$got" = "published by the node" ] || { echo "own address, published port: '$got'"; exit 1; }
got=$(in_node curl -sS --max-time 10 --socks5 "$PROXY" 'http://[fd7a:115c:a1e0::1]:8080/')
[ "$got" = "published by the node" ] || { echo "own IPv6 address, published port: '$got'"; exit 1; }
got=$(in_node curl -sS --max-time 10 --socks5-hostname "$PROXY" http://node.mesh.test:8080/)
[ "$got" = "published by the node" ] || { echo "own name, published port: '$got'"; exit 1; }
rep=$(in_node "${PROBE[@]}" 100.64.0.1 9)
[ "$rep" = 5 ] || { echo "own address, unpublished port: SOCKS5 $rep, want 5"; exit 1; }
code=$(in_node curl -s -o /dev/null -w '%{http_connect}' --max-time 10 -p -x "http://$PROXY" \
  http://100.64.0.1:9/ || true)
[ "$code" = 502 ] || { echo "own address, unpublished port: HTTP $code, want 502"; exit 1; }
rep=$(in_node "${PROBE[@]}" 100.100.100.100 80)
[ "$rep" = 5 ] || { echo "100.100.100.100:80: SOCKS5 $rep, want 5"; exit 1; }
rep=$(in_node "${PROBE[@]}" 100.64.0.77 80)
[ "$rep" = 3 ] || { echo "an unrouted address of the node's prefix: SOCKS5 $rep, want 3"; exit 1; }
rep=$(in_node "${PROBE[@]}" fd7a:115c:a1e0::77 80)
[ "$rep" = 3 ] || { echo "an unrouted IPv6 address of the node's prefix: SOCKS5 $rep, want 3"; exit 1; }
after=$(sink_count)
[ "$after" = "$before" ] || { echo "$((after - before)) packets left through the host's routes"; exit 1; }

echo "== the watch is live: an outside address does go out through the host"
in_node "${PROBE[@]}" 198.51.100.7 80 > /dev/null || true
[ "$(sink_count)" -gt "$after" ] || { echo "the sink saw nothing of a direct destination"; exit 1; }
! grep -q 'no option reads this variable' "$TB_DIR/node.log" || { echo "a TUNLESS_ variable warning"; exit 1; }
echo "dialer: ok"
