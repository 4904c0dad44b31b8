#!/usr/bin/env python3
"""Time from start to first certificate: tlsedge beside lego, on one Pebble.

Run by hand (not in CI), after a release build:

    bench/acme_first_cert.py [--rounds 5] [--bin build/rel/cli/tlsedge]

One Pebble (Debian's `pebble`, PEBBLE_VA_NOSLEEP=1, otherwise its defaults:
5 % badNonce, 50 % authorization reuse) serves every round; each round is a
fresh account for two names (shop.test, www.shop.test), HTTP-01 on the same
loopback port, ECDSA P-256 certificate keys for both clients:

- tlsedge: from starting `tlsedge run` (fresh state directory) to the first
  TLS handshake for shop.test that verifies against Pebble's issuing root;
- lego (/usr/bin/lego, `run --http`): from starting it to its exit with the
  certificate written (LEGO_CA_CERTIFICATES trusts Pebble's TLS CA).

Prints one line per run and the median of each."""

import argparse
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from common import closed_port  # noqa: E402
from config import base_config, respond_route, site  # noqa: E402
from daemon import Daemon  # noqa: E402
from pebble import Pebble  # noqa: E402
import pki  # noqa: E402

HOSTS = ["shop.test", "www.shop.test"]
TIMEOUT = 60.0


class Cleanups:
    """What Pebble's harness registers with a test case, run at the end."""

    def __init__(self):
        self.fns = []

    def addCleanup(self, fn, *args):
        self.fns.append((fn, args))

    def run(self):
        for fn, args in reversed(self.fns):
            fn(*args)


def served(port, root_file):
    ctx = ssl.create_default_context(cafile=root_file)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            with ctx.wrap_socket(raw, server_hostname=HOSTS[0]):
                return True
    except (ssl.SSLError, OSError):
        return False


def time_tlsedge(tmp, pebble, http_port, root_file):
    state = os.path.join(tmp, "state")
    certs = pki.Certs(os.path.join(tmp, "pki"))
    fallback = certs.leaf("fallback", ["fallback.test"])
    cfg = base_config(state, http=(f"127.0.0.1:{http_port}",),
                      certificates={"fallback": fallback}, default_certificate="fallback",
                      sites=[site("shop", HOSTS, [respond_route("/", 200, "shop\n")],
                                  tls={"acme": True})])
    # The pre-flight probe resolves the names as Pebble's VA does (they are
    # not in any DNS here).
    cfg["acme"] = {"directory": pebble.directory, "email": "ops@shop.test",
                   "trusted_roots": [pebble.ca_cert],
                   "preflight_resolve": {h: "127.0.0.1" for h in HOSTS}}
    d = Daemon(tmp, cfg)
    started = time.monotonic()
    try:
        d.start()
        while not served(d.https_port, root_file):
            if time.monotonic() - started > TIMEOUT:
                raise RuntimeError(f"tlsedge: no certificate after {TIMEOUT}s\n{d.log()}")
            time.sleep(0.01)
        return time.monotonic() - started
    finally:
        d.cleanup()


def time_lego(tmp, pebble, http_port):
    env = dict(os.environ, LEGO_CA_CERTIFICATES=pebble.ca_cert)
    cmd = ["lego", "--server", pebble.directory, "--email", "ops@shop.test", "--accept-tos",
           "--path", os.path.join(tmp, "lego"), "--key-type", "ec256", "--http",
           "--http.port", f"127.0.0.1:{http_port}"]
    for h in HOSTS:
        cmd += ["--domains", h]
    started = time.monotonic()
    res = subprocess.run(cmd + ["run"], env=env, capture_output=True, text=True,
                         timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    if res.returncode != 0:
        raise RuntimeError(f"lego failed ({res.returncode}):\n{res.stderr}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bin", help="the tlsedge binary (else $TLSEDGE_BIN or build/rel)")
    args = parser.parse_args()
    os.environ.setdefault("TLSEDGE_BIN", args.bin or os.path.join(
        HERE, "..", "build", "release", "cli", "tlsedge"))
    if not shutil.which("lego"):
        sys.exit("lego is not installed (apt-get install lego)")
    top = tempfile.mkdtemp(prefix="acme-first-cert-")
    cleanups = Cleanups()
    results = {"tlsedge": [], "lego": []}
    try:
        http_port = closed_port()
        pebble = Pebble(cleanups, top, http_port, env={"PEBBLE_VA_NOSLEEP": "1"})
        root_file = os.path.join(top, "pebble-root.pem")
        with open(root_file, "w") as f:
            f.write(pebble.root_pem())
        for i in range(args.rounds):
            for name in ("tlsedge", "lego"):
                tmp = os.path.join(top, f"{name}-{i}")
                os.makedirs(tmp)
                if name == "tlsedge":
                    t = time_tlsedge(tmp, pebble, http_port, root_file)
                else:
                    t = time_lego(tmp, pebble, http_port)
                results[name].append(t)
                print(f"round {i + 1}: {name:8} {t:.3f} s", flush=True)
    finally:
        cleanups.run()
        shutil.rmtree(top, ignore_errors=True)
    for name, times in results.items():
        print(f"{name:8} median {statistics.median(times):.3f} s, "
              f"min {min(times):.3f} s, max {max(times):.3f} s ({len(times)} runs)")


if __name__ == "__main__":
    main()
