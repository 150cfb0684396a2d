#!/usr/bin/env bash
# The WireGuard engine against a stock peer: wireguard-go in a network namespace, our engine
# driven by tests/tools/wg_engine_tool exchanging raw ICMP through it (no netstack needed).
# Covers: peer initiates (we respond), we initiate, data both ways, rekey by message count,
# the peer restarting with the same key, the peer moving to a new port (roaming), a wrong
# preshared key failing cleanly, a right one working, and cookie replies under load. Root only
# (exit 77 otherwise).
set -euo pipefail
source "${TB_SRC:?}/tests/support/testbed.sh"
TOOL_BIN="${TB_TOOLS:?}/wg_engine_tool"
[ -x "$TOOL_BIN" ] || { echo "skip: $TOOL_BIN not built"; exit 77; }

tb_init tldev
PEER_PORT=29820 OUR_PORT=29821 PEER_PORT2=29822
OUR_ADDR=100.64.0.1 PEER_ADDR=100.64.0.2
OUR_KEY=$(wg genkey)
OUR_PUB=$(wg pubkey <<<"$OUR_KEY")

fail() { echo "FAIL: $*"; exit 1; }

tb_peer peer "$PEER_PORT" "$PEER_ADDR/24"
tb_peer_allow peer "$OUR_PUB" "$OUR_ADDR/32" "127.0.0.1:$OUR_PORT"

# ---- the tool as a coprocess: one command line in, one reply line out ----
TOOL_RUNS=0
start_tool() { # extra tool args...
  TOOL_RUNS=$((TOOL_RUNS + 1))
  coproc TOOL { exec "$TOOL_BIN" --private-key "$OUR_KEY" --address "$OUR_ADDR" \
      --listen-port "$OUR_PORT" --peer-key "$TB_PUB_peer" --peer-allowed "$PEER_ADDR/32" \
      --peer-endpoint "127.0.0.1:$PEER_PORT" "$@" 2>>"$TB_DIR/tool-$TOOL_RUNS.log"; }
  TOOL_OUT=${TOOL[0]} TOOL_IN=${TOOL[1]} TOOL_CHILD=$TOOL_PID
  TB_PIDS+=("$TOOL_CHILD")
  local line
  read -t 10 -r line <&"$TOOL_OUT" || fail "tool did not start"
  [[ $line == ready* ]] || fail "tool: $line"
}
cmd() { # command [read timeout]
  echo "$1" >&"$TOOL_IN"
  read -t "${2:-60}" -r REPLY_LINE <&"$TOOL_OUT" || fail "no reply to '$1'"
  echo "  > $1: $REPLY_LINE"
}
stop_tool() {
  echo quit >&"$TOOL_IN"
  local rc=0
  wait "$TOOL_CHILD" || rc=$?
  [ "$rc" = 0 ] || fail "tool exited with $rc (sanitizer report in $TB_DIR/tool-$TOOL_RUNS.log?)"
}
stat() { # key: from the last stats reply
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$REPLY_LINE"
}
expect_ping() { # count timeout [interval]
  cmd "ping $PEER_ADDR $1 $2 ${3:-200}" $(($2 + 10))
  [[ $REPLY_LINE == *"received=$1" ]] || fail "expected $1 echo replies"
}
restart_peer() { # port: same key, fresh wireguard-go process
  local pidvar="TB_WGPID_peer"
  kill "${!pidvar}"
  wait "${!pidvar}" 2>/dev/null || true
  WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 WG_PROCESS_FOREGROUND=1 \
    wireguard-go "$TB_IF_peer" >> "$TB_DIR/wireguard-go-peer.log" 2>&1 &
  TB_PIDS+=($!)
  TB_WGPID_peer=$!
  local i
  for i in $(seq 50); do [ -S "/var/run/wireguard/$TB_IF_peer.sock" ] && break; sleep 0.1; done
  wg set "$TB_IF_peer" private-key "$TB_KEY_peer" listen-port "$1"
  ip link set "$TB_IF_peer" netns "$TB_NS_peer"
  ip -n "$TB_NS_peer" addr add "$PEER_ADDR/24" dev "$TB_IF_peer"
  ip -n "$TB_NS_peer" link set "$TB_IF_peer" up
  tb_peer_allow peer "$OUR_PUB" "$OUR_ADDR/32" "127.0.0.1:$OUR_PORT"
}

