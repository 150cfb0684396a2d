#!/usr/bin/env bash
# The command line a new user meets: help on stdout with exit 0 everywhere, `tunless help CMD`,
# a suggestion for a mistyped command, usage errors on stderr with exit 2. Needs no root.
set -euo pipefail
: "${TUNLESS_BIN:?}"
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
  "$TUNLESS_BIN" "$@" > "$out" 2> "$err" < /dev/null || rc=$?
  if [ "$rc" -ne "$code" ] || ! says "$out" "$want_out" || ! says "$err" "$want_err"; then
    echo "FAIL: tunless $* -> exit $rc (want $code)"
    echo "stdout:"; cat "$out"; echo "stderr:"; cat "$err"
    exit 1
  fi
  echo "ok: tunless $* -> $rc"
}

for cmd in up demo genkey pubkey; do
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
echo "cli: ok"
