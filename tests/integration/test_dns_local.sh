#!/usr/bin/env bash
# The resolver behind a local listener, asked by real dig: MagicDNS answers, PTR, NXDOMAIN,
# TC over UDP then the full answer over TCP, pipelined TCP, FORMERR for garbage, and forwarding
# to real dnsmasq upstreams (default route, split-DNS route, cache) and SERVFAIL for an
# upstream that never answers. Everything on 127.0.0.1, ports 15350-15359.
set -euo pipefail

TOOLS=${TB_TOOLS:?}
for bin in dig dnsmasq python3; do
    command -v "$bin" >/dev/null 2>&1 || { echo "skip: $bin not installed"; exit 77; }
done

PORT=15350 UP1=15351 UP2=15352 DEAD=15353
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; [ -f "$WORK/serve.err" ] && cat "$WORK/serve.err"; exit 1; }
pass() { echo "ok: $*"; }

# Upstreams: two dnsmasq (default route, corp route) and a UDP/TCP socket that never answers.
dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
    --port=$UP1 --pid-file= --log-queries --log-facility="$WORK/up1.log" \
    --address=/default.example/10.7.7.7 --address=/gone.example/ &
PIDS+=($!)
dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
    --port=$UP2 --pid-file= --log-queries --log-facility="$WORK/up2.log" --local-ttl=300 \
    --address=/corp.example/10.1.2.3 --address=/deep.corp.example/10.1.2.4 &
PIDS+=($!)
python3 -c '
import socket, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", '$DEAD'))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", '$DEAD')); t.listen(8)
time.sleep(600)' &
PIDS+=($!)

"$TOOLS/dns_serve" --listen 127.0.0.1:$PORT --timeout 1500 --tcp-idle 300 --max-tcp 8 \
    --host db=100.64.0.2,fd7a:115c:a1e0::2 --host self=100.64.0.1,fd7a:115c:a1e0::1 \
    --record git.corp.example:A:10.0.0.5 --record alias.mesh.internal:CNAME:db.mesh.internal \
    --record note.mesh.internal:TXT:hello-world --many big.mesh.internal=100 \
    --upstream 127.0.0.1:$UP1 --route corp.example=127.0.0.1:$UP2 \
    --route dead.example=127.0.0.1:$DEAD >"$WORK/serve.out" 2>"$WORK/serve.err" &
PIDS+=($!)
for _ in $(seq 50); do grep -q '^ready' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
grep -q "^ready $PORT" "$WORK/serve.out" || fail "dns_serve did not start"
for _ in $(seq 50); do
    dig @127.0.0.1 -p $UP2 +short +time=1 +tries=1 x.corp.example >/dev/null 2>&1 && break; sleep 0.1
done

