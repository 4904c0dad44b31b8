#!/usr/bin/env bash
# Configures and builds tlsedge into build/<variant> (variant: release | asan | tsan).
# Usage: scripts/build.sh [release|asan|tsan]   Prints the build directory.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
variant=${1:-release}
bssl=$("$top/scripts/setup.sh")
case "$variant" in
  release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) flags=(-DCMAKE_BUILD_TYPE=Debug -DTLSEDGE_SANITIZE=ON -DTLSEDGE_BENCH=OFF) ;;
  tsan) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSEDGE_TSAN=ON -DTLSEDGE_BENCH=OFF) ;;
  *) echo "build.sh: unknown variant $variant (release|asan|tsan)" >&2; exit 2 ;;
esac
dir="$top/build/$variant"
cmake -S "$top" -B "$dir" -G Ninja -DBORINGSSL_ROOT="$bssl" "${flags[@]}" >&2
cmake --build "$dir" >&2
echo "$dir"