echo "== 1. the peer initiates: the namespace pings us, we answer through the engine"
start_tool
tb_ns peer ping -c 3 -W 5 "$OUR_ADDR" || fail "namespace ping to us"
cmd stats
[ "$(stat echo_answered)" -ge 3 ] || fail "echo requests not answered"
[ "$(stat handshakes)" = 1 ] || fail "one handshake expected (we responded)"

echo "== 2. data the other way on the session the peer made"
expect_ping 3 10
cmd stats
[ "$(stat handshakes)" = 1 ] || fail "no new handshake expected"
stop_tool

echo "== 3. we initiate (fresh engine, same key), data both ways"
start_tool
expect_ping 3 15
tb_ns peer ping -c 2 -W 5 "$OUR_ADDR" || fail "namespace ping to us after we initiated"
cmd stats
[ "$(stat handshakes)" = 1 ] || fail "one handshake expected (we initiated)"
[ "$(stat has_session)" = 1 ] || fail "no session"
tb_ns peer wg show "$TB_IF_peer" latest-handshakes | grep -q "$OUR_PUB" || fail "peer shows no handshake"
stop_tool

echo "== 4. rekey by message count (knob: every 20 messages)"
start_tool --rekey-after-messages 20
expect_ping 40 60 150
cmd stats
[ "$(stat handshakes)" -ge 2 ] || fail "no rekey after 20 messages"
[ "$(stat rx_bad_packet)" = 0 ] || fail "packets failed across the rekey"
echo "   handshakes: $(stat handshakes)"

stop_tool

echo "== 5. the peer restarts with the same key (our session is stale; we recover)"
start_tool
expect_ping 3 15
cmd stats
HS_BEFORE=$(stat handshakes)
restart_peer "$PEER_PORT"
# Our data goes unanswered; KEEPALIVE_TIMEOUT + REKEY_TIMEOUT later we start a new handshake.
expect_ping 3 45
cmd stats
[ "$(stat has_session)" = 1 ] || fail "no session after the peer restarted"
[ "$(stat handshakes)" -gt "$HS_BEFORE" ] || fail "no new handshake with the restarted peer"

echo "== 6. the peer moves to a new port: its next packet moves our endpoint (roaming)"
tb_ns peer wg set "$TB_IF_peer" listen-port "$PEER_PORT2"
tb_ns peer ping -c 2 -W 5 "$OUR_ADDR" || fail "namespace ping after the port change"
cmd stats
[ "$(stat endpoint)" = "127.0.0.1:$PEER_PORT2" ] || fail "endpoint did not follow the peer"
expect_ping 3 15
stop_tool
tb_ns peer wg set "$TB_IF_peer" listen-port "$PEER_PORT"

echo "== 7. wrong preshared key: no data, counted, no crash"
PSK_FILE="$TB_DIR/psk"
(umask 077 && wg genpsk > "$PSK_FILE")
tb_peer_allow peer "$OUR_PUB" "$OUR_ADDR/32" "127.0.0.1:$OUR_PORT" "$PSK_FILE"
start_tool --psk "$(wg genpsk)"
cmd "ping $PEER_ADDR 2 8 500" 20
[[ $REPLY_LINE == *"received=0" ]] || fail "data flowed with a wrong preshared key"
cmd stats
[ "$(stat rx_bad_mac)" -ge 1 ] || fail "the bad response was not counted"
[ "$(stat handshakes)" = 0 ] || fail "a handshake completed with a wrong preshared key"
stop_tool

echo "== 8. the right preshared key works"
start_tool --psk "$(cat "$PSK_FILE")"
expect_ping 3 20
stop_tool

echo "== 9. under load: we answer the peer's initiation with a cookie, its retry carries MAC2"
# Forget the peer's session on its side so the namespace's next packet starts a handshake.
tb_ns peer wg set "$TB_IF_peer" peer "$OUR_PUB" remove
tb_peer_allow peer "$OUR_PUB" "$OUR_ADDR/32" "127.0.0.1:$OUR_PORT" "$PSK_FILE"
start_tool --psk "$(cat "$PSK_FILE")" --under-load-threshold 0
tb_ns peer ping -c 1 -W 20 "$OUR_ADDR" || fail "namespace ping through a cookie exchange"
cmd stats
[ "$(stat cookie_replies)" -ge 1 ] || fail "no cookie reply sent"
[ "$(stat handshakes)" = 1 ] || fail "the MAC2-carrying retry was not accepted"
[ "$(stat echo_answered)" -ge 1 ] || fail "echo not answered"
stop_tool

echo "PASS"
