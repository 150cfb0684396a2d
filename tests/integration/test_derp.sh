#!/usr/bin/env bash
# `tunless derp` against an independent Python DERP client (tests/tools/derp_client.py): login,
# forwarding, fast start, PeerGone, Health on a duplicate key, bad input, a slow reader,
# Restarting on SIGTERM, verify-clients (and its SIGHUP reload), rate limits, two meshed
# servers (one killed and restarted), TLS (with openssl s_client), two servers meshed over
# https, STUN, and 1000 clients.
# Loopback only, ports 24300-24399; no namespaces, no root needed.
set -euo pipefail

BIN=${TB_BIN:?}
SRC=${TB_SRC:?}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import nacl.public' 2>/dev/null || { echo "skip: python3-nacl not installed"; exit 77; }
command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }
T="$PY $SRC/tests/tools/derp_test.py"

WORK=$(mktemp -d /tmp/tunless-derp-XXXXXX)
PIDS=()
cleanup() {
    local rc=$? p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$rc" -ne 0 ]; then
        for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 30 "$f"; }; done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
ulimit -n 8192 2>/dev/null || true

# start NAME ARGS...: a server in the background, its pid in PID_<NAME>.
start() {
    local name=$1; shift
    "$BIN" derp --state-dir "$WORK/$name.state" --log-level debug "$@" >>"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$name=$!"
}
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    fail "nothing listens on $1"
}
wait_exit() {
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || { wait "$1"; return $?; }; sleep 0.05; done
    fail "pid $1 did not exit"
}

# ---- one plain-HTTP server: protocol, bad input, slow reader, STUN, load, Restarting ----
start s1 --http --listen 127.0.0.1:24301 --stun 127.0.0.1:24302 --login-timeout 1500 \
    --write-timeout 1000 --queue-depth 8 --restart-reconnect 1500 --restart-try-for 30000
wait_port 24301
[ "$(stat -c %a "$WORK/s1.state/private.key")" = 600 ] || fail "server key not 0600"
$T basic --port 24301
curl -si -H 'X-Tailscale-Challenge: abc-123' http://127.0.0.1:24301/generate_204 >"$WORK/204"
grep -q "^HTTP/1.1 204" "$WORK/204" && grep -qi "^X-Tailscale-Response: response abc-123" "$WORK/204" \
    || fail "/generate_204"
echo "ok: /generate_204 answers 204 with the challenge response"
curl -sfI http://127.0.0.1:24301/derp/probe | grep -qi "^Access-Control-Allow-Origin: \*" \
    || fail "/derp/probe"
echo "ok: /derp/probe answers as derper does"
$T bad --port 24301
$T slow --port 24301
$T stun --port 24302 --http-port 24301
$T load --port 24301 --pid "$PID_s1" --clients 1000 --count 20 --seconds 30
$T restarting --port 24301 --pid "$PID_s1" --reconnect 1500 --try-for 30000
wait_exit "$PID_s1" || fail "SIGTERM: exit status not 0"
echo "ok: SIGTERM: the server exits 0"
# The key is kept across restarts.
k1=$(cat "$WORK/s1.state/private.key")
start s1 --http --listen 127.0.0.1:24301 --stun off
wait_port 24301
[ "$(cat "$WORK/s1.state/private.key")" = "$k1" ] || fail "server key changed"
kill "$PID_s1"; wait_exit "$PID_s1" || true
echo "ok: the server key is kept"

# ---- verify-clients and rate limits ----
read -r K1 P1 K2 P2 K3 P3 < <("$PY" -c '
from nacl.public import PrivateKey
ks = [PrivateKey.generate() for _ in range(3)]
print(" ".join("%s %s" % (k.encode().hex(), k.public_key.encode().hex()) for k in ks))')
printf '# allowed\n%s\nnodekey:%s\n' "$P1" "$P2" > "$WORK/allowed"
start s2 --http --listen 127.0.0.1:24311 --stun off --verify-clients "$WORK/allowed" --rate 100000 \
    --keepalive 500 --max-clients 2
wait_port 24311
$T verify --port 24311 --keys "$K1,$K2" --rate 100000
echo "$P3" >> "$WORK/allowed"
kill -HUP "$PID_s2"
sleep 0.3
$T verify-reload --port 24311 --keys "$K3"
$T cap --port 24311 --keys "$K1,$K2,$K3"
kill "$PID_s2"

# ---- two meshed servers ----
MESH="--mesh-with http://127.0.0.1:24321/derp,http://127.0.0.1:24322/derp"
start m1 --http --listen 127.0.0.1:24321 --stun off --mesh-key test-mesh-secret $MESH
start m2 --http --listen 127.0.0.1:24322 --stun off --mesh-key test-mesh-secret $MESH
wait_port 24321; wait_port 24322
$T mesh --port 24321 --port2 24322 --pid2 "$PID_m2" --keyfile "$WORK/xkey"
start m2 --http --listen 127.0.0.1:24322 --stun off --mesh-key test-mesh-secret $MESH
wait_port 24322
$T mesh-again --port 24321 --port2 24322 --keyfile "$WORK/xkey"
grep -q "event=mesh_self" "$WORK/m1.log" || fail "a server does not mesh with itself"
kill "$PID_m1" "$PID_m2"

# ---- TLS ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=derp-test -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
start t1 --listen 127.0.0.1:24331 --stun off --cert "$WORK/cert.pem" --key "$WORK/key.pem"
wait_port 24331
$T tls --port 24331 --ca "$WORK/cert.pem" --pid "$PID_t1"
openssl s_client -connect 127.0.0.1:24331 -servername localhost </dev/null 2>/dev/null \
    | grep -q "subject=CN = derp-test" || fail "openssl s_client does not see the certificate"
echo "ok: openssl s_client sees the certificate"
kill "$PID_t1"
TMESH="--mesh-key tls-mesh --mesh-insecure --mesh-with https://127.0.0.1:24332,https://127.0.0.1:24333"
start t2 --listen 127.0.0.1:24332 --stun off --cert "$WORK/cert.pem" --key "$WORK/key.pem" $TMESH
start t3 --listen 127.0.0.1:24333 --stun off --cert "$WORK/cert.pem" --key "$WORK/key.pem" $TMESH
wait_port 24332; wait_port 24333
$T mesh-tls --port 24332 --port2 24333 --ca "$WORK/cert.pem"
kill "$PID_t2" "$PID_t3"
echo "all derp tests passed"
