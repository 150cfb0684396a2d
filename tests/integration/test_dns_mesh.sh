#!/usr/bin/env bash
# DNS inside the mesh: upstream resolvers reached through the tunnel (a wg-quick-style mesh on
# 10.77.0.0/24, not 100.64/10), and MagicDNS at 100.100.100.100:53 over UDP and TCP.
# A wireguard-go peer runs two dnsmasq on its tunnel address: :53 serves the split-DNS route
# corp.example, :5353 the default route. Checked with real dig from the host (--dns-listen)
# and from inside the peer's namespace (100.100.100.100), and with curl by a name only the
# peer's dnsmasq knows.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tldm
for bin in dig dnsmasq curl python3; do
  command -v "$bin" >/dev/null 2>&1 || { echo "skip: $bin not installed"; exit 77; }
done

PEER_PORT=29871 NODE_PORT=29872 PROXY=127.0.0.1:18191 DNS_PORT=15409

fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "ok: $*"; }

tb_peer gw "$PEER_PORT" 10.77.0.2/24 10.77.0.9/32
node_key=$("$TB_BIN" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$TB_BIN" pubkey)
tb_peer_allow gw "$node_pub" 10.77.0.1/32,100.100.100.100/32 "127.0.0.1:$NODE_PORT"
tb_ns gw ip route add 100.100.100.100/32 dev "$TB_IF_gw"

# The peer's resolvers. The default one also claims corp.example (wrongly): a split-DNS answer
# from it would show the route was not used. big.example does not fit a UDP reply.
big=()
for i in $(seq 12); do big+=(--txt-record="big.example,$(printf 'r%02d-%0200d' "$i" 0)"); done
dns_common=(--keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=10.77.0.2
            --pid-file= --user=root --log-queries)
tb_bg "$TB_NS_gw" dnsmasq "${dns_common[@]}" --port=53 --log-facility="$TB_DIR/corp-dns.log" \
  --address=/corp.example/10.77.0.9
tb_bg "$TB_NS_gw" dnsmasq "${dns_common[@]}" --port=5353 --log-facility="$TB_DIR/default-dns.log" \
  --address=/corp.example/10.99.99.99 --host-record=files.example,10.77.0.9 --address=/gone.example/ --address=/dflt.example/10.77.0.9 "${big[@]}"

# A service only reachable by the name the peer's default resolver gives it.
mkdir -p "$TB_DIR/www"
head -c 300000 /dev/urandom > "$TB_DIR/www/blob"
want=$(sha256sum < "$TB_DIR/www/blob" | cut -d' ' -f1)
tb_bg "$TB_NS_gw" python3 -m http.server --bind 10.77.0.9 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http.log" 2>&1
tb_wait_tcp "$TB_NS_gw" 10.77.0.9 8000
tb_wait_tcp "$TB_NS_gw" 10.77.0.2 53
tb_wait_tcp "$TB_NS_gw" 10.77.0.2 5353

cat > "$TB_DIR/netmap.json" <<JSON
{
  "version": 1,
  "self": {"name": "node", "addresses": ["10.77.0.1/32"], "private_key": "$node_key",
           "listen_port": $NODE_PORT},
  "peers": [{"name": "gw", "public_key": "$TB_PUB_gw", "endpoints": ["127.0.0.1:$PEER_PORT"],
             "allowed_ips": ["10.77.0.2/32", "10.77.0.9/32"]}],
  "dns": {"suffix": "mesh.internal.", "resolvers": ["10.77.0.2:5353"],
          "routes": {"corp.example.": ["10.77.0.2"]}, "search": ["example"]}
}
JSON
chmod 600 "$TB_DIR/netmap.json"

"$TB_BIN" up --netmap "$TB_DIR/netmap.json" --proxy "$PROXY" \
  --dns-listen "127.0.0.1:$DNS_PORT" --state-dir "$TB_DIR/state" --log-level debug \
  > "$TB_DIR/node.log" 2>&1 &
node_pid=$!
TB_PIDS+=("$node_pid")
tb_wait_tcp - 127.0.0.1 18191

host_dig() { dig +time=3 +tries=2 @127.0.0.1 -p "$DNS_PORT" "$@" 2>&1 || true; }
peer_dig() { tb_ns gw dig +time=3 +tries=2 @100.100.100.100 "$@" 2>&1 || true; }
expect_short() { # what, wanted, command...
  local what=$1 want=$2 got; shift 2
  got=$("$@" +short | tr '\n' ' ' | sed 's/ $//')
  [ "$got" = "$want" ] || fail "$what: got '$got', wanted '$want'"
  pass "$what"
}
queries() { grep -c "query\[$2\] $3 from 10.77.0.1" "$TB_DIR/$1-dns.log" || true; }

echo "== the host's listener: upstreams inside the mesh, through the tunnel"
expect_short "split route corp.example" 10.77.0.9 host_dig www.corp.example A
[ "$(queries corp A www.corp.example)" -ge 1 ] || fail "the corp resolver was not asked over the tunnel"
expect_short "default route" 10.77.0.9 host_dig files.example A
[ "$(queries default A files.example)" -ge 1 ] || fail "the default resolver was not asked over the tunnel"
got=$(host_dig +tcp big.example TXT)
grep -q "ANSWER: 12," <<<"$got" || { echo "$got"; fail "big TXT (upstream over TCP through the tunnel)"; }
# dnsmasq answers TCP in a forked child: a second pid logging the query from our tunnel address.
pids=$(grep 'query\[TXT\] big.example from 10.77.0.1' "$TB_DIR/default-dns.log" | grep -o 'dnsmasq\[[0-9]*\]' | sort -u | wc -l)
[ "$pids" -ge 2 ] || fail "big TXT: the upstream was not asked over TCP through the tunnel"
pass "a reply too big for UDP: the upstream asked over TCP inside the mesh"
got=$(host_dig www.gone.example A)
grep -q "status: NXDOMAIN" <<<"$got" || { echo "$got"; fail "upstream's NXDOMAIN passed through"; }
pass "the upstream's NXDOMAIN passed through"

echo "== 100.100.100.100 from the peer: UDP and TCP, local and forwarded"
expect_short "peer name over UDP" "10.77.0.2 10.77.0.9" peer_dig +notcp gw.mesh.internal A
expect_short "peer name over TCP" "10.77.0.2 10.77.0.9" peer_dig +tcp gw.mesh.internal A
expect_short "node's own name over TCP" 10.77.0.1 peer_dig +tcp node A
expect_short "PTR over TCP" gw.mesh.internal. peer_dig +tcp -x 10.77.0.2
expect_short "forwarded (split) over TCP" 10.77.0.9 peer_dig +tcp other.corp.example A
expect_short "forwarded (default) over UDP" 10.77.0.9 peer_dig +notcp files.example A
got=$(peer_dig +tcp big.example TXT)
grep -q "ANSWER: 12," <<<"$got" || { echo "$got"; fail "big TXT over TCP from the peer"; }
pass "a multi-segment reply over TCP from 100.100.100.100"
got=$(peer_dig +notcp +ignore +bufsize=1232 big.example TXT)
grep -q "flags: qr.* tc" <<<"$got" || { echo "$got"; fail "TC over UDP from 100.100.100.100"; }
pass "TC over UDP from 100.100.100.100"

# RFC 7766 on the netstack: two queries in one segment, both answered on one connection.
tb_ns gw python3 "$TB_SRC/tests/tools/dns_pipeline.py" 100.100.100.100 53 \
  x.corp.example node.mesh.internal --order --fin || fail "pipelined TCP at 100.100.100.100"
pass "pipelined TCP at 100.100.100.100, answered as they complete, closed after FIN"

echo "== the proxy resolves a name only the in-mesh resolver knows"
got=$(curl -sS --max-time 30 --socks5-hostname "$PROXY" http://files.example:8000/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "download from files.example through SOCKS5 differs"
pass "curl --socks5-hostname files.example"
# A single label the proxy resolves: files.mesh.internal is NXDOMAIN, then the search domain.
got=$(curl -sS --max-time 30 --socks5-hostname "$PROXY" http://files:8000/blob | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "download from files (search domain example) differs"
rc=0; curl -sS --max-time 30 --socks5-hostname "$PROXY" http://nosuchhost:8000/ -o /dev/null 2>/dev/null || rc=$?
[ "$rc" -eq 97 ] || fail "an unknown single label: curl exit $rc, want 97 (SOCKS5 host unreachable)"
pass "single-label names through the search domain; unknown ones refused"

echo "== new addresses restart the netstack: held conns released, upstreams move to the new one"
# A TCP connection to 100.100.100.100 held open across the restart must be closed, not hang.
tb_ns gw python3 - "$TB_DIR/held" <<'EOF' &
import socket, struct, sys
s = socket.create_connection(("100.100.100.100", 53), timeout=20)
m = struct.pack(">HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\x02gw\x04mesh\x08internal\x00\x00\x01\x00\x01"
s.sendall(struct.pack(">H", len(m)) + m)
n, = struct.unpack(">H", s.recv(2))
open(sys.argv[1], "w").write("answered\n")
try:
    while s.recv(4096):
        pass
    r = "closed"
except ConnectionResetError:
    r = "closed"
except socket.timeout:
    r = "hung"
open(sys.argv[1], "a").write(r + "\n")
EOF
held=$!
for _ in $(seq 50); do grep -q answered "$TB_DIR/held" 2>/dev/null && break; sleep 0.1; done
grep -q answered "$TB_DIR/held" || fail "held TCP query not answered"
sed -i 's|"addresses": \["10.77.0.1/32"\]|"addresses": ["10.77.0.1/32", "fd00:77::1/128"]|' "$TB_DIR/netmap.json"
kill -HUP "$node_pid"
for _ in $(seq 50); do grep -q 'event=reloaded' "$TB_DIR/node.log" && break; sleep 0.1; done
grep -q 'event=reloaded' "$TB_DIR/node.log" || fail "no reload"
wait "$held" || true
grep -q closed "$TB_DIR/held" || fail "a TCP conn to 100.100.100.100 was not released at the restart: $(cat "$TB_DIR/held")"
pass "TCP conn to 100.100.100.100 closed when its netstack went away"
expect_short "split route after the restart" 10.77.0.9 host_dig after.corp.example A
expect_short "default route after the restart" 10.77.0.9 host_dig after.dflt.example A
expect_short "forwarded over TCP at 100.100.100.100 after the restart" 10.77.0.9 peer_dig +tcp again.corp.example A

echo "== SIGTERM: a clean stop"
kill -TERM "$node_pid"
rc=0; wait "$node_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "node exited $rc"
! grep -qE "Sanitizer|runtime error" "$TB_DIR/node.log" || fail "sanitizer report"
echo "dns_mesh: ok"
