#!/usr/bin/env python3
"""Admin upload answered -> new handshakes get the certificate (issue 16).

Run by hand (not in CI), after a release build:

    bench/upload_to_handshake.py [--rounds 40] [--bin build/release/cli/tlsedge]

One daemon (one worker, its admin socket, a site shop.test that no
certificate covers but the store's newest one). Each round replaces store
entry `shop` with the other of two leaves for shop.test through the admin
API (PUT /v1/certificates/shop over the Unix socket, as `tlsedge cert add
--replace` sends it) and, from the moment the answer is read, makes fresh
TLS handshakes (Python's ssl, no session reuse) back to back until one is
served the new leaf. Prints each round and the median, p10 and p90 in ms.
The resolution is one handshake (~1 ms on loopback)."""

import argparse
import json
import os
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from config import base_config, respond_route, site  # noqa: E402
from daemon import Daemon  # noqa: E402
import pki  # noqa: E402

TIMEOUT = 10.0


def put(sock_path, name, leaf):
    with open(leaf.cert) as c, open(leaf.key) as k:
        body = json.dumps({"chain": c.read(), "key": k.read(), "replace": True}).encode()
    head = (f"PUT /v1/certificates/{name} HTTP/1.1\r\nHost: tlsedge\r\n"
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
        raise RuntimeError(f"upload refused: {out.decode(errors='replace')}")


def served_der(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="shop.test") as tls:
            return tls.getpeercert(binary_form=True)


def leaf_der(leaf):
    with open(leaf.cert) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--bin", help="the tlsedge binary (else $TLSEDGE_BIN)")
    args = parser.parse_args()
    os.environ["TLSEDGE_BIN"] = os.path.abspath(args.bin or os.environ.get("TLSEDGE_BIN") or
                                                os.path.join(HERE, "..", "build", "release",
                                                             "cli", "tlsedge"))
    top = tempfile.mkdtemp(prefix="upload-to-handshake-")
    try:
        certs = pki.Certs(os.path.join(top, "pki"))
        leaves = [certs.leaf(f"shop{i}", ["shop.test"]) for i in range(2)]
        ders = [leaf_der(leaf) for leaf in leaves]
        cdn = certs.leaf("cdn", ["cdn.test"])
        state = os.path.join(top, "state")
        os.makedirs(state)
        cfg = base_config(state, certificates={"cdn": cdn}, default_certificate="cdn",
                          sites=[site("shop", ["shop.test"], [respond_route("/", 200, "x\n")])])
        cfg["workers"] = 1
        daemon = Daemon(top, cfg)
        daemon.start()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock_path = os.path.join(state, "admin.sock")
        times = []
        try:
            put(sock_path, "shop", leaves[1])
            for i in range(args.rounds):
                leaf, der = leaves[i % 2], ders[i % 2]
                put(sock_path, "shop", leaf)
                answered = time.monotonic()
                handshakes = 1
                while served_der(daemon.https_port, ctx) != der:
                    handshakes += 1
                    if time.monotonic() - answered > TIMEOUT:
                        raise RuntimeError(f"not served after {TIMEOUT}s\n{daemon.log()}")
                ms = (time.monotonic() - answered) * 1000
                times.append(ms)
                print(f"round {i + 1}: {ms:7.2f} ms ({handshakes} handshake(s))", flush=True)
        finally:
            daemon.cleanup()
        q = statistics.quantiles(times, n=10)
        print(f"median {statistics.median(times):.2f} ms, p10 {q[0]:.2f}, p90 {q[-1]:.2f} "
              f"({len(times)} rounds)")
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
