#!/usr/bin/env bash
# The test command: installs what is missing, builds twice (gcc; clang with ASan+UBSan and
# libFuzzer), runs the whole suite in both, and ends with ctest's summary line.
#   scripts/test.sh            everything
#   scripts/test.sh -R REGEX   only the tests whose names match (passed to both ctest runs)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/build.sh build
if command -v clang >/dev/null 2>&1; then
  bash scripts/build.sh build-san -DCMAKE_C_COMPILER=clang -DTUNLESS_SANITIZE=ON -DTUNLESS_FUZZ=ON
  echo "== sanitizer build (ASan + UBSan, libFuzzer)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-san --output-on-failure "$@"
else
  echo "== clang not found: skipping the sanitizer build"
fi
echo "== normal build"
ctest --test-dir build --output-on-failure "$@"
