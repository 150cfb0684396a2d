#!/usr/bin/env bash
# `tunless genkey | tunless pubkey` must agree with wg(8) for the same private key, both ways.
set -euo pipefail
: "${TB_BIN:?}"
command -v wg >/dev/null || { echo "wg not installed"; exit 77; }

for _ in 1 2 3; do
  priv=$("$TB_BIN" genkey)
  [ "${#priv}" -eq 44 ] || { echo "genkey printed ${#priv} characters"; exit 1; }
  ours=$(printf '%s\n' "$priv" | "$TB_BIN" pubkey)
  theirs=$(printf '%s\n' "$priv" | wg pubkey)
  [ "$ours" = "$theirs" ] || { echo "pubkey mismatch: $ours vs $theirs"; exit 1; }

  priv=$(wg genkey)
  ours=$(printf '%s' "$priv" | "$TB_BIN" pubkey)
  theirs=$(printf '%s' "$priv" | wg pubkey)
  [ "$ours" = "$theirs" ] || { echo "pubkey mismatch on wg's key: $ours vs $theirs"; exit 1; }
done

# Bad input: a clear error and exit 2, never a key.
if out=$(echo "not a key" | "$TB_BIN" pubkey 2>&1); then
  echo "pubkey accepted garbage: $out"; exit 1
fi
rc=0; echo "not a key" | "$TB_BIN" pubkey >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { echo "pubkey exit code $rc, want 2"; exit 1; }
"$TB_BIN" version | grep -q '^tunless ' || { echo "version output wrong"; exit 1; }
"$TB_BIN" --help | grep -q 'genkey' || { echo "--help does not list genkey"; exit 1; }
echo "keys: ok"
