#!/usr/bin/env bash
# Our wg-quick parser against wg(8)'s: each tests/data/wg-interop*.conf goes through
# `wg-quick strip | wg setconf` into a wireguard-go interface that is never brought up (no
# traffic at all), and `wg show dump` must equal what tests/tools/config_dump read from the
# same file: keys, preshared keys, endpoints, allowed IPs (masked), keepalives, listen port.
# Root only (exit 77 otherwise).
set -euo pipefail
: "${TB_TOOLS:?}" "${TB_SRC:?}"
DUMP="$TB_TOOLS/config_dump"
[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }
for cmd in wireguard-go wg wg-quick; do
  command -v "$cmd" >/dev/null || { echo "skip: $cmd not installed"; exit 77; }
done
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
[ -x "$DUMP" ] || { echo "skip: $DUMP not built"; exit 77; }

IFACE="tlcfg$$"
IFACE=${IFACE:0:15}
dir=$(mktemp -d)
wgpid=
cleanup() {
  [ -n "$wgpid" ] && kill "$wgpid" 2>/dev/null && wait "$wgpid" 2>/dev/null
  ip link del "$IFACE" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 WG_PROCESS_FOREGROUND=1 \
  wireguard-go "$IFACE" > "$dir/wireguard-go.log" 2>&1 &
wgpid=$!
for _ in $(seq 600); do wg show "$IFACE" >/dev/null 2>&1 && break; sleep 0.05; done
wg show "$IFACE" >/dev/null || { echo "wireguard-go did not start"; cat "$dir/wireguard-go.log"; exit 1; }

# One line per peer with the allowed IPs sorted, peers sorted: wg lists both in its own order.
normalize() {
  local first=1
  while IFS=$'\t' read -r -a f; do
    if [ "$first" = 1 ]; then
      printf '%s\t%s\t%s\n' "${f[0]}" "${f[1]}" "${f[2]}"
      first=0
      continue
    fi
    local allowed
    allowed=$(tr ',' '\n' <<< "${f[3]}" | sort | paste -sd, -)
    printf 'peer\t%s\t%s\t%s\t%s\t%s\n' "${f[0]}" "${f[1]}" "${f[2]}" "$allowed" "${f[7]}"
  done | sort
}

n=0
for conf in "$TB_SRC"/tests/data/wg-interop*.conf; do
  cp "$conf" "$dir/$(basename "$conf")"
  wg-quick strip "$dir/$(basename "$conf")" > "$dir/stripped"
  wg setconf "$IFACE" "$dir/stripped"
  wg show "$IFACE" dump | normalize > "$dir/theirs"
  "$DUMP" "$conf" | normalize > "$dir/ours"
  if ! diff -u "$dir/theirs" "$dir/ours"; then
    echo "FAIL: $conf: wg(8) (-) and tunless (+) read it differently"
    exit 1
  fi
  [ "$(wc -l < "$dir/ours")" -ge 2 ] || { echo "FAIL: $conf: no peers compared"; exit 1; }
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "FAIL: no tests/data/wg-interop*.conf"; exit 1; }
echo "config interop: $n files read the same by wg(8) and tunless"
