#!/usr/bin/env bash
# Sets up, builds, and runs tlsedge on its embedded default configuration:
# https://localhost:8443/ (certificate from the internal issuer: a local CA
# created on first start in build/demo/tlsedge-state/acme/local-ca/),
# http://localhost:8080/ redirects there. State lives in build/demo/tlsedge-state.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$("$top/scripts/build.sh" release)
mkdir -p "$top/build/demo"
cd "$top/build/demo"
echo "tlsedge: try  curl --cacert $top/build/demo/tlsedge-state/acme/local-ca/ca.pem https://localhost:8443/" >&2
echo "        (the local CA is made on first start; or curl -k; Ctrl-C to stop)" >&2
exec "$dir/cli/tlsedge" run
