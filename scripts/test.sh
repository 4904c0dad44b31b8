#!/usr/bin/env bash
# Sets up, builds and runs every test: the release build, then the same tests
# under AddressSanitizer + UndefinedBehaviorSanitizer, then under
# ThreadSanitizer (workers, publication, reload). A sanitizer report fails the
# daemon's exit status, which the integration tests assert. Exits non-zero on
# any failure. `scripts/test.sh release` runs only the named variant(s).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(release asan tsan)
for v in "${variants[@]}"; do
  dir=$("$top/scripts/build.sh" "$v")
  echo "== tests: $v ==" >&2
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j2)
done
