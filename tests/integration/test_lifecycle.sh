#!/usr/bin/env bash
# The node's lifecycle, driven as a user would against a stock wireguard-go peer: a keyless
# first start (NeedsConfig) watched with `tunless watch`, a configuration dropped into the state
# directory (Starting, Running, a handshake), `tunless down` (Stopped: SOCKS5 reply 1, HTTP 503)
# and `tunless up` (the transfer works again), preferences kept across a restart, a corrupted
# prefs.json set aside, sd_notify on a socket this test listens on, and a watcher that never
# reads dropped while 100 MB go through the node.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tllc

PEER_PORT=29951 PROXY=127.0.0.1:18951
RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
HELPER=(python3 "$TB_SRC/tests/tools/lifecycle_helper.py")
STATE=$TB_DIR/state SOCK=$TB_DIR/state/tunless.sock NOTIFY="@tunless-tllc-$$"
CLI() { "$TB_BIN" "$@" --socket "$SOCK"; }

tb_peer peer "$PEER_PORT" 100.64.0.2/10
mkdir -p "$TB_DIR/www" "$STATE" && chown nobody "$STATE" && chmod 700 "$STATE"
head -c 5000000 /dev/urandom > "$TB_DIR/www/blob"
head -c 100000000 /dev/urandom > "$TB_DIR/www/big"
want=$(sha256sum < "$TB_DIR/www/blob" | cut -d' ' -f1)
want_big=$(sha256sum < "$TB_DIR/www/big" | cut -d' ' -f1)
tb_bg "$TB_NS_peer" python3 -m http.server --bind 100.64.0.2 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http.log" 2>&1
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000

tb_bg - "${HELPER[@]}" notify-listen "$NOTIFY" "$TB_DIR/notify.out"
for _ in $(seq 300); do [ -e "$TB_DIR/notify.out" ] && break; sleep 0.1; done # bound

start_node() { # extra flags
  NOTIFY_SOCKET=$NOTIFY "${RUN_AS[@]}" "$TB_BIN" up --state-dir "$STATE" --proxy "$PROXY" \
    "$@" >> "$TB_DIR/node.log" 2>&1 &
  node_pid=$!
  TB_PIDS+=("$node_pid")
  tb_wait_tcp - 127.0.0.1 18951
  for _ in $(seq 300); do [ -S "$SOCK" ] && break; sleep 0.1; done
}
stop_node() {
  kill -TERM "$node_pid"
  local rc=0
  wait "$node_pid" || rc=$?
  [ "$rc" -eq 0 ] || { echo "node exited $rc"; exit 1; }
}
fetch() { # URL [curl flags]: the sha256 of what came back
  local url=$1; shift
  curl -sS --max-time 60 "$@" "$url" | sha256sum | cut -d' ' -f1
}
wait_for() { # FILE PATTERN: up to 30 s (the machine may be loaded)
  for _ in $(seq 300); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "no '$2' in $1"; exit 1
}

echo "== a keyless first start is NeedsConfig, and systemd hears READY=1 and the state"
start_node
wait_for "$TB_DIR/notify.out" 'READY=1'
grep -q 'STATUS=NeedsConfig' "$TB_DIR/notify.out" || { echo "no NeedsConfig status"; cat "$TB_DIR/notify.out"; exit 1; }
node_pub=$(sed -n 's/.*event=up public_key=\([^ ]*\).*/\1/p' "$TB_DIR/node.log" | head -1)
[ -n "$node_pub" ] || { echo "no public key logged"; exit 1; }
tb_peer_allow peer "$node_pub" 100.64.0.1/32

