#!/usr/bin/env bash
# Sets up, builds, and runs tlsedge on its embedded default configuration:
# https://localhost:8443/ (self-signed certificate generated on first start),
# http://localhost:8080/ redirects there. State lives in build/demo-state.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$("$top/scripts/build.sh" release)
mkdir -p "$top/build/demo"
cd "$top/build/demo"
echo "tlsedge: try  curl -k https://localhost:8443/   (Ctrl-C to stop)" >&2
exec "$dir/proxy/tlsedge" run
