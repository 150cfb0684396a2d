#!/usr/bin/env bash
# Connections do not outlive their peer: a reload that removes a peer resets its 20 open
# connections (counted and logged with the peer's name); --idle-timeout resets forwarded
# connections idle that long; and a peer that vanishes (its wireguard-go killed) has its
# connections reaped by TCP keepalive (--tcp-keepalive 2s,1s,2 so that it takes seconds).
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlpconn

PEER_PORT=28651 NODE_PORT=28652 FWD=19662
STREAMS=(python3 "$TB_SRC/tests/support/streams.py")
fail() { echo "FAIL: $*"; exit 1; }

tb_peer peer "$PEER_PORT" 100.64.0.2/10
node_key=$("$TB_BIN" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$TB_BIN" pubkey)
tb_peer_allow peer "$node_pub" 100.64.0.1/32 "127.0.0.1:$NODE_PORT"
tb_bg "$TB_NS_peer" "${STREAMS[@]}" hold 100.64.0.2 8000
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000

write_conf() { # with_peer
  {
    printf '[Interface]\nPrivateKey = %s\nAddress = 100.64.0.1/32\nListenPort = %s\n' \
      "$node_key" "$NODE_PORT"
    [ "$1" = 1 ] && printf '[Peer]\n# Name = web\nPublicKey = %s\nEndpoint = 127.0.0.1:%s\nAllowedIPs = 100.64.0.2/32\n' \
      "$TB_PUB_peer" "$PEER_PORT"
    true
  } > "$TB_DIR/wg0.conf"
  chmod 600 "$TB_DIR/wg0.conf"
}

start_node() { # LOG EXTRA_ARGS...
  local log=$1; shift
  "$TB_BIN" up --config "$TB_DIR/wg0.conf" --proxy off --forward "tcp:127.0.0.1:$FWD=100.64.0.2:8000" \
    --state-dir "$TB_DIR/state" "$@" > "$TB_DIR/$log" 2>&1 &
  node_pid=$!
  TB_PIDS+=("$node_pid")
  tb_wait_tcp - 127.0.0.1 "$FWD"
}
stop_node() {
  kill -TERM "$node_pid"
  local rc=0; wait "$node_pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "node exit $rc"
}

# N connections through the forward to the peer's holding service; OUT collects how each ended.
open_conns() { # OUT N
  tb_bg - "${STREAMS[@]}" many "$TB_DIR/$1" "$2" 127.0.0.1 "$FWD"
  for _ in $(seq 100); do [ -f "$TB_DIR/$1.up" ] && break; sleep 0.1; done
  [ "$(cat "$TB_DIR/$1.up" 2>/dev/null)" = "$2" ] || fail "$1: $2 connections did not open"
}
# Waits up to SECS for N endings in OUT; all must be resets.
want_resets() { # OUT N SECS
  local start=$SECONDS
  for _ in $(seq $(($3 * 10))); do
    [ "$(cat "$TB_DIR/$1" 2>/dev/null | wc -l)" -ge "$2" ] && break
    sleep 0.1
  done
  echo "$1: $(sort "$TB_DIR/$1" 2>/dev/null | uniq -c | tr -s ' \n' ' ')after ~$((SECONDS - start)) s"
  [ "$(grep -cx reset "$TB_DIR/$1" 2>/dev/null || true)" -eq "$2" ] || fail "$1: want $2 resets"
}

echo "== a reload that removes the peer resets its 20 connections"
write_conf 1
start_node node1.log
open_conns removed 20
sleep 1
[ ! -s "$TB_DIR/removed" ] || fail "connections ended before the reload: $(cat "$TB_DIR/removed")"
write_conf 0
kill -HUP "$node_pid"
want_resets removed 20 5
grep -E 'event=peer_removed peer=web peer_key=[^ ]+ conns_reset=20' "$TB_DIR/node1.log" ||
  fail "no peer_removed line naming web with conns_reset=20"
stop_node

echo "== --idle-timeout 2s resets idle forwarded connections"
write_conf 1
start_node node2.log --idle-timeout 2s
open_conns idle 5
want_resets idle 5 8
grep -q 'event=relay_idle_timeout target=100.64.0.2:8000' "$TB_DIR/node2.log" || fail "no relay_idle_timeout line"
stop_node

echo "== a peer that vanishes: keepalive reaps its connections"
start_node node3.log --tcp-keepalive 2s,1s,2
open_conns vanished 10
sleep 1
[ ! -s "$TB_DIR/vanished" ] || fail "connections ended early: $(cat "$TB_DIR/vanished")"
kill -9 "$TB_WGPID_peer"
want_resets vanished 10 15
stop_node
echo "peer_conns: ok"
