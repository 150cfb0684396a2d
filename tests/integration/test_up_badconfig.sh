#!/usr/bin/env bash
# Every kind of wrong configuration stops `tunless up` before anything listens: exit code 2 and
# one message that says what is wrong and where.
set -euo pipefail
: "${TB_BIN:?}"
dir=$(mktemp -d)
holder=
trap 'rm -rf "$dir"; [ -n "$holder" ] && kill "$holder" 2>/dev/null || true' EXIT
key=$("$TB_BIN" genkey)
peer=$("$TB_BIN" genkey | "$TB_BIN" pubkey)
PROXY=127.0.0.1:18481

conf() { # name, then the file's text
  printf '%s\n' "$2" > "$dir/$1"
  chmod 600 "$dir/$1"
}

AS=() # who runs the node: root reads any file, so the unreadable case runs as nobody
expect_fail() { # description, expected text, args...
  local what=$1 want=$2; shift 2
  local out rc=0
  # A node that wrongly starts would run forever: timeout makes that a failure (124).
  out=$("${AS[@]}" timeout 10 "$TB_BIN" up --proxy "$PROXY" --state-dir "$dir/state" "$@" \
        2>&1 </dev/null) || rc=$?
  if [ "$rc" -ne 2 ]; then echo "$what: exit $rc, want 2; output: $out"; exit 1; fi
  if ! grep -qF -- "$want" <<< "$out"; then echo "$what: message lacks '$want': $out"; exit 1; fi
  if grep -q 'event=listening' <<< "$out"; then echo "$what: something listened first: $out"; exit 1; fi
  echo "ok: $what -> $(grep 'tunless up:' <<< "$out" | head -1)"
}

good="[Interface]
PrivateKey = $key
Address = 100.64.0.1/32
[Peer]
PublicKey = $peer
AllowedIPs = 100.64.0.2/32"

conf syntax.conf "[Interface
PrivateKey = $key"
expect_fail "syntax error" "syntax.conf:1" --config "$dir/syntax.conf"

conf badkey.conf "${good/$key/not-a-key}"
expect_fail "bad private key" "badkey.conf:2" --config "$dir/badkey.conf"

conf overlap.conf "$good
AllowedIPs = 100.64.0.1/32"
expect_fail "own address routed to a peer" "100.64.0.1" --config "$dir/overlap.conf"

conf twice.conf "${good/Address = 100.64.0.1\/32/Address = 100.64.0.1/32, 100.64.0.1/32}"
expect_fail "the same address twice" "twice.conf" --config "$dir/twice.conf"

printf '{"version": 1, "self": {"addresses": ["100.64.0.1/32"], "private_key": "%s"}, "peers": [], "colour": "blue"}\n' \
  "$key" > "$dir/unknown.json"
expect_fail "unknown JSON field" "colour" --netmap "$dir/unknown.json"

expect_fail "missing file" "$dir/nonexistent.conf" --config "$dir/nonexistent.conf"

conf unreadable.conf "$good"
chmod 000 "$dir/unreadable.conf"
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
expect_fail "unreadable file" "unreadable.conf" --config "$dir/unreadable.conf"
AS=()

# A port someone else holds: the WireGuard UDP port, then the proxy's TCP port.
python3 -c '
import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 29499))
t = socket.socket(); t.bind(("127.0.0.1", 18482)); t.listen()
print("ready", flush=True); time.sleep(60)' > "$dir/holder.out" &
holder=$!
for _ in $(seq 50); do grep -q ready "$dir/holder.out" 2>/dev/null && break; sleep 0.1; done
conf port.conf "${good/Address = 100.64.0.1\/32/Address = 100.64.0.1/32
ListenPort = 29499}"
expect_fail "UDP listen port in use" "29499" --config "$dir/port.conf"
# A low port as an unprivileged user: the message gives the bind's own reason.
if [ "$(id -u)" = 0 ] && [ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" -gt 80 ]; then
  conf low.conf "${good/Address = 100.64.0.1\/32/Address = 100.64.0.1/32
ListenPort = 80}"
  mkdir -p "$dir/state" && chown nobody "$dir/low.conf" "$dir/state"
  AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
  expect_fail "UDP listen port 80 as nobody" "Permission denied" --config "$dir/low.conf"
  AS=()
fi
conf ok.conf "$good"
expect_fail "proxy port in use" "18482" --config "$dir/ok.conf" --proxy 127.0.0.1:18482

expect_fail "bad flag value" "--outbound" --config "$dir/ok.conf" --outbound sideways
echo "badconfig: ok"
