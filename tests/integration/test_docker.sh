#!/usr/bin/env bash
# examples/Dockerfile built as it is written, by buildah (Debian's package, no daemon), and the
# image run as its config says: `tunless --version`, then the ENTRYPOINT with its ENV and USER
# and a configuration mounted at /run/secrets, until the HEALTHCHECK's own command (bash, no curl)
# says healthy.
#
# No registry is reachable from this machine, so the base image (FROM debian:bookworm-slim) is
# made here once with debootstrap from Debian's mirror and kept in buildah's store under that
# name; the build stage's apt-get uses the same mirror. Opt-in (TUNLESS_DOCKER_TEST=1): on this
# 2-core machine under load it took 13 min the first time (debootstrap 8.5 min, bud 12.9 min with
# an empty cache) and several minutes after that (the compile), too long for every run of the
# suite. Skips (77) otherwise, and unless root with buildah and debootstrap installed.
set -euo pipefail
: "${TB_BIN:?}" "${TB_SRC:?}"
skip() { echo "skip: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ "${TUNLESS_DOCKER_TEST:-}" = 1 ] || skip "set TUNLESS_DOCKER_TEST=1 to build examples/Dockerfile (minutes)"
[ "$(id -u)" = 0 ] || skip "buildah needs root here"
for tool in buildah debootstrap ip; do command -v "$tool" >/dev/null || skip "$tool not installed"; done

BASE=docker.io/library/debian:bookworm-slim
IMAGE=localhost/tunless-itest:latest
NS=tldocker-run
dir=$(mktemp -d /tmp/tunless-docker-XXXXXX)
ctr=
cleanup() {
  local rc=$?
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  ip netns del "$NS" 2>/dev/null || true
  [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -f "$dir/node.log" ] && tail -n 30 "$dir/node.log"
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT
secs() { echo $(( $(date +%s) - $1 )); }

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  echo "== the base image, once: debootstrap --variant=minbase bookworm, committed as $BASE"
  t=$(date +%s)
  debootstrap --variant=minbase bookworm "$dir/rootfs" http://deb.debian.org/debian \
    > "$dir/debootstrap.log" 2>&1 || { tail -n 20 "$dir/debootstrap.log"; fail "debootstrap"; }
  c=$(buildah from scratch)
  m=$(buildah mount "$c")
  cp -a "$dir/rootfs/." "$m/"
  buildah umount "$c" >/dev/null
  buildah commit -q "$c" "$BASE" >/dev/null
  buildah rm "$c" >/dev/null
  rm -rf "$dir/rootfs"
  echo "base image made in $(secs "$t") s"
fi

echo "== buildah bud -f examples/Dockerfile (the repository's root as the context)"
t=$(date +%s)
# --format docker: OCI images have no HEALTHCHECK. chroot isolation: no OCI runtime needed.
# --layers: the next run reuses the toolchain's layer (the Dockerfile installs it first).
buildah bud --layers --isolation chroot --pull=never --format docker -t "$IMAGE" \
  -f "$TB_SRC/examples/Dockerfile" "$TB_SRC" > "$dir/build.log" 2>&1 ||
  { tail -n 40 "$dir/build.log"; fail "the image does not build"; }
echo "image built in $(secs "$t") s"
# .dockerignore kept the local build trees out of the context.
! grep -q 'build-dev\|build-san' "$dir/build.log" || fail "a build tree went into the context"

ctr=$(buildah from --pull=never "$IMAGE")
run() { buildah run --isolation chroot "$@"; }
want=$("$TB_BIN" --version)
got=$(run "$ctr" -- /usr/local/bin/tunless --version)
[ "$got" = "$want" ] || fail "tunless --version in the image: '$got', want '$want'"
[ "$(run "$ctr" -- id -un)" = nobody ] || fail "the image does not run as nobody"

echo "== the ENTRYPOINT with the image's ENV, a secret mount, until the HEALTHCHECK passes"
cfg=$(buildah inspect --type image "$IMAGE")
entry=$(python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["Docker"]["config"]["Entrypoint"]))' <<< "$cfg")
check=$(python3 -c 'import json,sys; t=json.load(sys.stdin)["Docker"]["config"]["Healthcheck"]["Test"]; assert t[0]=="CMD-SHELL", t; print(t[1])' <<< "$cfg")
[ "$entry" = "/usr/local/bin/tunless up" ] || fail "ENTRYPOINT is '$entry'"
mkdir "$dir/secrets"
key=$("$TB_BIN" genkey)
cat > "$dir/secrets/wg0.conf" <<CONF
[Interface]
PrivateKey = $key
Address = 100.64.0.1/32
[Peer]
PublicKey = $(printf '%s\n' "$("$TB_BIN" genkey)" | "$TB_BIN" pubkey)
Endpoint = 192.0.2.1:51820
AllowedIPs = 100.64.0.2/32
CONF
printf 'itest-password\n' > "$dir/secrets/proxy-pass"
# As the README says: the secrets stay 0600, owned by the container's user.
chown -R nobody:nogroup "$dir/secrets"
chmod 600 "$dir/secrets"/*
# The container shares the network namespace it is run in (chroot isolation): a fresh one, so
# its 0.0.0.0:1080 and 127.0.0.1:9180 are its own.
ip netns add "$NS"
ip -n "$NS" link set lo up
if ip netns exec "$NS" buildah run --isolation chroot "$ctr" -- bash -c "$check" 2>/dev/null; then
  fail "healthy before the node runs"
fi
# shellcheck disable=SC2086 # the ENTRYPOINT's words
ip netns exec "$NS" buildah run --isolation chroot -v "$dir/secrets:/run/secrets:ro" "$ctr" -- \
  $entry > "$dir/node.log" 2>&1 &
node=$!
healthy=no
for _ in $(seq 100); do
  if ip netns exec "$NS" buildah run --isolation chroot "$ctr" -- bash -c "$check" 2>/dev/null; then
    healthy=yes; break
  fi
  sleep 0.2
done
kill -TERM "$node" 2>/dev/null || true
wait "$node" || true
[ "$healthy" = yes ] || fail "the HEALTHCHECK never passed"
grep -q 'event=listening service=socks5+http addr=0.0.0.0 port=1080' "$dir/node.log" ||
  fail "the proxy is not on 0.0.0.0:1080"
! grep -q 'event=listener_warning' "$dir/node.log" || fail "warned: the image's proxy has credentials"
echo "docker: ok"
