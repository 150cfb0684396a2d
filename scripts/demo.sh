#!/usr/bin/env bash
# The first command of the quick start: build (installing dependencies), then run
# `tunless demo` (two nodes in one process; Ctrl-C stops it). Arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
exec build/tunless demo "$@"
