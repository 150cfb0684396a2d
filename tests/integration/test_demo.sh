#!/usr/bin/env bash
# `tunless demo`: the commands it prints are run as printed and must be answered.
# Needs no root; as root it drops to nobody, since the demo must work unprivileged.
set -euo pipefail
: "${TUNLESS_BIN:?}"
for tool in curl dig; do command -v "$tool" >/dev/null || { echo "skip: $tool missing"; exit 77; }; done
out=$(mktemp)
run=()
[ "$(id -u)" = 0 ] && run=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
"${run[@]}" "$TUNLESS_BIN" demo --proxy 127.0.0.1:18391 --dns-listen 127.0.0.1:15391 > "$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
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
echo "demo: ok"