echo "== the watch stream: NeedsConfig, then Starting, Running and a handshake"
CLI watch --json > "$TB_DIR/watch.json" 2> "$TB_DIR/watch.log" &
watch_pid=$!
TB_PIDS+=("$watch_pid")
CLI watch > "$TB_DIR/watch.txt" 2>&1 &
TB_PIDS+=($!)
wait_for "$TB_DIR/watch.json" '"snapshot"'
cat > "$STATE/tunless.conf" <<CONF
[Interface]
PrivateKeyFile = private.key
Address = 100.64.0.1/32
[Peer]
# Name = web
PublicKey = $TB_PUB_peer
Endpoint = 127.0.0.1:$PEER_PORT
AllowedIPs = 100.64.0.2/32
CONF
chown nobody "$STATE/tunless.conf" && chmod 600 "$STATE/tunless.conf"
kill -HUP "$node_pid"
wait_for "$TB_DIR/watch.json" '"to":"Running"'
[ "$(fetch http://100.64.0.2:8000/blob --socks5 "$PROXY")" = "$want" ] || { echo "download differs"; exit 1; }
wait_for "$TB_DIR/watch.json" '"handshake"'
"${HELPER[@]}" check-watch "$TB_DIR/watch.json" snapshot:NeedsConfig state:NeedsConfig\>Starting \
  config_applied state:Starting\>Running handshake
grep -q 'STATUS=Running' "$TB_DIR/notify.out" || { echo "no Running status"; exit 1; }
grep -q 'Running' "$TB_DIR/watch.txt" || { echo "the readable watch shows no Running"; cat "$TB_DIR/watch.txt"; exit 1; }

