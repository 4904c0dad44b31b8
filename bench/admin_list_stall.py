#!/usr/bin/env python3
"""The longest control-loop stall while the admin API lists 100k certificates.

Run by hand (not in CI), after a release build:

    bench/admin_list_stall.py [--bin build/release/cli/tlsedge] [--certs 100000] [--lists 3]

The daemon (one worker) serves the generated store of `--certs` ECDSA
certificates that tlsedge_store_load_bench keeps in ~/.cache/tlsedge/bench/
(made there once if missing) through a symlinked <state>/certs, plus a
handful of sites. Once it is up, a sampler asks the control loop for
/healthz and /metrics (the metrics endpoint, answered on the control loop)
every 10 ms, one request at a time on one keep-alive connection, and
records each latency; meanwhile GET /v1/certificates (what `tlsedge cert
list` sends) runs `--lists` times over the admin socket. Prints, for the
sampled requests, the longest latency before the lists and during them,
and each list's duration. Target (issue 16): the longest stall during a
list under 20 ms."""

import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from config import base_config, respond_route, site  # noqa: E402
from daemon import Daemon  # noqa: E402
import pki  # noqa: E402

CACHE = os.path.expanduser("~/.cache/tlsedge/bench")


def ensure_store(build, n):
    store = os.path.join(CACHE, f"store-{n}")
    tool = os.path.join(build, "bench", "tlsedge_store_load_bench")
    subprocess.run([tool, "--count", str(n), "--state", store], check=True,
                   capture_output=True, timeout=3600)
    return os.path.join(store, "certs")


def admin_get(sock_path, target):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(600)
        s.connect(sock_path)
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: tlsedge\r\nConnection: close\r\n\r\n".encode())
        size = 0
        status = None
        while chunk := s.recv(1 << 20):
            if status is None:
                status = chunk.split(b" ", 2)[1]
            size += len(chunk)
    if status != b"200":
        raise RuntimeError(f"{target}: status {status}")
    return size


class Sampler(threading.Thread):
    """GET `path` every 10 ms; (monotonic start, latency s) per request."""

    def __init__(self, address, path):
        super().__init__(daemon=True)
        self.address, self.path = address, path
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        conn = http.client.HTTPConnection(*self.address, timeout=60)
        tick = time.monotonic()
        while not self.stop.is_set():
            start = time.monotonic()
            conn.request("GET", self.path)
            conn.getresponse().read()
            self.samples.append((start, time.monotonic() - start))
            tick += 0.010
            time.sleep(max(0.0, tick - time.monotonic()))
            tick = max(tick, time.monotonic() - 0.010)
        conn.close()

    def slow(self, since, until, over=0.020):
        return [(at, lat) for at, lat in self.samples if since <= at <= until and lat > over]

    def longest(self, since, until):
        inside = [lat for at, lat in self.samples if since <= at <= until]
        return (max(inside) * 1000 if inside else float("nan"), len(inside))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", help="the tlsedge binary (else $TLSEDGE_BIN)")
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build", "release"))
    parser.add_argument("--certs", type=int, default=100000)
    parser.add_argument("--lists", type=int, default=3)
    args = parser.parse_args()
    os.environ["TLSEDGE_BIN"] = os.path.abspath(
        args.bin or os.environ.get("TLSEDGE_BIN") or os.path.join(args.build, "cli", "tlsedge"))
    certs_dir = ensure_store(os.path.abspath(args.build), args.certs)
    top = tempfile.mkdtemp(prefix="admin-list-stall-")
    try:
        state = os.path.join(top, "state")
        os.makedirs(state)
        os.symlink(certs_dir, os.path.join(state, "certs"))
        leaves = pki.Certs(os.path.join(top, "pki"))
        cdn = leaves.leaf("cdn", ["cdn.test"])
        cfg = base_config(state, certificates={"cdn": cdn}, default_certificate="cdn",
                          sites=[site(f"s{i}", [f"s{i}.test"], [respond_route("/", 200, "x\n")])
                                 for i in range(10)])
        cfg["workers"] = 1
        daemon = Daemon(top, cfg)
        daemon.start(timeout=600)
        sock_path = os.path.join(state, "admin.sock")
        try:
            for path in ("/healthz", "/metrics"):
                sampler = Sampler(daemon.metrics_address, path)
                sampler.start()
                time.sleep(2.0)
                quiet_end = time.monotonic()
                durations = []
                ends = []
                for _ in range(args.lists):
                    started = time.monotonic()
                    size = admin_get(sock_path, "/v1/certificates")
                    durations.append(time.monotonic() - started)
                    ends.append(time.monotonic())
                listed_end = time.monotonic()
                sampler.stop.set()
                sampler.join(timeout=120)
                quiet = sampler.longest(0, quiet_end)
                during = sampler.longest(quiet_end, listed_end)
                median = statistics.median(lat for _, lat in sampler.samples) * 1000
                print(f"{path:9} longest before the lists {quiet[0]:8.2f} ms ({quiet[1]} samples), "
                      f"during them {during[0]:8.2f} ms ({during[1]} samples); median "
                      f"{median:.2f} ms; lists took "
                      + ", ".join(f"{d:.2f} s" for d in durations) + f" ({size} bytes each)",
                      flush=True)
                if os.environ.get("STALL_DETAIL"):
                    for at, lat in sampler.slow(quiet_end, listed_end):
                        near = min(ends, key=lambda e: abs(e - at))
                        print(f"  {lat * 1000:7.2f} ms at {at - near:+.3f} s from a list's end")
        finally:
            daemon.cleanup()
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
