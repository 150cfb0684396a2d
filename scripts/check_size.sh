#!/usr/bin/env bash
# The size rules of the tree (ctest style.size): no C file over 800 lines, no function over 80
# lines (from the line after its opening brace in column 0 to its closing one). Lists each
# offender as file:line and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_FILE=${MAX_FILE:-800}
MAX_FUNC=${MAX_FUNC:-80}
if git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h')
else
  mapfile -t files < <(find . -path './build*' -prune -o \( -name '*.c' -o -name '*.h' \) -print)
fi
bad=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  n=$(wc -l < "$f")
  if [ "$n" -gt "$MAX_FILE" ]; then
    echo "$f: $n lines (over $MAX_FILE)"
    bad=1
  fi
  case "$f" in *.c) ;; *) continue ;; esac
  if ! awk -v max="$MAX_FUNC" -v file="$f" '
      /^\{/ { start = FNR; name = prev }
      /^\}/ && start { len = FNR - start - 1
                       if (len > max) { printf "%s:%d: function %s is %d lines (over %d)\n", file, start, name, len, max; bad = 1 }
                       start = 0 }
      { if ($0 !~ /^[{}]/) prev = $0 }
      END { exit bad }' "$f"; then
    bad=1
  fi
done
exit $bad
