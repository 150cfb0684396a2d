#!/usr/bin/env bash
# Builds the Go reference (proxy, httpsrv, sockbuf, sockclient: see README.md here) from
# Debian's packages only: Go in GOPATH mode against /usr/share/gocode, nothing downloaded.
#
#   bench/goref/build.sh OUT_DIR      (the programs land in OUT_DIR; the Go build cache beside
#                                      it, in OUT_DIR/../gocache)
#
# Installs the packages when they are missing and this runs as root with apt-get
# (SKIP_APT=1: never). Exit 77 when they are missing and cannot be installed, so a test can
# skip; any other failure is a build error.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: build.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

PKGS=(golang-go golang-golang.zx2c4-wireguard-dev golang-gvisor-gvisor-dev
  golang-github-armon-go-socks5-dev golang-golang-x-crypto-dev golang-golang-x-net-dev
  golang-golang-x-sys-dev)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" > /dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${SKIP_APT:-0}" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
    echo "goref: missing Debian packages: ${missing[*]} (install them as root)" >&2
    exit 77
  fi
  echo "goref: installing ${missing[*]}" >&2
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"; } >&2 || {
    echo "goref: apt-get could not install ${missing[*]}" >&2
    exit 77
  }
fi

export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off CGO_ENABLED=0
export GOCACHE=${GOCACHE:-$(dirname "$OUT")/gocache}
for prog in proxy httpsrv sockbuf sockclient; do
  (cd "$HERE/$prog" && go build -trimpath -o "$OUT/$prog" .)
done
echo "goref: built proxy httpsrv sockbuf sockclient in $OUT ($(go version | cut -d' ' -f3))"
