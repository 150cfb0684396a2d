#!/usr/bin/env bash
# The configurations under examples/ are what newcomers copy: each must pass `tunless up --check`.
set -euo pipefail
: "${TUNLESS_BIN:?}" "${TUNLESS_SRC:?}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$TUNLESS_SRC/examples/wg0.conf" "$TUNLESS_SRC/examples/netmap.json" "$dir/"
chmod 600 "$dir"/*
# netmap.json names its key file, as examples/netmap.md explains: make one beside it.
(umask 077 && "$TUNLESS_BIN" genkey > "$dir/gw.key")

out=$("$TUNLESS_BIN" up --check --config "$dir/wg0.conf")
echo "$out"
grep -q 'wg0.conf: ok: 2 address(es), 2 peer(s)' <<< "$out" || { echo "wg0.conf summary wrong"; exit 1; }
out=$("$TUNLESS_BIN" up --check --netmap "$dir/netmap.json")
echo "$out"
grep -q 'netmap.json: ok:' <<< "$out" || { echo "netmap.json did not check"; exit 1; }
# And --check must fail on what is broken.
echo "[Interface]" > "$dir/broken.conf"
rc=0; "$TUNLESS_BIN" up --check --config "$dir/broken.conf" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "--check on a broken file exited $rc, want 2"; exit 1; }
echo "examples: ok"
