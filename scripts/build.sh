#!/usr/bin/env bash
# Installs what is missing (scripts/deps.sh), then configures and builds one tree.
#   scripts/build.sh [BUILD_DIR [CMAKE_ARGS...]]     default: build/
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
[ $# -gt 0 ] && shift
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
bash scripts/deps.sh
cmake -S . -B "$dir" "${gen[@]}" "$@" >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)"
