#!/usr/bin/env bash
# --forward's own listener when descriptors run short: new connections are refused (reset) while
# fewer than PROXY_FD_RESERVE are left, and the log says so, rate-limited (event=relay_refused
# reason=fds count=N total=N target=...; reason=accept_failed err=... when accept itself fails),
# as the proxies do; once the clients go, it serves again. (libuv closes a connection it cannot
# accept for lack of descriptors without telling its user, hence the reserve.)
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlfds

NODE_PORT=29995 FWD=19651 SINK=19652
# The service reads and closes when its client does: a relay whose client left frees its fds.
tb_bg - python3 -c '
import socket, sys, threading
def serve(c):
    while c.recv(65536):
        pass
    c.close()
ls = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=256)
while True:
    threading.Thread(target=serve, args=(ls.accept()[0],), daemon=True).start()
' "$SINK"
tb_wait_tcp - 127.0.0.1 "$SINK"
node_key=$("$TB_BIN" genkey)
other=$("$TB_BIN" genkey | "$TB_BIN" pubkey)
tb_tunless_conf "$TB_DIR/wg0.conf" "$node_key" 100.64.0.1/32 "$NODE_PORT" "$other" \
  127.0.0.1:29996 100.64.0.2/32
# 64 descriptors: the node's own take about 20, each forwarded connection two, 32 are reserved.
bash -c 'ulimit -n 64 && exec "$@"' - "$TB_BIN" up --config "$TB_DIR/wg0.conf" --proxy off \
  --forward "tcp:127.0.0.1:$FWD=127.0.0.1:$SINK" --state-dir "$TB_DIR" > "$TB_DIR/node.log" 2>&1 &
node_pid=$!
TB_PIDS+=("$node_pid")
tb_wait_tcp - 127.0.0.1 "$FWD"

python3 - "$FWD" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
held = []
for _ in range(60):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    held.append(s)
time.sleep(1)
for s in held:
    s.close()
PY
sleep 2
grep -E "event=relay_refused reason=(fds|accept_failed) count=[0-9]+ total=[0-9]+ .*target=127.0.0.1:$SINK" \
  "$TB_DIR/node.log" || { echo "no accept failure logged"; cat "$TB_DIR/node.log"; exit 1; }
lines=$(grep -c 'event=relay_refused' "$TB_DIR/node.log")
[ "$lines" -le 2 ] || { echo "$lines lines: not rate-limited"; exit 1; }

echo "== the forward serves again"
python3 - "$FWD" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"x" * 1000)
s.close()
PY
kill -TERM "$node_pid"
rc=0; wait "$node_pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "node exited $rc"; exit 1; }
echo "forward_fds: ok"
