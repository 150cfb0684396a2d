#!/usr/bin/env bash
# The configurations under examples/ are what newcomers copy: each must pass `tunless up --check`.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# As they are in a clean checkout: nothing made beside them, modes as git leaves them.
out=$("$TB_BIN" up --check --config "$TB_SRC/examples/wg0.conf")
echo "$out"
grep -q 'wg0.conf: ok: 2 address(es), 2 peer(s)' <<< "$out" || { echo "wg0.conf summary wrong"; exit 1; }
out=$("$TB_BIN" up --check --netmap "$TB_SRC/examples/netmap.json")
echo "$out"
grep -q 'netmap.json: ok:' <<< "$out" || { echo "netmap.json did not check"; exit 1; }
# A wireproxy configuration runs as it is; each of its sections is announced with what it became.
out=$("$TB_BIN" up --check --config "$TB_SRC/examples/wireproxy.conf")
echo "$out"
for want in 'notice: .*wireproxy.conf:16: \[TCPClientTunnel\] -> --forward 127.0.0.1:25565=play.example.net:25565$' \
            'notice: .*wireproxy.conf:21: \[TCPServerTunnel\] -> --publish 3422=localhost:25545$' \
            'notice: .*wireproxy.conf:26: \[UDPProxyTunnel\] -> --forward udp:127.0.0.1:5300=10.200.200.1:53$' \
            'notice: .*wireproxy.conf:31: \[Socks5\] -> --socks5 127.0.0.1:25344$' \
            'notice: .*wireproxy.conf:35: \[http\] -> --http-proxy 127.0.0.1:25345$' \
            '^listener socks5 127.0.0.1:25344$' '^listener http-proxy 127.0.0.1:25345$' \
            '^forward udp 127.0.0.1:5300 -> 10.200.200.1:53$' '^publish tcp 3422 -> localhost:25545$'; do
  grep -q -- "$want" <<< "$out" || { echo "wireproxy.conf: no line like $want"; exit 1; }
done
! grep -q '^listener proxy' <<< "$out" || { echo "wireproxy.conf: the default proxy still starts"; exit 1; }
# A flag given for the same listener wins, and says so.
out=$("$TB_BIN" up --check --config "$TB_SRC/examples/wireproxy.conf" --socks5 127.0.0.1:1081)
grep -q '\[Socks5\] BindAddress 127.0.0.1:25344: --socks5 given, which wins$' <<< "$out" &&
  grep -q '^listener socks5 127.0.0.1:1081$' <<< "$out" || { echo "$out"; echo "--socks5 did not win"; exit 1; }
# And --check must fail on what is broken.
echo "[Interface]" > "$dir/broken.conf"
rc=0; "$TB_BIN" up --check --config "$dir/broken.conf" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "--check on a broken file exited $rc, want 2"; exit 1; }

# examples/Dockerfile's runtime stage installs exactly the Debian packages behind `ldd tunless`
# (libc6 comes with the base image).
# A sanitizer build links the unwinder (libgcc-s1) too; only the shipped build is compared.
if nm "$TB_BIN" 2>/dev/null | grep ' __asan_init$' >/dev/null; then
  echo "skip the Dockerfile's library check: this is a sanitizer build"
elif command -v dpkg >/dev/null; then
  need=$(ldd "$TB_BIN" | awk '/=> \// {print $3}' | while read -r lib; do
           dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib"
         done | cut -d: -f1 | grep -vx libc6 | sort -u | tr '\n' ' ')
  have=$(sed -n '/^FROM debian:bookworm-slim$/,$p' "$TB_SRC/examples/Dockerfile" |
         grep -oE '^ +lib[a-z0-9.+-]+( [a-z0-9.+-]+)*' | tr ' ' '\n' | grep . | sort -u | tr '\n' ' ')
  echo "Dockerfile runtime packages: $have(ldd: $need)"
  [ "$need" = "$have" ] || { echo "examples/Dockerfile's runtime packages differ from ldd's"; exit 1; }
fi
grep -qx 'build' "$TB_SRC/.dockerignore" || { echo ".dockerignore must keep build/ out"; exit 1; }

# The systemd unit: systemd-analyze verify says nothing, and the sandbox scores "OK" or better.
if command -v systemd-analyze >/dev/null; then
  sed "s#/usr/local/bin/tunless#$TB_BIN#g" "$TB_SRC/examples/tunless.service" \
    > "$dir/tunless.service"
  said=$(systemd-analyze verify "$dir/tunless.service" 2>&1) || { echo "$said"; exit 1; }
  [ -z "$said" ] || { echo "systemd-analyze verify: $said"; exit 1; }
  score=$(systemd-analyze security --offline=true "$dir/tunless.service" 2>&1 |
          sed -n 's/.*Overall exposure level for tunless.service: \([0-9.]*\).*/\1/p')
  echo "tunless.service: exposure $score"
  awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || { echo "exposure too high"; exit 1; }
else
  echo "skip: systemd-analyze not installed"
fi
echo "examples: ok"
