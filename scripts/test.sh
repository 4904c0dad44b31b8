#!/usr/bin/env bash
# Sets up, builds and runs every test: the release build, then the same tests
# under AddressSanitizer + UndefinedBehaviorSanitizer. Exits non-zero on any
# failure. `scripts/test.sh release` runs only the release variant.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(release asan)
for v in "${variants[@]}"; do
  dir=$("$top/scripts/build.sh" "$v")
  echo "== tests: $v ==" >&2
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j2)
done
