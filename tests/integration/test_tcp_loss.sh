#!/usr/bin/env bash
# Loss recovery of the patched lwIP (netstack/lwip-patches) on a real path: tunless's SOCKS5
# proxy uploads and downloads through tests/tools/lossy_relay (fixed delay, seeded random
# loss each way) to a stock wireguard-go peer whose kernel TCP runs tests/tools/socks_bulk.py.
# Bytes are compared by SHA-256 where they arrive. Counts, never times: what tunless sent
# beyond the bytes it had to (the relay counts the datagrams), and how many duplicates the
# peer's kernel received (its D-SACK counters: data it already held, sent again).
# Root only (exit 77 otherwise).
set -euo pipefail
source "${TB_SRC:?}/tests/support/testbed.sh"
RELAY="${TB_TOOLS:?}/lossy_relay"
BULK="$TB_SRC/tests/tools/socks_bulk.py"
[ -x "$RELAY" ] || { echo "skip: $RELAY not built"; exit 77; }
for t in python3 nstat sha256sum curl jq; do
  command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 77; }
done

tb_init tltcploss
PEER_PORT=29891 T_PORT=29892 RELAY_A=29893 RELAY_B=29894 PROXY=127.0.0.1:18295
UP_BYTES=$((12 * 1024 * 1024)) DOWN_BYTES=$((8 * 1024 * 1024))
fail() { echo "FAIL: $*"; exit 1; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

tb_peer peer "$PEER_PORT" 100.64.0.2/10
t_key=$("${TB_BIN:?}" genkey); t_pub=$(echo "$t_key" | "$TB_BIN" pubkey)
tb_peer_allow peer "$t_pub" 100.64.0.1/32 "127.0.0.1:$RELAY_B"
tb_bg "$TB_NS_peer" python3 "$BULK" serve 100.64.0.2 9000
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 9000
# 10 ms each way, 1 % loss each way: a loss in most windows, a run of a few minutes at most.
"$RELAY" --a-listen "$RELAY_A" --a-peer "$T_PORT" --b-listen "$RELAY_B" --b-peer "$PEER_PORT" \
  --delay-ms 10 --loss 0.01 --seed 17 > "$TB_DIR/relay.log" 2>&1 &
RELAY_PID=$!; TB_PIDS+=("$RELAY_PID")

tb_tunless_conf "$TB_DIR/t.conf" "$t_key" 100.64.0.1/32 "$T_PORT" "$TB_PUB_peer" \
  "127.0.0.1:$RELAY_A" 100.64.0.0/10
tb_bg - "$TB_BIN" up --config "$TB_DIR/t.conf" --proxy "$PROXY" --state-dir "$TB_DIR/state" \
  --log-level warn
tb_wait_tcp - 127.0.0.1 "${PROXY##*:}"
bulk() { timeout 600 python3 "$BULK" "$@"; }
bulk down "$PROXY" 100.64.0.2 9000 --bytes 1000 > /dev/null || fail "no path through the relay"

relay_counts() { # the relay's a2b counters (tunless -> peer) in $1_in, $1_bytes, $1_dropped
  local n; n=$(grep -c '^relay a2b' "$TB_DIR/relay.log" || true)
  kill -USR1 "$RELAY_PID"
  for _ in $(seq 50); do
    [ "$(grep -c '^relay a2b' "$TB_DIR/relay.log" || true)" -gt "$n" ] && break; sleep 0.1
  done
  local line; line=$(grep '^relay a2b' "$TB_DIR/relay.log" | tail -1)
  printf -v "$1_in" '%s' "$(field a2b_in "$line")"
  printf -v "$1_bytes" '%s' "$(field a2b_in_bytes "$line")"
  printf -v "$1_dropped" '%s' "$(field a2b_dropped "$line")"
}
# The peer's counters: nstat -n records them (in a history of our own), nstat -z then
# prints what changed since.
export NSTAT_HISTORY="$TB_DIR/nstat.history"
tb_ns peer nstat -n > /dev/null
relay_counts before
head -c "$UP_BYTES" /dev/urandom > "$TB_DIR/up.bin"
want=$(sha256sum < "$TB_DIR/up.bin" | cut -d' ' -f1)
out=$(bulk up "$PROXY" 100.64.0.2 9000 --file "$TB_DIR/up.bin") || fail "upload: $out"
echo "upload: $out"
[ "$(field bytes "$out")" = "$UP_BYTES" ] || fail "upload: the peer got $(field bytes "$out") bytes"
[ "$(field sha256 "$out")" = "$want" ] || fail "upload: sha256 differs"
relay_counts after
peer_count() { awk -v k="$1" '$1 == k {print $2}' <<<"$peer_stats" | grep . || echo 0; }
peer_stats=$(tb_ns peer nstat -z)
dups=$(( $(peer_count TcpExtTCPDSACKOldSent) + $(peer_count TcpExtTCPDSACKOfoSent) ))
in_segs=$(peer_count TcpInSegs)
echo "peer: $(grep -E '^(TcpInSegs|TcpExtTCPOFODrop|TcpExtTCPRcvQDrop|TcpExtTCPZeroWindowDrop|TcpExtTCPDSACK.*Sent) ' <<<"$peer_stats" | awk '{printf "%s=%s ", $1, $2}')"
# Counts, not times. tunless sent $sent datagrams; the relay dropped some; of the rest, the
# peer's TCP received $in_segs (its counters were reset before the upload): the difference
# was lost between the relay and the peer's TCP (wireguard-go's queues). Every retransmission
# must answer a loss: resent bytes stay within the segments lost (full-size at most, and 20 %
# for RACK's timing), and the peer receives next to no data it already held (D-SACKs).
sent=$(( after_in - before_in )) bytes=$(( after_bytes - before_bytes ))
dropped=$(( after_dropped - before_dropped ))
lost=$(( sent - in_segs > dropped ? sent - in_segs : dropped ))
resent=$(( bytes - UP_BYTES - sent * 72 ))  # WireGuard 32 + IP and TCP 40 per datagram
echo "upload: tunless sent $sent datagrams, $bytes bytes, for $UP_BYTES bytes of data;" \
  "$dropped dropped by the relay, $lost lost in all; about $resent bytes resent;" \
  "$dups duplicates at the peer"
[ "$dups" -le $(( UP_BYTES / 1380 / 100 )) ] || fail "$dups duplicates at the peer: spurious retransmissions"
[ "$resent" -le $(( lost * 1380 * 12 / 10 + 64 * 1024 )) ] ||
  fail "about $resent bytes resent for $lost segments lost: a retransmit storm"

out=$(bulk down "$PROXY" 100.64.0.2 9000 --bytes "$DOWN_BYTES") || fail "download: $out"
echo "download: $out"
want=$(python3 -c "
import hashlib, sys; p = bytes(range(256)) * 256; n = $DOWN_BYTES
print(hashlib.sha256(p * (n // len(p)) + p[:n % len(p)]).hexdigest())")
[ "$(field bytes "$out")" = "$DOWN_BYTES" ] || fail "download: got $(field bytes "$out") bytes"
[ "$(field sha256 "$out")" = "$want" ] || fail "download: sha256 differs"

# Autotuning (netstack/ns_tune.c): the download's receive window grew past its first 128 KiB
# (a count the node keeps, not a time).
st=$(curl -sS --max-time 5 --unix-socket "$TB_DIR/state/tunless.sock" http://local/v0/status)
grown=$(jq -r .netstack.tcp_wnd_grown <<<"$st") largest=$(jq -r .netstack.tcp_wnd_largest <<<"$st")
echo "receive window: grown $grown times, largest $largest bytes"
[ "$grown" -gt 0 ] && [ "$largest" -gt 131072 ] || fail "the receive window did not grow"

echo "tcp_loss: ok"
