#!/usr/bin/env bash
# --metrics-listen against a stock wireguard-go peer: /readyz is 503 while the node has no
# configuration and 200 once one is applied; /metrics passes promtool and python's
# prometheus_client, and a per-peer counter moves after traffic; /readyz?peers=all goes 503
# when the peer's wireguard-go is killed; the Dockerfile's HEALTHCHECK command works as written.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlmetr
for tool in promtool curl python3; do
  command -v "$tool" >/dev/null || { echo "skip: $tool not installed"; exit 77; }
done
PY=/usr/bin/python3 # Debian's, with Debian's python3-prometheus-client
[ -x "$PY" ] || PY=python3
"$PY" -c 'import prometheus_client' 2>/dev/null || { echo "skip: python3-prometheus-client not installed"; exit 77; }

PEER_PORT=28641 NODE_PORT=28642 PROXY=127.0.0.1:18641 METRICS=127.0.0.1:18649
RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)

# The node starts keyless from its state directory (NeedsConfig); its key and port are
# prepared there so the peer can know them in advance.
STATE="$TB_DIR/state"
tb_tunless_state "$STATE" "$NODE_PORT"
node_pub=$TB_NODE_PUB

tb_peer peer "$PEER_PORT" 100.64.0.2/10
tb_peer_allow peer "$node_pub" 100.64.0.1/32 "127.0.0.1:$NODE_PORT"
mkdir -p "$TB_DIR/www"
head -c 2000000 /dev/urandom > "$TB_DIR/www/blob"
tb_bg "$TB_NS_peer" python3 -m http.server --bind 100.64.0.2 8000 --directory "$TB_DIR/www" \
  > "$TB_DIR/http.log" 2>&1
tb_wait_tcp "$TB_NS_peer" 100.64.0.2 8000

"${RUN_AS[@]}" env TUNLESS_METRICS_LISTEN="$METRICS" "$TB_BIN" up --state-dir "$STATE" \
  --proxy "$PROXY" --log-level debug > "$TB_DIR/node.log" 2>&1 &
node_pid=$!
TB_PIDS+=("$node_pid")
tb_wait_tcp - 127.0.0.1 18649

status() { curl -s -o "$TB_DIR/body" -w '%{http_code}' --max-time 5 "http://$METRICS$1"; }

echo "== /healthz answers; /readyz is 503 without a configuration"
[ "$(status /healthz)" = 200 ] || { echo "/healthz: $(cat "$TB_DIR/body")"; exit 1; }
[ "$(status /readyz)" = 503 ] || { echo "/readyz before the configuration: not 503"; exit 1; }
grep -q NeedsConfig "$TB_DIR/body" || { echo "/readyz body: $(cat "$TB_DIR/body")"; exit 1; }
[ "$(status /nosuch)" = 404 ] || { echo "an unknown path is not 404"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data '{}' "http://$METRICS/v0/netmap")" != 200 ] \
  || { echo "the metrics listener accepted a PUT"; exit 1; }

echo "== the configuration arrives (SIGHUP): /readyz turns 200"
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
for _ in $(seq 50); do [ "$(status /readyz)" = 200 ] && break; sleep 0.1; done
[ "$(status /readyz)" = 200 ] || { echo "/readyz after the configuration: $(cat "$TB_DIR/body")"; exit 1; }

echo "== /metrics: promtool, prometheus_client, a counter that moves"
rx() { # the peer's received bytes, as python's parser reads them
  curl -sS --max-time 5 "http://$METRICS/metrics" > "$TB_DIR/metrics.txt"
  "$PY" - "$TB_DIR/metrics.txt" "$TB_PUB_peer" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
text, key = open(sys.argv[1]).read(), sys.argv[2]
found = None
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        if s.name == "tunless_peer_receive_bytes_total" and s.labels.get("public_key") == key:
            assert s.labels.get("peer") == "web", s.labels
            found = s.value
print(int(found) if found is not None else -1)
PY
}
before=$(rx)
[ "$before" -ge 0 ] || { echo "no tunless_peer_receive_bytes_total for the peer"; exit 1; }
curl -sS --max-time 30 --socks5 "$PROXY" http://100.64.0.2:8000/blob -o /dev/null
after=$(rx)
echo "peer receive bytes: $before -> $after"
[ "$after" -gt $((before + 2000000)) ] || { echo "the counter did not move with the transfer"; exit 1; }
promtool check metrics < "$TB_DIR/metrics.txt" || { echo "promtool rejects /metrics"; exit 1; }
grep -q '^tunless_state{state="Running"} 1$' "$TB_DIR/metrics.txt" || { echo "state is not Running"; exit 1; }
! grep -q "$(cat "$STATE/private.key")" "$TB_DIR/metrics.txt" || { echo "the private key is in /metrics"; exit 1; }

echo "== the Dockerfile's HEALTHCHECK, pointed at this node's listener"
hc=$(sed -n 's/^HEALTHCHECK .*CMD //p' "$TB_SRC/examples/Dockerfile")
[ -n "$hc" ] || { echo "examples/Dockerfile has no HEALTHCHECK"; exit 1; }
dport=$(sed -n 's/.*TUNLESS_METRICS_LISTEN=127.0.0.1:\([0-9]*\).*/\1/p' "$TB_SRC/examples/Dockerfile")
bash -c "${hc//$dport/18649}" || { echo "HEALTHCHECK failed against a ready node"; exit 1; }

echo "== ?peers=all: 200 while the peer answers, 503 once its wireguard-go is gone"
[ "$(status '/readyz?peers=all')" = 200 ] || { echo "peers=all with a live peer: $(cat "$TB_DIR/body")"; exit 1; }
kill "$TB_WGPID_peer"
# Traffic towards the dead peer makes the node try a new handshake, which goes unanswered.
curl -sS --max-time 40 --socks5 "$PROXY" http://100.64.0.2:8000/blob -o /dev/null 2>/dev/null &
probe=$!
ok=0
for _ in $(seq 60); do
  [ "$(status '/readyz?peers=all')" = 503 ] && { ok=1; break; }
  sleep 1
done
kill "$probe" 2>/dev/null || true
wait "$probe" 2>/dev/null || true
[ "$ok" = 1 ] || { echo "/readyz?peers=all stayed 200 after the peer died"; exit 1; }
echo "readyz?peers=all: $(cat "$TB_DIR/body")"
grep -q web "$TB_DIR/body" || { echo "the 503 does not name the peer"; exit 1; }
[ "$(status /readyz)" = 200 ] || { echo "plain /readyz should stay 200 (the node runs)"; exit 1; }
bash -c "${hc//$dport/18649}" || { echo "HEALTHCHECK (plain readiness) failed"; exit 1; }

kill -TERM "$node_pid"
rc=0; wait "$node_pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "node exited $rc"; exit 1; }
echo "metrics: ok"
