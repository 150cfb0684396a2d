#!/usr/bin/env bash
# `tunless up --check` shows what the node would start (peers, listeners, forwards, publishes)
# and warns about listeners anyone on the network could use and local ports used twice; the
# start warns alike. --proxy off really disables the proxy; unknown TUNLESS_ variables and bad
# values name the variable. Needs no root (loopback ports 18771-18779 only).
set -euo pipefail
: "${TB_BIN:?}"
dir=$(mktemp -d)
node=
cleanup() { [ -z "$node" ] || kill "$node" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; cat "$dir/out" "$dir/log" 2>/dev/null || true; exit 1; }

(umask 077 && "$TB_BIN" genkey > "$dir/private.key")
peer=$("$TB_BIN" genkey | "$TB_BIN" pubkey)
cat > "$dir/wg.conf" <<CONF
[Interface]
PrivateKeyFile = private.key
Address = 100.64.0.1/10
[Peer]
# Name = db
PublicKey = $peer
Endpoint = localhost:29820
AllowedIPs = 100.64.0.2/32
CONF
chmod 600 "$dir/wg.conf"

echo "== --check lists what would start and warns"
TUNLESS_PROXYY=1 "$TB_BIN" up --check --config "$dir/wg.conf" --proxy 0.0.0.0:18771 \
  --forward 0.0.0.0:18772=db:53 --dns-listen 127.0.0.1:18771 --publish 22 > "$dir/out" 2>&1 ||
  fail "--check exit $?"
grep -qx "warning: TUNLESS_PROXYY: no option reads this variable; did you mean TUNLESS_PROXY?" "$dir/out" || fail "no env warning"
grep -q "^warning: --proxy 0.0.0.0:18771: bound beyond the loopback without credentials" "$dir/out" || fail "no proxy warning"
grep -q "^warning: --forward 0.0.0.0:18772: bound beyond the loopback" "$dir/out" || fail "no forward warning"
grep -q "^warning: --proxy 0.0.0.0:18771 and --dns-listen 127.0.0.1:18771: the same local port" "$dir/out" || fail "no duplicate warning"
grep -qx "peer db key=${peer:0:8} endpoint=localhost:29820 allowed_ips=100.64.0.2/32" "$dir/out" || fail "no peer line"
grep -qx "listener proxy 0.0.0.0:18771" "$dir/out" || fail "no listener line"
grep -qx "forward tcp 0.0.0.0:18772 -> db:53" "$dir/out" || fail "no forward line"
grep -qx "publish tcp 22 -> 127.0.0.1:22" "$dir/out" || fail "no publish line"

echo "== --dns-listen and a UDP --forward beyond the loopback warn too"
"$TB_BIN" up --check --config "$dir/wg.conf" --proxy off --dns-listen 0.0.0.0:18775 \
  --forward udp:[::]:18776=db:53 > "$dir/out" 2>&1 || fail "--check exit $?"
grep -q "^warning: --dns-listen 0.0.0.0:18775: bound beyond the loopback" "$dir/out" || fail "no dns-listen warning"
grep -q "^warning: --forward \[::\]:18776: bound beyond the loopback" "$dir/out" || fail "no UDP forward warning"

echo "== credentials and loopback silence the warning"
printf 'pw\n' > "$dir/pass"
"$TB_BIN" up --check --config "$dir/wg.conf" --proxy 0.0.0.0:18771 --proxy-user u \
  --proxy-pass-file "$dir/pass" > "$dir/out" 2>&1 || fail "--check exit $?"
! grep -q "^warning:" "$dir/out" || fail "warned although credentials are required"
grep -qx "listener proxy 0.0.0.0:18771 (credentials required)" "$dir/out" || fail "no credentials note"

echo "== --proxy off starts no proxy (it used to bind the default port)"
"$TB_BIN" up --check --config "$dir/wg.conf" --proxy off > "$dir/out" 2>&1 || fail "exit $?"
! grep -q "^listener" "$dir/out" || fail "--proxy off still lists a listener"

echo "== a bad variable is named as the variable"
rc=0; TUNLESS_PROXY=1.2.3.4: "$TB_BIN" up --check --config "$dir/wg.conf" > "$dir/out" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "^tunless up: TUNLESS_PROXY=1.2.3.4:: want IP:PORT" "$dir/out" || fail "bad env: exit $rc"

echo "== the start warns alike, in key=value lines"
"$TB_BIN" up --config "$dir/wg.conf" --proxy 0.0.0.0:18773 --forward 0.0.0.0:18774=db:53 \
  --dns-listen 0.0.0.0:18775 --state-dir "$dir/state" > "$dir/log" 2>&1 & node=$!
for _ in $(seq 50); do grep -q 'event=up ' "$dir/log" && break; sleep 0.1; done
grep -q 'level=warn event=listener_warning msg="--proxy 0.0.0.0:18773: bound beyond the loopback without credentials' "$dir/log" || fail "no start warning for the proxy"
grep -q 'level=warn event=listener_warning msg="--forward 0.0.0.0:18774: bound beyond' "$dir/log" || fail "no start warning for the forward"
grep -q 'level=warn event=listener_warning msg="--dns-listen 0.0.0.0:18775: bound beyond' "$dir/log" || fail "no start warning for --dns-listen"
# Once: the proxy library used to say it again (event=proxy_unauthenticated).
n=$(grep 'level=warn' "$dir/log" | grep -c '0\.0\.0\.0:18773') || true
[ "$n" = 1 ] || { cat "$dir/log"; fail "the unauthenticated proxy is warned about $n times"; }
kill "$node"; wait "$node" || true; node=

echo "== wireproxy sections: one notice each at start, and they listen"
cat > "$dir/wp.conf" <<CONF
[Interface]
PrivateKeyFile = private.key
Address = 10.200.200.2/32
[Peer]
PublicKey = $peer
AllowedIPs = 10.200.200.0/24
[Socks5]
BindAddress = 127.0.0.1:18777
[TCPClientTunnel]
BindAddress = 127.0.0.1:18778
Target = 10.200.200.1:22
CONF
chmod 600 "$dir/wp.conf"
"$TB_BIN" up --config "$dir/wp.conf" --state-dir "$dir/state" > "$dir/log" 2>&1 & node=$!
for _ in $(seq 50); do grep -q 'event=up ' "$dir/log" && break; sleep 0.1; done
grep -q "level=info event=wireproxy_section msg=\"$dir/wp.conf:7: \[Socks5\] -> --socks5 127.0.0.1:18777\"" "$dir/log" || fail "no [Socks5] notice"
grep -q "level=info event=wireproxy_section msg=\"$dir/wp.conf:9: \[TCPClientTunnel\] -> --forward 127.0.0.1:18778=10.200.200.1:22\"" "$dir/log" || fail "no [TCPClientTunnel] notice"
(exec 3<> /dev/tcp/127.0.0.1/18777) 2> /dev/null || fail "[Socks5] does not listen"
(exec 3<> /dev/tcp/127.0.0.1/18778) 2> /dev/null || fail "[TCPClientTunnel] does not listen"
! grep -q 'service=socks5+http' "$dir/log" || fail "the default proxy started besides"
# A reload applies peers but not listeners: a changed section says it needs a restart.
sed -i 's/18777/18779/' "$dir/wp.conf"
kill -HUP "$node"
for _ in $(seq 50); do grep -q 'event=reloaded' "$dir/log" && break; sleep 0.1; done
grep -q 'level=warn event=reload_partial reason="wireproxy sections changed: restart to apply"' "$dir/log" || fail "no reload_partial"
kill "$node"; wait "$node" || true; node=
echo "up_check: ok"
