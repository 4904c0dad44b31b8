#!/usr/bin/env python3
"""Site created through the admin API -> served, beside N YAML sites (issue 20).

Run by hand (not in CI), after a release build:

    bench/site_to_served.py [--sites 100000] [--rounds 10] [--bin build/release/cli/tlsedge]

One daemon (one worker, its admin socket) whose YAML has N sites (one host
and one `respond` route each; no certificate, the default one serves).
Each round creates site api-R (host api-R.test, a `respond` route) with
PUT /v1/sites/api-R over the Unix socket, as `tlsedge site put` sends it,
and from the moment the answer is read makes fresh HTTPS requests (Python's
ssl, SNI api-R.test) until one gets the site's body; then removes it
(DELETE). Prints each round (PUT answered, then served, DELETE answered)
and the medians in ms. The daemon answers a PUT once every worker serves
the site, so "served" is normally the first request after the answer.
Meanwhile a thread asks the admin socket for GET /v1/sites/s0 back to back
(answered on the control loop): its longest answer during a round is how
long the change held the control loop."""

import argparse
import json
import os
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from daemon import Daemon  # noqa: E402
import pki  # noqa: E402

TIMEOUT = 120.0


def admin(sock_path, method, target, body=b""):
    head = (f"{method} {target} HTTP/1.1\r\nHost: tlsedge\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(sock_path)
        s.sendall(head + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    status = out.split(b" ", 2)[1]
    if status not in (b"200", b"201"):
        raise RuntimeError(f"{method} {target} refused: {out.decode(errors='replace')}")


class LoopProbe(threading.Thread):
    """GET /v1/sites/s0 on the admin socket, back to back; the longest
    answer since the last take()."""

    def __init__(self, sock_path):
        super().__init__(daemon=True)
        self.sock_path = sock_path
        self.longest = 0.0
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            start = time.monotonic()
            admin(self.sock_path, "GET", "/v1/sites/s0")
            took = time.monotonic() - start
            with self.lock:
                self.longest = max(self.longest, took)
            time.sleep(0.005)

    def take(self):
        with self.lock:
            longest, self.longest = self.longest, 0.0
        return longest * 1000


def fetch(port, ctx, host):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            out = b""
            while chunk := tls.recv(65536):
                out += chunk
            return out


def config_text(state, cdn, sites):
    lines = [
        "workers: 1",
        'listen: { https: ["127.0.0.1:0"], http: ["127.0.0.1:0"] }',
        f"state_dir: {state}",
        'metrics: { listen: "" }',
        "tls: { default_certificate: cdn }",
        f"certificates: {{ cdn: {{ cert: {cdn.cert}, key: {cdn.key} }} }}",
        "sites:",
    ]
    for i in range(sites):
        lines.append(f"  - {{ name: s{i}, hosts: [s{i}.test], "
                     f"routes: [{{ path: /, respond: {{ body: s{i} }} }}] }}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--bin", help="the tlsedge binary (else $TLSEDGE_BIN)")
    args = parser.parse_args()
    os.environ["TLSEDGE_BIN"] = os.path.abspath(args.bin or os.environ.get("TLSEDGE_BIN") or
                                                os.path.join(HERE, "..", "build", "release",
                                                             "cli", "tlsedge"))
    top = tempfile.mkdtemp(prefix="site-to-served-")
    try:
        certs = pki.Certs(os.path.join(top, "pki"))
        cdn = certs.leaf("cdn", ["cdn.test"])
        state = os.path.join(top, "state")
        os.makedirs(state)
        daemon = Daemon(top, config_text(state, cdn, args.sites))
        started = time.monotonic()
        daemon.start(timeout=TIMEOUT)
        print(f"{args.sites} YAML sites: ready in {time.monotonic() - started:.1f} s", flush=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock_path = os.path.join(state, "admin.sock")
        puts, served, deletes, stalls = [], [], [], []
        probe = LoopProbe(sock_path)
        probe.start()
        try:
            for r in range(args.rounds):
                name = f"api-{r}"
                host = f"{name}.test"
                body = json.dumps({"hosts": [host], "redirect_https": False, "routes": [
                    {"path": "/", "respond": {"body": f"hello {name}"}}]}).encode()
                probe.take()
                sent = time.monotonic()
                admin(sock_path, "PUT", f"/v1/sites/{name}", body)
                answered = time.monotonic()
                requests = 1
                while not fetch(daemon.https_port, ctx, host).endswith(f"hello {name}".encode()):
                    requests += 1
                    if time.monotonic() - answered > TIMEOUT:
                        raise RuntimeError(f"not served after {TIMEOUT}s\n{daemon.log()}")
                done = time.monotonic()
                stalls.append(probe.take())
                admin(sock_path, "DELETE", f"/v1/sites/{name}")
                removed = time.monotonic()
                puts.append((answered - sent) * 1000)
                served.append((done - sent) * 1000)
                deletes.append((removed - done) * 1000)
                print(f"round {r + 1}: PUT answered {puts[-1]:8.1f} ms, served {served[-1]:8.1f} ms "
                      f"({requests} request(s)), DELETE answered {deletes[-1]:8.1f} ms, "
                      f"control loop held up to {stalls[-1]:6.1f} ms", flush=True)
        finally:
            probe.stopped.set()
            probe.join()
            daemon.cleanup()
        print(f"{args.sites} sites: PUT -> served median {statistics.median(served):.1f} ms "
              f"(min {min(served):.1f}, max {max(served):.1f}); PUT answered median "
              f"{statistics.median(puts):.1f} ms; DELETE median {statistics.median(deletes):.1f} ms "
              f"; control loop held up to {statistics.median(stalls):.1f} ms (median of the "
              f"longest per PUT) ({len(served)} rounds)")
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
