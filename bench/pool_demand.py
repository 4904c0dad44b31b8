#!/usr/bin/env python3
"""The upstream pool against demand (issue 19): origin connections tlsedge
opens per 1,000 proxied requests under `wrk -c64` and `-c256` (keep-alive
clients, TLS 1.3) with the default config, beside the old default
`keepalive: 32`, in one run. Run by hand, never by CI:

    bench/pool_demand.py [--build build/release] [--duration 5] [--no-write]

tlsedge runs with its default `workers: auto` on both cores; the origin is
the nginx of bench/loadcmp.py (22-byte body). The counts are
`tlsedge_upstream_connections_total{how="opened"|"reused"}` read from
/metrics before and after each wrk run (after a 1 s warm-up, so the
figure is the steady state, not the pool filling). Written between
<!-- pool_demand begin/end --> in docs/benchmarks.md.
"""

import argparse
import os
import re
import socket
import tempfile
import urllib.request

import loadcmp as lc
from loadcmp import HOST, log

MARK_BEGIN = "<!-- pool_demand begin -->"
MARK_END = "<!-- pool_demand end -->"
VARIANTS = [("keepalive: 32 (the old default)", ", keepalive: 32"), ("default (auto)", "")]
CLIENTS = [64, 256]


def connections(metrics_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read()
    got = dict(re.findall(rb'^tlsedge_upstream_connections_total\{how="(\w+)"\} (\S+)$', text, re.M))
    return float(got[b"opened"]), float(got[b"reused"])


def run_variant(work, args, leaf, origin, tag, options):
    d = os.path.join(work, tag)
    os.makedirs(d, exist_ok=True)
    port, mport = lc.free_port(), lc.free_port()
    conf = os.path.join(d, "tlsedge.yaml")
    lc.tlsedge_config(conf, port, origin.port, os.path.join(d, "state"),
                      [("bench", [HOST], "bench")], {"bench": (leaf.cert, leaf.key)}, "bench",
                      workers="auto", metrics=f"127.0.0.1:{mport}", upstream_options=options)
    server = lc.Server(tag, [args.tlsedge, "run", "-c", conf], d, port, "0,1",
                       ready_line=b"<6>ready").start()
    out = {}
    try:
        for c in CLIENTS:
            wrk = ["wrk", "-t2", f"-c{c}", "-H", f"Host: {HOST}", f"https://127.0.0.1:{port}/"]
            lc.run_client(wrk[:1] + ["-d1s"] + wrk[1:], "0,1", 60)  # warm-up: the pool fills
            o0, r0 = connections(mport)
            text = lc.run_client(wrk[:1] + [f"-d{args.duration}s"] + wrk[1:], "0,1",
                                 args.duration + 60)
            o1, r1 = connections(mport)
            n = int(re.search(r"(\d+) requests in", text).group(1))
            errors = re.search(r"Socket errors: (.*)", text)
            out[c] = {"opened": o1 - o0, "reused": r1 - r0, "requests": n,
                      "per_1000": (o1 - o0) * 1000 / n, "errors": errors.group(1) if errors else ""}
            log(f"{tag} -c{c}: {out[c]}")
    finally:
        server.stop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(lc.ROOT, "build", "release"))
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    args.tlsedge = os.path.join(args.build, "cli", "tlsedge")
    lc.raise_nofile()
    work = tempfile.mkdtemp(prefix="tlsedge-pool-demand-")
    leaf = lc.Certs(os.path.join(work, "pki")).leaf("bench", [HOST])
    origin = lc.origin_server(work, "0,1").start()
    try:
        results = {name: run_variant(work, args, leaf, origin, f"v{i}", options)
                   for i, (name, options) in enumerate(VARIANTS)}
    finally:
        origin.stop()
    rows = ["| tlsedge upstream pool | " + " | ".join(f"wrk -c{c}" for c in CLIENTS) + " |",
            "|---|" + "---|" * len(CLIENTS)]
    for name, res in results.items():
        cells = [f"**{res[c]['per_1000']:.2f}** opened per 1,000 ({res[c]['opened']:.0f} of "
                 f"{res[c]['requests']:,} requests)" for c in CLIENTS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    text = (f"{MARK_BEGIN}\n### Upstream pool against demand (bench/pool_demand.py)\n\n"
            f"{lc.machine()}; {socket.gethostname()}; {args.duration} s per run after a 1 s "
            f"warm-up, `workers: auto` (2), origin connections opened per 1,000 proxied "
            f"requests (target under 1 with the default config).\n\n" + "\n".join(rows) +
            f"\n\n{MARK_END}\n")
    print(text)
    if not args.no_write:
        lc.write_section(text, os.path.join(lc.ROOT, "docs", "benchmarks.md"),
                         MARK_BEGIN, MARK_END)


if __name__ == "__main__":
    main()
