#!/usr/bin/env bash
# Builds BoringSSL from Debian's source package android-platform-external-boringssl
# with its x86_64 assembly and without OPENSSL_SMALL (Debian's binary package is
# built with it and signs ECDSA P-256 about 5x slower), and caches the result
# outside the clone, keyed by the source package version:
#
#   ${TLSEDGE_CACHE:-$HOME/.cache/tlsedge}/boringssl/<version>/{include,lib,bin}
#
# Prints the cache directory on stdout. Idempotent: a finished build is reused.
# Uses a private apt source list (deb-src derived from the system's), so the
# machine's apt configuration is never modified.
set -euo pipefail

pkg=android-platform-external-boringssl
cache=${TLSEDGE_CACHE:-$HOME/.cache/tlsedge}
cache_root=$cache/boringssl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A private apt state with deb-src entries derived from the system's list,
# kept in the cache so that a build needs no index download when a fresh one
# (under a day old) is there.
apt_state=$cache/apt-src
mkdir -p "$apt_state/parts" "$apt_state/lists/partial"
rm -f "$apt_state/parts/"*
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  sed 's/^Types:.*/Types: deb-src/' "$f" >"$apt_state/parts/$(basename "$f")"
done
touch "$apt_state/parts/legacy.list"
if [ -f /etc/apt/sources.list ]; then
  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$apt_state/parts/legacy.list"
fi
apt_opts=(-o "Dir::Etc::SourceList=$apt_state/parts/legacy.list"
          -o "Dir::Etc::SourceParts=$apt_state/parts"
          -o "Dir::State::Lists=$apt_state/lists"
          -o "APT::Sandbox::User=root")
refresh_lists() {
  apt-get "${apt_opts[@]}" -qq update >&2 || [ -n "$(find "$apt_state/lists" -name '*Sources*' -print -quit)" ]
}
if [ -z "$(find "$apt_state/lists" -name '*Sources*' -mmin -1440 -print -quit)" ]; then
  refresh_lists
fi

version=${BORINGSSL_VERSION:-}
if [ -z "$version" ]; then
  version=$(apt-cache "${apt_opts[@]}" showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
fi
[ -n "$version" ] || { echo "boringssl.sh: no source version of $pkg found" >&2; exit 1; }
out="$cache_root/$version"
if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

echo "boringssl.sh: building $pkg $version into $out" >&2
(cd "$work" && apt-get "${apt_opts[@]}" -qq source --download-only "$pkg=$version" >&2)
(cd "$work" && dpkg-source -x --skip-patches ./*.dsc src >/dev/null)

# The package's android-sources.cmake holds the generated source lists; this
# small project compiles them as upstream's own CMake would, minus OPENSSL_SMALL.
cat >"$work/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(boringssl_tlsedge C CXX ASM)
set(BORINGSSL_ROOT ${CMAKE_CURRENT_SOURCE_DIR}/src/)
include(${BORINGSSL_ROOT}android-sources.cmake)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
add_compile_definitions(BORINGSSL_IMPLEMENTATION)
include_directories(${BORINGSSL_ROOT}src/include)
add_library(crypto STATIC ${crypto_sources} ${crypto_sources_linux_x86_64})
add_library(ssl STATIC ${ssl_sources})
target_link_libraries(ssl crypto)
add_executable(bssl ${tool_sources})
target_link_libraries(bssl ssl crypto pthread)
install(TARGETS crypto ssl ARCHIVE DESTINATION lib)
install(TARGETS bssl RUNTIME DESTINATION bin)
install(DIRECTORY ${BORINGSSL_ROOT}src/include/openssl DESTINATION include)
CMAKE

cmake -S "$work" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$out.tmp" >&2
cmake --build "$work/build" >&2
rm -rf "$out.tmp"
cmake --install "$work/build" >&2
echo "$version" >"$out.tmp/.complete"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
