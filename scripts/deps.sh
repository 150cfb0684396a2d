#!/usr/bin/env bash
# Install what tunless builds and tests with, from Debian's packages, and fetch lwIP's
# upstream source (Debian's source package) into a cache outside the git tree.
# Idempotent: a second run installs nothing and prints what it found.
#   scripts/deps.sh               what building and testing need
#   scripts/deps.sh --build-only  only what building needs (examples/Dockerfile's build stage)
set -euo pipefail

CACHE_DIR="${TUNLESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tunless}"
LWIP_VERSION=2.1.3

BUILD_PKGS=(build-essential cmake pkg-config libsodium-dev libuv1-dev libjansson-dev
            libc-ares-dev libssl-dev libcmocka-dev node-llhttp dpkg-dev patch)
TEST_PKGS=(wireguard-go wireguard-tools iproute2 curl dnsutils iperf3 python3 python3-nacl clang
           libclang-rt-14-dev procps util-linux dnsmasq dnsperf iputils-ping clang-format
           prometheus python3-prometheus-client tcpdump)

say() { printf 'deps: %s\n' "$*"; }

missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

# apt-get source needs deb-src lines; derive them from the deb lines already configured.
ensure_deb_src() {
  if grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
       /etc/apt/sources.list.d/*.sources 2>/dev/null; then
    return 0
  fi
  say "no deb-src entries: deriving them from the configured deb entries"
  local f out=/etc/apt/sources.list.d/tunless-deb-src
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed -E 's/^Types:.*/Types: deb-src/' "$f" >> "$out.sources"
    echo >> "$out.sources"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    grep -E '^deb ' "$f" | sed -E 's/^deb /deb-src /' >> "$out.list" || true
  done
  apt-get update -q
}

install_pkgs() {
  local missing
  missing=$(missing_pkgs "$@")
  if [ -z "$missing" ]; then
    say "all Debian packages present"
    return 0
  fi
  if ! can_install; then
    say "missing packages: $(echo $missing)"
    say "install them as root: apt-get install $(echo $missing)"
    return 1
  fi
  say "installing: $(echo $missing)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
}

fetch_lwip() {
  local dest="$CACHE_DIR/lwip-$LWIP_VERSION"
  if [ -f "$dest/src/core/tcp.c" ]; then
    say "lwIP $LWIP_VERSION source present in $dest"
    return 0
  fi
  if ! can_install; then
    say "lwIP source missing: run this script as root, or download lwIP $LWIP_VERSION"
    say "and configure with -DLWIP_SOURCE_DIR=/path/to/lwip"
    return 1
  fi
  ensure_deb_src
  local tmp
  tmp=$(mktemp -d)
  say "fetching Debian's lwip source package into $tmp"
  (cd "$tmp" && apt-get source -q --download-only lwip && dpkg-source -x --skip-patches lwip_*.dsc src)
  mkdir -p "$CACHE_DIR"
  rm -rf "$dest"
  mv "$tmp/src" "$dest"
  rm -rf "$tmp"
  say "lwIP $LWIP_VERSION source in $dest"
}

if [ "${1:-}" = --build-only ]; then
  install_pkgs "${BUILD_PKGS[@]}"
else
  install_pkgs "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
fi
fetch_lwip
