#!/usr/bin/env bash
# Every global symbol a library defines carries the library's prefix (ctest style.symbols).
#   scripts/check_symbols.sh LIB.a=PREFIX[,NAME...] [LIB.a=PREFIX ...]
# NAMEs are symbols another library requires by that exact name (lwIP's port calls `sys_now`).
# Symbols the toolchain adds (sanitizer and coverage instrumentation, names starting with "__"
# or ".") are not ours and are skipped. Lists each offender and exits 1 if there is any.
set -euo pipefail
bad=0
for arg in "$@"; do
  lib=${arg%=*}
  spec=${arg##*=}
  prefix=${spec%%,*}
  extra=",${spec#"$prefix"},"
  [ -f "$lib" ] || { echo "missing library: $lib"; exit 1; }
  while read -r sym; do
    case "$sym" in "$prefix"* | __* | .* | asan.*) continue ;; esac
    [[ "$extra" == *",$sym,"* ]] && continue
    echo "$(basename "$lib"): $sym does not start with $prefix"
    bad=1
  done < <(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u)
done
exit $bad
