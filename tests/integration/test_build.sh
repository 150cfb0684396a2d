#!/usr/bin/env bash
# What the build promises about itself: lwIP is compiled in from source with our options,
# never Debian's prebuilt liblwip (built for the Hurd, 64 KiB windows).
set -euo pipefail
: "${TB_BIN:?}"
libs=$(ldd "$TB_BIN")
if grep -qi lwip <<< "$libs"; then
  ldd "$TB_BIN"; echo "tunless links a shared lwIP"; exit 1
fi
# Our lwIP is in the binary itself: its core symbols are defined, not imported.
syms=$(nm "$TB_BIN")   # not piped into grep -q: pipefail would see nm's SIGPIPE
grep -q ' T tcp_input$' <<< "$syms" || { echo "lwIP's tcp_input is not compiled in"; exit 1; }
echo "build: ok (no shared lwIP; lwIP compiled in)"
