#!/usr/bin/env bash
# Sets up, builds and runs every test: the release build, then the same tests
# under AddressSanitizer + UndefinedBehaviorSanitizer, then under
# ThreadSanitizer (workers, publication, reload), then the fuzz step: the
# libFuzzer targets of tests/fuzz built with clang (build/fuzz), each over its
# seed corpus and then fuzzing for 20 s (scripts/fuzz.sh). A sanitizer report
# fails the daemon's exit status, which the integration tests assert. Exits
# non-zero on any failure. `scripts/test.sh release` runs only the named
# variant(s) (release, asan, tsan, fuzz).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(release asan tsan fuzz)
for v in "${variants[@]}"; do
  if [ "$v" = fuzz ]; then
    echo "== tests: fuzz ==" >&2
    "$top/scripts/fuzz.sh" all 20
    continue
  fi
  dir=$("$top/scripts/build.sh" "$v")
  echo "== tests: $v ==" >&2
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j2)
done
