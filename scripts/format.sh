#!/usr/bin/env bash
# Formats every C file of the tree with the committed .clang-format.
#   scripts/format.sh           rewrite in place
#   scripts/format.sh --check   change nothing; list what is off and exit 1 (ctest style.format)
set -euo pipefail
cd "$(dirname "$0")/.."
if git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h')
else
  mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune -o \
    \( -name '*.c' -o -name '*.h' \) -print)
fi
if [ "${1:-}" = "--check" ]; then
  exec clang-format --dry-run --Werror "${files[@]}"
fi
clang-format -i "${files[@]}"