echo "== tunless down: Stopped; the proxy refuses with SOCKS5 reply 1 and HTTP 503"
CLI down
wait_for "$TB_DIR/watch.json" '"to":"Stopped"'
grep -q 'event=state from=Running to=Stopped' "$TB_DIR/node.log" || { echo "no transition logged"; exit 1; }
said=$(curl -sS --max-time 10 --socks5 "$PROXY" http://100.64.0.2:8000/blob -o /dev/null 2>&1 || true)
echo "$said" | grep -q '(1)' || { echo "socks5 while stopped: '$said' (want reply 1)"; exit 1; }
body=$(curl -sS --max-time 10 -x "http://$PROXY" -w ' status=%{http_code}' http://100.64.0.2:8000/blob | tr -d '\n' || true)
echo "$body" | grep -q 'the node is stopped status=503' || { echo "http proxy while stopped: '$body'"; exit 1; }
wait_for "$TB_DIR/notify.out" 'STATUS=Stopped'

echo "== tunless up on the running node: Running again, the transfer works"
CLI up
wait_for "$TB_DIR/watch.json" '"from":"Stopped"'
[ "$(fetch http://100.64.0.2:8000/blob --socks5 "$PROXY")" = "$want" ] || { echo "download after up differs"; exit 1; }
[ "$(fetch http://100.64.0.2:8000/blob -x "http://$PROXY")" = "$want" ] || { echo "http download after up differs"; exit 1; }

echo "== tunless set: the log level changes at run time"
! grep -q 'event=proxy_dial' "$TB_DIR/node.log" || { echo "debug lines before debug was set"; exit 1; }
CLI set --log-level debug > "$TB_DIR/set.out"
grep -q '"log_level": *"debug"' "$TB_DIR/set.out" || grep -q 'log_level.*debug' "$TB_DIR/set.out" \
  || { echo "set printed: $(cat "$TB_DIR/set.out")"; exit 1; }
[ "$(fetch http://100.64.0.2:8000/blob --socks5 "$PROXY")" = "$want" ] || { echo "download differs"; exit 1; }
wait_for "$TB_DIR/node.log" 'event=proxy_dial'
rc=0; CLI set --log-level loud > "$TB_DIR/set-bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q 'log_level' "$TB_DIR/set-bad.out" || { echo "a bad level: rc $rc, $(cat "$TB_DIR/set-bad.out")"; exit 1; }

echo "== a watcher that never reads is dropped; 100 MB through the node meanwhile, bytes compared"
start=$(date +%s.%N)
[ "$(fetch http://100.64.0.2:8000/big --socks5 "$PROXY")" = "$want_big" ] || { echo "100 MB download differs"; exit 1; }
end=$(date +%s.%N)
echo "100 MB alone: $(echo "$end - $start" | bc) s"
tb_bg - "${HELPER[@]}" slow-watch "$SOCK" "$TB_DIR/slow.out"
slow_pid=$TB_LAST_PID
wait_for "$TB_DIR/node.log" 'path=/v0/watch status=200' # the slow watcher is in
start=$(date +%s.%N)
fetch http://100.64.0.2:8000/big --socks5 "$PROXY" > "$TB_DIR/big.sum" &
big=$!
# Events pile up for the watcher that does not read: every reload is three lines.
python3 -c 'import os, sys, time
for _ in range(3000):
    os.kill(int(sys.argv[1]), 1)
    time.sleep(0.001)' "$node_pid"
wait "$big"
end=$(date +%s.%N)
[ "$(cat "$TB_DIR/big.sum")" = "$want_big" ] || { echo "100 MB download differs"; exit 1; }
echo "100 MB in $(echo "$end - $start" | bc) s with a stalled watcher and reloads"
kill -USR1 "$slow_pid"
for _ in $(seq 150); do kill -0 "$slow_pid" 2>/dev/null || break; sleep 0.1; done
grep -q 'dropped' "$TB_DIR/slow.out" || { echo "the slow watcher was not dropped: $(tail -c 300 "$TB_DIR/slow.out")"; exit 1; }
kill -0 "$watch_pid" || { echo "the reading watcher was dropped too"; exit 1; }

echo "== prefs survive a restart; systemd hears STOPPING=1"
CLI down
stop_node
wait_for "$TB_DIR/notify.out" 'STOPPING=1'
wait "$watch_pid" || true
grep -q '"shutdown"' "$TB_DIR/watch.json" || { echo "the watcher saw no shutdown line"; exit 1; }
[ "$(stat -c %a "$STATE/prefs.json")" = 600 ] || { echo "prefs.json is not 0600"; exit 1; }
start_node
wait_for "$TB_DIR/node.log" 'event=prefs source=file want_running=false log_level=debug'
CLI set > "$TB_DIR/prefs.out"
grep -q 'Stopped' "$TB_DIR/prefs.out" || { echo "not Stopped after restart: $(cat "$TB_DIR/prefs.out")"; exit 1; }
rc=0; curl -sS --max-time 10 --socks5 "$PROXY" http://100.64.0.2:8000/blob -o /dev/null 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || { echo "a download worked while Stopped after restart"; exit 1; }
CLI up
[ "$(fetch http://100.64.0.2:8000/blob --socks5 "$PROXY")" = "$want" ] || { echo "download after restart differs"; exit 1; }

echo "== a flag overrides the stored level for that run, and says so"
stop_node
start_node --log-level warn
wait_for "$TB_DIR/node.log" 'event=prefs_override pref=log_level stored=debug flag=warn'
stop_node

echo "== a corrupted prefs.json is reported, set aside, and the node runs on defaults"
printf '{"want_running": fals' > "$STATE/prefs.json"
chown nobody "$STATE/prefs.json"
start_node
wait_for "$TB_DIR/node.log" 'event=prefs_corrupt'
grep 'event=prefs_corrupt' "$TB_DIR/node.log" | grep -q 'moved to' || { echo "not moved aside"; exit 1; }
ls "$STATE"/prefs.json.corrupt-* > /dev/null || { echo "no prefs.json.corrupt-* kept"; exit 1; }
[ "$(cat "$STATE"/prefs.json.corrupt-*)" = '{"want_running": fals' ] || { echo "the bad file changed"; exit 1; }
[ "$(fetch http://100.64.0.2:8000/blob --socks5 "$PROXY")" = "$want" ] || { echo "download on defaults differs"; exit 1; }
stop_node
! grep -q "$(cat "$STATE/private.key")" "$TB_DIR/node.log" "$TB_DIR/watch.json" || { echo "the private key leaked"; exit 1; }
echo "lifecycle: ok"
