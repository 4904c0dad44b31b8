#!/usr/bin/env bash
# Installs everything tlsedge needs on Debian 12 (by package name, from Debian's
# archive), the browser test's npm packages into the cache (npm ci, below),
# and builds BoringSSL into the cache. Idempotent and quiet when all is
# already there. Prints nothing on stdout but the BoringSSL directory.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config dpkg-dev
  libuv1-dev libyaml-cpp-dev prometheus-cpp-dev libbenchmark-dev
  libgtest-dev libgmock-dev node-llhttp nlohmann-json3-dev
  libnghttp2-dev  # HTTP/2 frames (proxy/http2_connection.cc)
  libcli11-dev  # the command line (cli/), header-only
  # real peers for the tests
  curl openssl wrk python3 pebble prometheus  # prometheus: promtool
  python3-cryptography  # test_acme_renew (ARI certId), test_acme_ca (alternate chains)
  systemd  # systemd-analyze verify, systemd-socket-activate (tests/integration/test_systemd.py)
  nghttp2-client python3-h2  # HTTP/2 clients: h2load, nghttp; hostile peers (test_http2*.py)
  etcd-server etcd-client  # fleet mode's store (tests/integration/etcd.py starts its own members)
  python3-jsonschema  # the OpenAPI description checked against the running API (test_openapi.py)
  haproxy  # a real L4 balancer sending PROXY headers (tests/integration/test_proxy_protocol.py)
  clang-14 libfuzzer-14-dev  # the fuzz build (scripts/build.sh fuzz, tests/fuzz)
  # the web console's browser test (tests/integration/test_console.py): a real
  # browser, driven by playwright-core from npm (below), which downloads none
  chromium nodejs
)
# `scripts/setup.sh --bench`: also the servers bench/loadcmp.py compares
# against and the ACME client bench/acme_first_cert.py times tlsedge beside
# (by hand, never by the tests).
if [ "${1:-}" = "--bench" ]; then
  packages+=(nginx lego)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # Under systemd, installing etcd-server also enables and starts a system
  # etcd on localhost:2379/2380 with no authentication. The tests never use
  # it (they start their own members on free ports), so when this run is
  # what installed it, stop and disable it. An etcd-server installed before
  # is left alone.
  if [[ " ${missing[*]} " == *" etcd-server "* ]] && [ -d /run/systemd/system ]; then
    echo "setup: stopping and disabling the system etcd service (not used by the tests)" >&2
    $sudo systemctl disable --now etcd.service >&2 || true
  fi
  if [[ " ${missing[*]} " == *" haproxy "* ]] && [ -d /run/systemd/system ]; then
    echo "setup: stopping and disabling the system haproxy service (the tests start their own)" >&2
    $sudo systemctl disable --now haproxy.service >&2 || true
  fi
fi

# npm: Debian's package, unless a node distribution that bundles it (e.g.
# NodeSource's nodejs, which conflicts with Debian's npm) is installed.
if ! command -v npm >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "setup: installing npm" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >&2
fi

# tests/browser's npm packages (playwright-core, pinned by its lock file),
# installed with `npm ci` outside the clone, keyed by the lock file's hash:
#   ${TLSEDGE_CACHE:-$HOME/.cache/tlsedge}/npm/<hash>/node_modules
# (test_console.py computes the same path). Built in a temporary directory
# and renamed into place, so a half-done install is never used.
browser=$(cd "$(dirname "$0")/../tests/browser" && pwd)
npm_key=$(sha256sum "$browser/package-lock.json" | cut -c1-16)
npm_cache=${TLSEDGE_CACHE:-$HOME/.cache/tlsedge}/npm
if [ ! -d "$npm_cache/$npm_key/node_modules" ]; then
  mkdir -p "$npm_cache"
  npm_work=$(mktemp -d "$npm_cache/.work.XXXXXX")
  cp "$browser/package.json" "$browser/package-lock.json" "$npm_work/"
  echo "setup: npm ci (tests/browser) into $npm_cache/$npm_key" >&2
  (cd "$npm_work" && npm ci --no-audit --no-fund --ignore-scripts >&2)
  mv -T "$npm_work" "$npm_cache/$npm_key" 2>/dev/null || rm -rf "$npm_work"
fi

exec "$(dirname "$0")/boringssl.sh"
