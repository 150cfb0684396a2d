#!/usr/bin/env bash
# A flood of 5,000 idle connections to the proxy (more than its 1,024-connection cap): each new one
# evicts the oldest still waiting for its request head, so a normal curl through the proxy
# succeeds during the flood and with the cap full of idle clients; the evictions are logged at
# most once per 5 s with a count. Then a node short of fds logs its refusals the same way.
# Needs no root (loopback ports 19651-19654 only).
set -euo pipefail
: "${TB_BIN:?}"
dir=$(mktemp -d /tmp/tunless-flood-XXXXXX)
pids=()
cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "$rc" -ne 0 ] && for f in "$dir"/*.log; do echo "== $f"; grep -v 'level=debug' "$f" | tail -n 20; done
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
wait_tcp() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  fail "nothing listens on $1"
}

echo hello > "$dir/index.html"
python3 -m http.server --bind 127.0.0.1 19652 --directory "$dir" > "$dir/http.log" 2>&1 &
pids+=($!)
wait_tcp 19652

# Opens N idle connections (bounded: 60 s), reports progress in $dir/flood.n, holds them HOLD s.
flood() { # N PORT HOLD
  python3 - "$1" "$2" "$3" "$dir/flood.n" <<'PY'
import os, resource, socket, sys, time
n, port, hold, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks, failed, end = [], 0, time.time() + 60
for i in range(n):
    if time.time() > end:
        break
    try:
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=3))
    except OSError:
        failed += 1
    if i % 250 == 0:
        open(out + ".tmp", "w").write("%d\n" % i)
        os.rename(out + ".tmp", out)
open(out + ".tmp", "w").write("%d done failed=%d\n" % (len(socks), failed))
os.rename(out + ".tmp", out)
time.sleep(hold)
PY
}
progress() { local p; p=$(cut -d' ' -f1 "$dir/flood.n" 2>/dev/null || true); echo "${p:-0}"; }
curl_ok() { [ "$(curl -sS --max-time 10 -x "http://127.0.0.1:$1" http://127.0.0.1:19652/index.html)" = hello ]; }

"$TB_BIN" up --proxy 127.0.0.1:19651 --state-dir "$dir/state" --log-level info \
  > "$dir/node.log" 2>&1 &
node=$!
pids+=("$node")
wait_tcp 19651

echo "== 5,000 idle connections against the 1,024 cap; curl during and after the flood"
start=$(date +%s)
flood 5000 19651 30 & fl=$!
pids+=("$fl")
for _ in $(seq 300); do [ "$(progress)" -ge 2000 ] && break; sleep 0.1; done
[ "$(progress)" -ge 2000 ] || fail "the flood did not get to 2,000 connections: $(cat "$dir/flood.n" 2>/dev/null)"
curl_ok 19651 || fail "curl through the proxy failed during the flood"
for _ in $(seq 600); do grep -q done "$dir/flood.n" 2>/dev/null && break; sleep 0.1; done
grep -q done "$dir/flood.n" || fail "the flood did not finish: $(cat "$dir/flood.n")"
echo "flood: $(cat "$dir/flood.n") in $(($(date +%s) - start)) s"
curl_ok 19651 || fail "curl through the proxy failed with the cap full of idle clients"
kill -0 "$node" || fail "the node died"
sleep 5.5 # the flush line for the tail of the burst
lines=$(grep -c 'event=proxy_evicted' "$dir/node.log" || true)
secs=$(($(date +%s) - start))
echo "eviction lines: $lines in $secs s"
grep -E 'event=proxy_evicted reason=max_connections count=[0-9]+ total=[0-9]+' "$dir/node.log" | head -n 3
total=$(grep -o 'event=proxy_evicted reason=max_connections count=[0-9]* total=[0-9]*' "$dir/node.log" | tail -n 1 | sed 's/.*total=//')
echo "evictions: ${total:-0}"
[ "${total:-0}" -ge 3900 ] || fail "${total:-0} evictions logged, want about 5,000 - 1,024"
[ "$lines" -le $((secs / 5 + 2)) ] || fail "$lines eviction lines in $secs s: not rate-limited"
kill "$fl" 2>/dev/null || true
kill -TERM "$node"
rc=0; wait "$node" || rc=$?
[ "$rc" -eq 0 ] || fail "node exit $rc"

echo "== out of fds: refusals are logged, rate-limited, with a count"
prlimit --nofile=128 "$TB_BIN" up --proxy 127.0.0.1:19653 --state-dir "$dir/state" \
  > "$dir/node-fds.log" 2>&1 &
node=$!
pids+=("$node")
wait_tcp 19653
rm -f "$dir/flood.n"
flood 600 19653 2 || true
grep -E 'event=proxy_(evicted|refused) reason=fds count=[0-9]+ total=[0-9]+' "$dir/node-fds.log" | head -n 3
lines=$(grep -cE 'event=proxy_(evicted|refused) reason=fds' "$dir/node-fds.log" || true)
[ "$lines" -ge 1 ] || fail "running short of fds was not logged"
[ "$lines" -le 4 ] || fail "$lines refusal lines: not rate-limited"
curl_ok 19653 || fail "curl failed with the node short of fds"
kill -TERM "$node"
rc=0; wait "$node" || rc=$?
[ "$rc" -eq 0 ] || fail "node exit $rc"
echo "flood: ok"
