#!/usr/bin/env bash
# Configures and builds tlsedge into build/<variant> (variant: release | asan | tsan
# | fuzz). fuzz: clang-14, the product libraries with coverage, ASan and UBSan,
# and only the libFuzzer targets of tests/fuzz (no daemon, bench or tests).
# Usage: scripts/build.sh [release|asan|tsan|fuzz]   Prints the build directory.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
variant=${1:-release}
bssl=$("$top/scripts/setup.sh")
case "$variant" in
  release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) flags=(-DCMAKE_BUILD_TYPE=Debug -DTLSEDGE_SANITIZE=ON -DTLSEDGE_BENCH=OFF) ;;
  tsan) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSEDGE_TSAN=ON -DTLSEDGE_BENCH=OFF) ;;
  fuzz)
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14
      -DCMAKE_CXX_COMPILER=clang++-14 -DTLSEDGE_FUZZ=ON -DTLSEDGE_BENCH=OFF -DTLSEDGE_TESTS=OFF)
    targets=(--target tlsedge_fuzzers --parallel 2) ;;
  *) echo "build.sh: unknown variant $variant (release|asan|tsan|fuzz)" >&2; exit 2 ;;
esac
dir="$top/build/$variant"
cmake -S "$top" -B "$dir" -G Ninja -DBORINGSSL_ROOT="$bssl" "${flags[@]}" >&2
cmake --build "$dir" ${targets[@]+"${targets[@]}"} >&2
echo "$dir"
