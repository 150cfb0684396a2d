#!/usr/bin/env bash
# `tunless demo`: the commands it prints are run as printed and must be answered.
# Needs no root; as root it drops to nobody, since the demo must work unprivileged.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
for tool in curl dig; do command -v "$tool" >/dev/null || { echo "skip: $tool missing"; exit 77; }; done
out=$(mktemp)
run=()
[ "$(id -u)" = 0 ] && run=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
"${run[@]}" "$TB_BIN" demo --proxy 127.0.0.1:18391 --dns-listen 127.0.0.1:15391 > "$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out" "$out.log"' EXIT
for _ in $(seq 50); do grep -q 'Ctrl-C' "$out" && break; sleep 0.1; done
grep -q 'Ctrl-C' "$out" || { cat "$out"; echo "demo did not come up"; exit 1; }

mapfile -t cmds < <(grep -E '^  (curl|dig) ' "$out" | sed 's/^  //')
[ "${#cmds[@]}" -eq 3 ] || { cat "$out"; echo "expected 3 commands, got ${#cmds[@]}"; exit 1; }
for cmd in "${cmds[@]}"; do
  echo "\$ $cmd"
  read -ra argv <<< "$cmd"
  case "${argv[0]}" in
    curl) reply=$("${argv[@]}" --max-time 10 -sS)
          [ "$reply" = "Hello from node b, through WireGuard, no TUN" ] || { echo "got: $reply"; exit 1; } ;;
    dig)  reply=$("${argv[@]}" +short +time=2 +tries=2)
          [ "$reply" = 100.64.0.2 ] || { echo "got: $reply"; exit 1; } ;;
  esac
  echo "$reply"
done

kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$out"; echo "demo exited $rc on Ctrl-C"; exit 1; }
# Every line says which of the two nodes it is about.
if grep '^ts=' "$out" | grep -vE ' node=(a|b) '; then echo "demo log lines without node="; exit 1; fi
# ... parses as key=value, and names each peer by its name: peer=b peer_key=KEY8 on node a.
grep '^ts=' "$out" > "$out.log"
python3 "$TB_SRC/tests/tools/logcheck.py" check "$out.log" || { echo "a demo log line is not key=value"; exit 1; }
for who in a:b b:a; do
  python3 "$TB_SRC/tests/tools/logcheck.py" find "$out.log" "node=${who%:*}" event=handshake_complete \
    "peer=${who#*:}" --keys peer_key || { echo "node ${who%:*} does not name its peer ${who#*:}"; exit 1; }
done
rm -f "$out.log"

# A clean start says nothing alarming (its config files are its own, and stay while it runs).
if grep -E 'level=(warn|error)' "$out"; then echo "demo logged warnings on a clean start"; exit 1; fi

# The default MagicDNS port is not mDNS's 5353, which avahi holds on most desktops: the demo must
# come up with its defaults while something else holds 5353.
python3 -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind(("127.0.0.1", 5353))
except OSError:
    pass  # taken already: that is the case under test anyway
time.sleep(30)' &
holder=$!
trap 'kill $pid $holder 2>/dev/null || true; rm -f "$out"' EXIT
sleep 0.3
"${run[@]}" "$TB_BIN" demo --proxy 127.0.0.1:18392 > "$out" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q 'Ctrl-C' "$out" && break; sleep 0.1; done
grep -q 'Ctrl-C' "$out" || { cat "$out"; echo "demo with default ports did not come up"; exit 1; }
dig_cmd=$(grep -E '^  dig ' "$out" | sed 's/^  //')
read -ra argv <<< "$dig_cmd"
reply=$("${argv[@]}" +short +time=2 +tries=2)
[ "$reply" = 100.64.0.2 ] || { echo "$dig_cmd got: $reply"; exit 1; }
kill -INT "$pid"
wait "$pid"
echo "demo: ok"
