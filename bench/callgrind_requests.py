#!/usr/bin/env python3
"""Instructions (valgrind callgrind, Ir) tlsedge spends per HTTPS request.

Runs BINARY under callgrind with one worker and a `respond` route, sends N1
and then (in a second run) N2 keep-alive requests over one TLS connection
with curl, and prints (Ir(N2) - Ir(N1)) / (N2 - N1): the per-request cost,
with start-up, the handshake and shutdown cancelled out. Compare two
binaries (before/after a change) with the same N1, N2.

    bench/callgrind_requests.py build/rel/cli/tlsedge [--n1 500 --n2 2500]
    bench/callgrind_requests.py BINARY --limits '{"per_client": {"requests_per_second": 1000000}}'

`--limits` (JSON) becomes the config's `limits` section: the same binary
with and without a setting gives that setting's cost per request.

Needs valgrind, openssl and curl. Loopback only; every process is stopped
by its PID. Takes about a minute per binary (callgrind is ~50x slower).
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"tlsedge exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


def run_once(binary, tmp, n, limits):
    port = free_port()
    config = {
        "workers": 1,
        "listen": {"https": [f"127.0.0.1:{port}"], "http": []},
        "state_dir": os.path.join(tmp, "state"),
        "metrics": {"listen": ""},
        "certificates": {"a": {"cert": os.path.join(tmp, "a.pem"),
                               "key": os.path.join(tmp, "a.key")}},
        "sites": [{"name": "a", "hosts": ["a.test"], "tls": {"certificate": "a"},
                   "routes": [{"path": "/", "respond": {"status": 200, "body": "ok\n"}}]}],
    }
    if limits:
        config["limits"] = limits
    path = os.path.join(tmp, "tlsedge.yaml")
    with open(path, "w") as f:
        json.dump(config, f)  # JSON is YAML
    out = os.path.join(tmp, f"callgrind.{n}")
    log = open(os.path.join(tmp, f"tlsedge.{n}.log"), "wb")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             binary, "run", "-c", path],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        subprocess.run(["curl", "-sS", "-k", "-o", "/dev/null", "--resolve",
                        f"a.test:{port}:127.0.0.1", f"https://a.test:{port}/[1-{n}]"],
                       check=True, timeout=600)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
    with open(out) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--n1", type=int, default=500)
    parser.add_argument("--n2", type=int, default=2500)
    parser.add_argument("--limits", type=json.loads, default=None,
                        help="the config's `limits` section, as JSON")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    with tempfile.TemporaryDirectory(prefix="tlsedge-cg-") as tmp:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/CN=a.test",
                        "-addext", "subjectAltName=DNS:a.test", "-keyout",
                        os.path.join(tmp, "a.key"), "-out", os.path.join(tmp, "a.pem")],
                       check=True, capture_output=True, timeout=60)
        ir1 = run_once(binary, tmp, args.n1, args.limits)
        ir2 = run_once(binary, tmp, args.n2, args.limits)
    per = (ir2 - ir1) / (args.n2 - args.n1)
    print(f"{binary}: Ir({args.n1})={ir1} Ir({args.n2})={ir2} -> {per:.0f} instructions/request")


if __name__ == "__main__":
    sys.exit(main())
