#!/usr/bin/env bash
# `tunless up` driven as a user would: a wg-quick file against a real wireguard-go peer in a
# network namespace, the node running as an unprivileged user, curl through its proxy.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlup

PEER_PORT=29861 NODE_PORT=29862 PROXY=127.0.0.1:18181 DNS_PORT=15399
RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)

tb_peer peer "$PEER_PORT" 100.64.0.2/10 fd7a:115c:a1e0::2/48
node_key=$("$TB_BIN" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$TB_BIN" pubkey)
# The peer routes MagicDNS (100.100.100.100) to us, as a Tailscale client would.
tb_peer_allow peer "$node_pub" 100.64.0.1/32,fd7a:115c:a1e0::1/128,100.100.100.100/32 \
  "127.0.0.1:$NODE_PORT"
tb_ns peer ip route add 100.100.100.100/32 dev "$TB_IF_peer"

# What the peer serves: a random file, and a slow endless stream for the reload test.
mkdir -p "$TB_DIR/www"
head -c 5000000 /dev/urandom > "$TB_DIR/www/blob"
want=$(sha256sum < "$TB_DIR/www/blob" | cut -d' ' -f1)
tb_bg "$TB_NS_peer" python3 -m http.server --bind 100.64.0.2 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http.log" 2>&1
tb_bg "$TB_NS_peer" python3 -m http.server --bind fd7a:115c:a1e0::2 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http6.log" 2>&1
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000

# A service on this host that peers reach through --publish.
tb_bg - python3 -m http.server --bind 127.0.0.1 18183 --directory "$TB_DIR/www" > "$TB_DIR/host-http.log" 2>&1
tb_wait_tcp - 127.0.0.1 18183

write_conf() { # extra peer lines appended for the reload test
  cat > "$TB_DIR/wg0.conf" <<CONF
[Interface]
PrivateKey = $node_key
Address = 100.64.0.1/32, fd7a:115c:a1e0::1/128
ListenPort = $NODE_PORT

[Peer]
# Name = web
PublicKey = $TB_PUB_peer
Endpoint = 127.0.0.1:$PEER_PORT
AllowedIPs = 100.64.0.2/32, fd7a:115c:a1e0::2/128
$1
CONF
  chown nobody "$TB_DIR/wg0.conf"
  chmod 600 "$TB_DIR/wg0.conf"
}
write_conf ""

mkdir -p "$TB_DIR/state" && chown nobody "$TB_DIR/state"
"${RUN_AS[@]}" "$TB_BIN" up --config "$TB_DIR/wg0.conf" --proxy "$PROXY" \
  --dns-listen "127.0.0.1:$DNS_PORT" --publish 8080=127.0.0.1:18183 --publish 8081=127.0.0.1:18184 \
  --forward tcp:127.0.0.1:18185=web:8000 --forward 18186=100.64.0.2:8000 \
  --state-dir "$TB_DIR/state" --log-level debug > "$TB_DIR/node.log" 2>&1 &
node_pid=$!
TB_PIDS+=("$node_pid")
tb_wait_tcp - 127.0.0.1 18181

echo "== unprivileged: the node runs as nobody"
[ "$(ps -o user= -p "$node_pid")" = nobody ] || { echo "node is not running as nobody"; exit 1; }

echo "== SOCKS5 and HTTP proxy, IPv4 and IPv6, bytes compared"
got=$(curl -sS --max-time 30 --socks5 "$PROXY" http://100.64.0.2:8000/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "socks5 download differs"; exit 1; }
got=$(curl -sS --max-time 30 -x "http://$PROXY" http://100.64.0.2:8000/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "http proxy download differs"; exit 1; }
got=$(curl -sS --max-time 30 --socks5 "$PROXY" 'http://[fd7a:115c:a1e0::2]:8000/blob' | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "IPv6 download differs"; exit 1; }
got=$(curl -sS --max-time 30 -p -x "http://$PROXY" http://100.64.0.2:8000/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "HTTP CONNECT download differs"; exit 1; }

echo "== MagicDNS: the local listener, names through the proxy, 100.100.100.100 in the tunnel"
dq() { dig +short +time=2 +tries=1 @127.0.0.1 -p "$DNS_PORT" "$@"; }
[ "$(dq web.mesh.internal A)" = 100.64.0.2 ] || { echo "A web.mesh.internal: $(dq web.mesh.internal A)"; exit 1; }
[ "$(dq WEB.Mesh.Internal. AAAA)" = fd7a:115c:a1e0::2 ] || { echo "AAAA by mixed case failed"; exit 1; }
[ "$(dq web A)" = 100.64.0.2 ] || { echo "short name web failed"; exit 1; }
[ "$(dq -x 100.64.0.2)" = web.mesh.internal. ] || { echo "PTR failed: $(dq -x 100.64.0.2)"; exit 1; }
dig +time=2 +tries=1 @127.0.0.1 -p "$DNS_PORT" nosuch.mesh.internal | grep -q 'status: NXDOMAIN' \
  || { echo "no NXDOMAIN for an unknown mesh name"; exit 1; }
got=$(curl -sS --max-time 30 --socks5-hostname "$PROXY" http://web:8000/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "socks5-hostname download by peer name differs"; exit 1; }
got=$(curl -sS --max-time 30 -x "http://$PROXY" http://web.mesh.internal:8000/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "http proxy download by peer name differs"; exit 1; }
ans=$(tb_ns peer dig +short +time=3 +tries=2 @100.100.100.100 web.mesh.internal A)
[ "$ans" = 100.64.0.2 ] || { echo "peer's query to 100.100.100.100 through the tunnel: '$ans'"; exit 1; }

echo "== --publish: the peer's kernel reaches a service on this host"
got=$(tb_ns peer curl -sS --max-time 30 http://100.64.0.1:8080/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "download through --publish differs"; exit 1; }
rc=0; tb_ns peer curl -sS --max-time 10 http://100.64.0.1:9999/ >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 7 ] || { echo "unpublished port: curl exit $rc, want 7 (refused)"; exit 1; }
rc=0; tb_ns peer curl -sS --max-time 10 http://100.100.100.100:8080/ >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 7 ] || { echo "published port answered on the MagicDNS address: curl exit $rc, want 7"; exit 1; }
rc=0; tb_ns peer curl -sS --max-time 10 http://100.64.0.1:8081/ >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 28 ] || { echo "published port with no service: curl exit $rc (want a reset, not success or a hang)"; exit 1; }

echo "== --forward: a local port to a mesh destination, by name and by address"
got=$(curl -sS --max-time 30 http://127.0.0.1:18185/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "download through --forward (by name) differs"; exit 1; }
got=$(curl -sS --max-time 30 http://127.0.0.1:18186/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "download through --forward (by address) differs"; exit 1; }

echo "== reload (SIGHUP) keeps an open connection to an unchanged peer"
# A slow download runs across the reload; it must complete intact.
curl -sS --max-time 60 --limit-rate 1M --socks5 "$PROXY" http://100.64.0.2:8000/blob \
  -o "$TB_DIR/slow.out" &
slow=$!
sleep 1
extra_pub=$(wg genkey | wg pubkey)
write_conf "
[Peer]
PublicKey = $extra_pub
AllowedIPs = 100.64.0.9/32"
kill -HUP "$node_pid"
wait "$slow"
[ "$(sha256sum < "$TB_DIR/slow.out" | cut -d' ' -f1)" = "$want" ] || { echo "download across reload differs"; exit 1; }
grep -q 'event=reloaded' "$TB_DIR/node.log" || { echo "no reload logged"; exit 1; }
grep -q 'event=peer_added.*allowed_ips=1' "$TB_DIR/node.log" || { echo "new peer not added"; exit 1; }

echo "== a bad file on reload is rejected, the old configuration stays"
echo "[Interface]
PrivateKey = nonsense" > "$TB_DIR/wg0.conf"
kill -HUP "$node_pid"
sleep 0.5
grep -q 'event=reload_rejected' "$TB_DIR/node.log" || { echo "bad reload not rejected"; exit 1; }
got=$(curl -sS --max-time 30 --socks5 "$PROXY" http://100.64.0.2:8000/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "download after rejected reload differs"; exit 1; }

echo "== an edit of the config file is picked up without a signal"
before=$(grep -c 'event=reloaded' "$TB_DIR/node.log")
write_conf ""
for _ in $(seq 50); do
  [ "$(grep -c 'event=reloaded' "$TB_DIR/node.log")" -gt "$before" ] && break
  sleep 0.1
done
[ "$(grep -c 'event=reloaded' "$TB_DIR/node.log")" -gt "$before" ] || { echo "file change not picked up"; exit 1; }
grep -q 'event=peer_removed' "$TB_DIR/node.log" || { echo "the extra peer was not removed"; exit 1; }

echo "== SIGTERM: listeners close at once, an open transfer gets up to 5 s to finish, exit 0"
curl -sS --max-time 30 --limit-rate 2M --socks5 "$PROXY" http://100.64.0.2:8000/blob \
  -o "$TB_DIR/drain.out" &
drain=$!
sleep 0.7
kill -TERM "$node_pid"
sleep 0.3
if curl -sS --max-time 3 --socks5 "$PROXY" http://100.64.0.2:8000/blob -o /dev/null 2>/dev/null; then
  echo "a new connection was accepted after SIGTERM"; exit 1
fi
wait "$drain" || { echo "the transfer in flight was cut"; exit 1; }
[ "$(sha256sum < "$TB_DIR/drain.out" | cut -d' ' -f1)" = "$want" ] || { echo "drained download differs"; exit 1; }
rc=0; wait "$node_pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "node exited $rc after SIGTERM"; exit 1; }
grep -q 'event=stopped' "$TB_DIR/node.log" || { echo "no clean stop logged"; exit 1; }
! grep -q "$node_key" "$TB_DIR/node.log" || { echo "the private key was logged"; exit 1; }
# The harness's variables (TB_BIN, ...) are not the node's: its unknown-variable warning is
# kept for real typos.
! grep -q 'no option reads this variable' "$TB_DIR/node.log" || { echo "a TUNLESS_ variable warning"; exit 1; }
echo "== every line the node logged is key=value (tests/tools/logcheck.py)"
# ... and names the peer one way in every module's lines: peer=web peer_key=KEY8.
python3 "$TB_SRC/tests/tools/logcheck.py" check "$TB_DIR/node.log" --peer "${TB_PUB_peer:0:8}=web" ||
  { echo "a line is not key=value, or names the peer another way"; exit 1; }
for ev in peer_added handshake_complete proxy_close; do # the node's, the engine's, the proxy's
  python3 "$TB_SRC/tests/tools/logcheck.py" find "$TB_DIR/node.log" event=$ev peer=web \
    "peer_key=${TB_PUB_peer:0:8}" >/dev/null || { echo "no $ev line with peer=web peer_key="; exit 1; }
done
grep -q 'event=proxy_close .*via=tunnel peer=web' "$TB_DIR/node.log" || { echo "no proxy_close line for a tunnel connection"; exit 1; }
# Each edit is reloaded once, whether a SIGHUP, the file watch or both saw it.
[ "$(grep -c 'event=reloaded' "$TB_DIR/node.log")" -eq 2 ] || { echo "an edit was reloaded twice"; exit 1; }
[ "$(grep -c 'event=reload_rejected' "$TB_DIR/node.log")" -eq 1 ] || { echo "a bad edit was rejected twice"; exit 1; }
[ "$(grep -c 'event=listening service=socks5+http' "$TB_DIR/node.log")" -eq 1 ] || { echo "the proxy was announced twice"; exit 1; }
echo "up: ok"
