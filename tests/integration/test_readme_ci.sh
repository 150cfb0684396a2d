#!/usr/bin/env bash
# The README's "In CI" block, run as it stands against a stock wireguard-go peer named staging
# that serves /health: it must succeed, print the health text, and stop the node with exit 0.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
. "$TB_SRC/tests/support/testbed.sh"
tb_init tlreadme

# The block uses the default proxy port: skip rather than fight whatever holds it here.
if (exec 3<>/dev/tcp/127.0.0.1/1080) 2>/dev/null; then echo "skip: 127.0.0.1:1080 is taken"; exit 77; fi

PEER_PORT=29881 NODE_PORT=29882
tb_peer staging "$PEER_PORT" 100.64.0.2/10
node_key=$("$TB_BIN" genkey)
node_pub=$(printf '%s\n' "$node_key" | "$TB_BIN" pubkey)
tb_peer_allow staging "$node_pub" 100.64.0.1/32 "127.0.0.1:$NODE_PORT"
mkdir -p "$TB_DIR/www" && echo "staging is healthy" > "$TB_DIR/www/health"
tb_bg "$TB_NS_staging" python3 -m http.server --bind 100.64.0.2 80 --directory "$TB_DIR/www" \
  > "$TB_DIR/http.log" 2>&1
tb_wait_tcp "$TB_NS_staging" 100.64.0.2 80

WG_CONFIG="[Interface]
PrivateKey = $node_key
Address = 100.64.0.1/32
ListenPort = $NODE_PORT

[Peer]
# Name = staging
PublicKey = $TB_PUB_staging
Endpoint = 127.0.0.1:$PEER_PORT
AllowedIPs = 100.64.0.2/32"
export WG_CONFIG

# The block between "### In CI" and the next heading, first ```sh fence.
awk '/^### In CI/ {on = 1} on && /^```sh/ {code = 1; next} code && /^```/ {exit} code {print}' \
  "$TB_SRC/README.md" > "$TB_DIR/ci.sh"
[ -s "$TB_DIR/ci.sh" ] || { echo "no sh block under '### In CI' in README.md"; exit 1; }
cat "$TB_DIR/ci.sh"

mkdir -p "$TB_DIR/job"
rc=0
(cd "$TB_DIR/job" && PATH="$(dirname "$TB_BIN"):$PATH" HOME="$TB_DIR/job" \
  timeout 60 bash -euo pipefail "$TB_DIR/ci.sh") > "$TB_DIR/job.out" 2> "$TB_DIR/job.log" || rc=$?
cat "$TB_DIR/job.out"
[ "$rc" -eq 0 ] || { tail -20 "$TB_DIR/job.log"; echo "the README's CI block exited $rc"; exit 1; }
grep -qx "staging is healthy" "$TB_DIR/job.out" || { echo "the health text did not come back"; exit 1; }
[ "$(stat -c %a "$TB_DIR/job/wg0.conf")" = 600 ] || { echo "wg0.conf is not 0600"; exit 1; }
grep -q 'event=stopped' "$TB_DIR/job.log" || { echo "the node did not stop cleanly"; exit 1; }
echo "readme_ci: ok"
