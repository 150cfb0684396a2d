#!/usr/bin/env bash
# The command line a new user meets: help on stdout with exit 0 everywhere, `tunless help CMD`,
# a suggestion for a mistyped command, usage errors on stderr with exit 2. Needs no root.
set -euo pipefail
: "${TB_BIN:?}"
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# says FILE PATTERN: the file matches the pattern; "-" means the file must be empty.
says() {
  if [ "$2" = - ]; then [ ! -s "$1" ]; else grep -qE "$2" "$1"; fi
}

# expect CODE STDOUT_PATTERN STDERR_PATTERN ARGS...: exit code and what each stream says.
expect() {
  local code=$1 want_out=$2 want_err=$3 rc=0
  shift 3
  timeout 20 "$TB_BIN" "$@" > "$out" 2> "$err" < /dev/null || rc=$?
  if [ "$rc" -ne "$code" ] || ! says "$out" "$want_out" || ! says "$err" "$want_err"; then
    echo "FAIL: tunless $* -> exit $rc (want $code)"
    echo "stdout:"; cat "$out"; echo "stderr:"; cat "$err"
    exit 1
  fi
  echo "ok: tunless $* -> $rc"
}

for cmd in up demo genkey pubkey derp; do
  expect 0 "^usage: tunless $cmd" - "$cmd" --help
  expect 0 "^usage: tunless $cmd" - help "$cmd"
done
expect 0 '^usage: tunless <command>' - --help
expect 0 '^usage: tunless <command>' - help
expect 0 '^tunless ' - version
expect 2 - "did you mean 'genkey'" genky
expect 2 - "unknown command 'frobnicate'" frobnicate
expect 2 - "unknown command 'nope'" help nope
expect 2 - '^usage: tunless genkey' genkey extra
expect 2 - 'usage: tunless <command>'

# A listener that cannot bind names the flag that moves it.
state=$(mktemp -d)
python3 -c 'import socket, sys, time
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", 18471)); t.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 18472))
open(sys.argv[1] + "/held", "w").close()
time.sleep(30)' "$state" &
holder=$!
trap 'kill $holder 2>/dev/null || true; rm -rf "$out" "$err" "$state"' EXIT
for _ in $(seq 100); do [ -e "$state/held" ] && break; sleep 0.1; done
[ -e "$state/held" ] || { echo "could not hold the test ports"; exit 1; }
expect 2 - 'proxy listener 127.0.0.1:18471: .*--proxy\)' up --state-dir "$state" --proxy 127.0.0.1:18471
expect 2 - 'proxy listener 127.0.0.1:18471: .*--socks5\)' up --state-dir "$state" --socks5 127.0.0.1:18471
expect 2 - 'proxy listener 127.0.0.1:18471: .*--http-proxy\)' up --state-dir "$state" \
  --http-proxy 127.0.0.1:18471
expect 2 - 'MagicDNS listener 127.0.0.1:18472: .*--dns-listen\)' up --state-dir "$state" \
  --proxy 127.0.0.1:18473 --dns-listen 127.0.0.1:18472
echo "cli: ok"