D=(dig @127.0.0.1 -p $PORT +time=5 +tries=1)
expect() { # description, expected, dig args...
    local what=$1 want=$2; shift 2
    local got
    got=$("${D[@]}" "$@" 2>&1) || true
    grep -qE -- "$want" <<<"$got" || { echo "$got"; fail "$what: wanted /$want/"; }
    pass "$what"
}
short() { "${D[@]}" +short "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
expect_short() { # description, expected exactly, dig args...
    local what=$1 want=$2 got; shift 2
    got=$(short "$@")
    [ "$got" = "$want" ] || fail "$what: got '$got', wanted '$want'"
    pass "$what"
}

# MagicDNS
expect_short "A for FQDN" "100.64.0.2" db.mesh.internal A
expect_short "AAAA for FQDN" "fd7a:115c:a1e0::2" db.mesh.internal AAAA
expect_short "A for short name" "100.64.0.2" db A
expect_short "case-insensitive" "100.64.0.1" SeLf.MESH.internal. A
expect_short "PTR v4" "db.mesh.internal." -x 100.64.0.2
expect_short "PTR v6" "self.mesh.internal." -x fd7a:115c:a1e0::1
expect_short "CNAME chased locally" "db.mesh.internal. 100.64.0.2" alias.mesh.internal A
expect_short "TXT record" '"hello-world"' note.mesh.internal TXT
expect_short "extra A outside the suffix" "10.0.0.5" git.corp.example A
expect "NXDOMAIN under the suffix" "status: NXDOMAIN" nope.mesh.internal A
expect "NXDOMAIN in the mesh reverse zone" "status: NXDOMAIN" -x 100.64.99.99
got=$("${D[@]}" db.mesh.internal MX)
grep -q "status: NOERROR" <<<"$got" && grep -q "ANSWER: 0," <<<"$got" || fail "NOERROR empty"
pass "NOERROR, no answers, for a known name's other type"
expect "authoritative flag" "flags: qr aa rd ra" db.mesh.internal

# Truncation: 100 A records do not fit 512 bytes (no EDNS) nor 1232 (EDNS).
expect "TC over UDP without EDNS" "flags: qr aa tc rd ra;.*ANSWER: 2[0-9]," +noedns +ignore big.mesh.internal
expect "TC over UDP with EDNS 1232" "flags: qr aa tc rd ra;.*ANSWER: [0-9]+," +bufsize=1232 +ignore big.mesh.internal
expect "dig retries over TCP and gets all 100" "ANSWER: 100," big.mesh.internal
expect "the same name over TCP" "ANSWER: 100," +tcp big.mesh.internal
[ "$(short +tcp big.mesh.internal | wc -w)" = 100 ] || fail "100 addresses over TCP"
expect "A over TCP" "100.64.0.2" +tcp db.mesh.internal

# Pipelined TCP (two queries in one write, both answered) and garbage answered FORMERR.
python3 "$TB_SRC/tests/tools/dns_pipeline.py" 127.0.0.1 "$PORT" db.mesh.internal \
  self.mesh.internal/28 || fail "pipelined TCP"
python3 - $PORT <<'EOF' || fail "FORMERR"
import socket, struct, sys
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
# A header claiming one question, followed by a compression pointer to itself.
u.sendto(struct.pack(">HHHHHH", 0x3333, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01", ("127.0.0.1", port))
r, _ = u.recvfrom(4096)
qid, flags = struct.unpack(">HH", r[:4])
assert qid == 0x3333 and (flags & 15) == 1, (hex(qid), hex(flags))
print("FORMERR ok")
EOF
pass "pipelined TCP, FORMERR for a looping name"

# TCP connections: bounded (8 here), idle ones closed (300 ms here).
python3 - $PORT <<'EOF' || fail "TCP bounds / idle timeout"
import socket, struct, sys
port = int(sys.argv[1])
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x02db\x04mesh\x08internal\x00\x00\x01\x00\x01"
conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(12)]
answered = closed = 0
for s in conns:
    try:
        s.sendall(struct.pack(">H", len(q)) + q)
        if len(s.recv(2)) == 2:
            answered += 1
        else:
            closed += 1
    except (ConnectionResetError, BrokenPipeError):
        closed += 1
# (a connection an earlier check left may still count against the bound)
assert 1 <= answered <= 8 and answered + closed == 12, (answered, closed)
# the server closes an idle connection: recv reaches EOF
s = conns[0]
while s.recv(4096):
    pass
print("TCP bounds and idle close ok")
EOF
pass "TCP connections bounded, idle ones closed"

# Forwarding
expect_short "default route to dnsmasq" "10.7.7.7" www.default.example A
expect "upstream NXDOMAIN passed through" "status: NXDOMAIN" www.gone.example A
expect_short "split DNS route" "10.1.2.3" www.corp.example A
expect_short "longest suffix (route, not default)" "10.1.2.4" a.deep.corp.example A
expect_short "split DNS over TCP" "10.1.2.3" +tcp other.corp.example A
expect "client's query ID kept (forwarded)" "status: NOERROR, id: 4242$" +qid=4242 fresh.corp.example A
expect "cached answer, client's ID kept" "status: NOERROR, id: 4343$" +qid=4343 www.corp.example A
n=$(grep -c 'query\[A\] www.corp.example' "$WORK/up2.log" || true)
[ "$n" = 1 ] || fail "cache: upstream asked $n times for www.corp.example, wanted 1"
pass "cache: upstream asked once"
expect "SERVFAIL when the upstream never answers" "status: SERVFAIL" x.dead.example A

kill "${PIDS[-1]}"
rc=0
wait "${PIDS[-1]}" || rc=$?
[ "$rc" = 0 ] || fail "dns_serve exited with $rc"
! grep -qE "Sanitizer|runtime error" "$WORK/serve.err" || fail "sanitizer report"
grep -q "formerr=1" "$WORK/serve.err" || fail "stats: $(cat "$WORK/serve.err")"
grep -qE "cache_hits=[1-9]" "$WORK/serve.err" || fail "stats: $(cat "$WORK/serve.err")"
grep -qE "upstream_failures=1 " "$WORK/serve.err" || fail "stats: $(cat "$WORK/serve.err")"
cat "$WORK/serve.err"
echo "all dns_local checks passed"
