#!/usr/bin/env python3
"""tlsedge next to nginx and HAProxy over HTTP/2 (issue 18): one run, the
same rules as bench/loadcmp.py (whose servers, origin and CPU accounting
this reuses), written as a table into docs/benchmarks.md. Run by hand,
never by CI:

    bench/loadcmp_h2.py [--build build/release] [--duration 10] [--rounds 3]
                        [--idle 2000] [--no-write]

Servers: tlsedge (h2 is on by default), nginx `listen ... ssl http2`,
HAProxy `bind ... alpn h2,http/1.1`; one worker each, pinned to
--server-core; TLS 1.3, X25519, one ECDSA P-256 certificate; the same
nginx origin on --client-core (22-byte body, keep-alive HTTP/1.1).

Figures:
  1. h2load -c32 -m10 (32 connections, 10 streams each), GET /: server CPU
     us per request (utime+stime of the server's processes over the run);
  2. the same with -m100;
  3. idle memory: a fresh server, VmRSS of its processes before and after
     --idle HTTP/2 connections were opened (handshake, SETTINGS, one
     request answered each, then left open): (after - before) / connections.
Figures 1-2 are measured in --rounds rounds, the servers in turn and the
first rotating; medians are given, and the range of each round's ratio.
"""

import argparse
import os
import re
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time

import loadcmp as lc
from loadcmp import HOST, log

sys.path.insert(0, os.path.join(lc.ROOT, "tests", "integration"))
import h2client  # noqa: E402,F401  (puts Debian's python3-h2 on the path if needed)
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402

MARK_BEGIN = "<!-- loadcmp_h2 begin -->"
MARK_END = "<!-- loadcmp_h2 end -->"


def h2load(server, args, streams):
    url = f"https://{HOST}:{server.port}/"
    base = ["h2load", "-c32", f"-m{streams}", "--connect-to", f"127.0.0.1:{server.port}"]
    lc.run_client(base + ["-D1", url], args.client_core, 60)  # warm-up
    cpu, out, sys_share = lc.measure(server, lambda: lc.run_client(
        base + [f"-D{args.duration}", url], args.client_core, args.duration + 60))
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored", out)
    if not m:
        raise RuntimeError(f"h2load output not understood:\n{out}")
    ok, failed, errored = (int(g) for g in m.groups())
    return {"cpu_us": cpu * 1e6 / max(ok, 1), "sys": sys_share, "rps": ok / args.duration,
            "failed": failed + errored}


def idle_h2(server, args):
    """Opens --idle HTTP/2 connections, one answered request each, and keeps
    them open while the servers' RSS is read."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    pids = server.pids()
    before = lc.rss_bytes(pids)
    conns, errors = [], 0
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    for _ in range(args.idle):
        try:
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10),
                                server_hostname=HOST)
            c = h2.connection.H2Connection(config=config)
            c.initiate_connection()
            c.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", HOST),
                               (":path", "/")], end_stream=True)
            s.sendall(c.data_to_send())
            done = False
            while not done:
                data = s.recv(65536)
                if not data:
                    raise ConnectionError("closed")
                for e in c.receive_data(data):
                    done = done or isinstance(e, h2.events.StreamEnded)
                s.sendall(c.data_to_send())
            conns.append(s)
        except (OSError, ConnectionError, h2.exceptions.ProtocolError):
            errors += 1
    time.sleep(1.0)
    after = lc.rss_bytes(server.pids())
    for s in conns:
        s.close()
    return {"bytes_per_conn": (after - before) / max(len(conns), 1), "open": len(conns),
            "errors": errors}


def table(res, rounds, args):
    """`res`: medians by server; `rounds`: each server's figures per round."""
    names = list(res)
    best_peer = {k: min(res[n][k] for n in names if n != "tlsedge")
                 for k in ("m10_cpu", "m100_cpu")}
    lines = [
        MARK_BEGIN,
        "### HTTP/2 (bench/loadcmp_h2.py)",
        "",
        f"{datetime_now()}, {args.rounds} rounds of {args.duration} s, medians; "
        f"idle: {args.idle} connections. "
        "Server CPU is utime+stime of every server process over the run.",
        "",
        "| | " + " | ".join(names) + " | tlsedge / best peer |",
        "|---|" + "---|" * len(names) + "---|",
    ]

    def row(label, key, fmt):
        cells = [fmt(res[n][key]) for n in names]
        ratio = ""
        if key in best_peer:
            ratios = [rounds["tlsedge"][i][key] /
                      min(rounds[n][i][key] for n in names if n != "tlsedge")
                      for i in range(args.rounds)]
            ratio = (f"{res['tlsedge'][key] / best_peer[key]:.2f}x "
                     f"({min(ratios):.2f}-{max(ratios):.2f})")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")

    row("h2load -c32 -m10: CPU us/request", "m10_cpu", lambda v: f"{v:.1f}")
    row("h2load -c32 -m10: requests/s", "m10_rps", lambda v: f"{v:,.0f}")
    row("h2load -c32 -m100: CPU us/request", "m100_cpu", lambda v: f"{v:.1f}")
    row("h2load -c32 -m100: requests/s", "m100_rps", lambda v: f"{v:,.0f}")
    row("failed streams (all runs)", "failed", lambda v: f"{v:.0f}")
    row("idle HTTP/2 connection: RSS bytes", "idle", lambda v: f"{v:,.0f}")
    lines += ["", MARK_END]
    return "\n".join(lines)


def datetime_now():
    import datetime
    return datetime.datetime.now().strftime("%Y-%m-%d")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(lc.ROOT, "build", "release"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--servers", default="tlsedge,nginx,haproxy")
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--client-core", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(lc.ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    args.tlsedge = os.path.join(args.build, "cli", "tlsedge")
    for tool in ("nginx", "haproxy", "h2load", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"loadcmp_h2: {tool} not found (scripts/setup.sh --bench)")
    lc.raise_nofile()
    work = tempfile.mkdtemp(prefix="tlsedge-loadcmp-h2-")
    leaf = lc.Certs(os.path.join(work, "pki")).leaf("bench", [HOST])
    origin = lc.origin_server(work, args.client_core).start()
    makers = {
        "tlsedge": lambda tag: lc.tlsedge_server(work, args, leaf, origin.port,
                                                 args.server_core, tag),
        "nginx": lambda tag: lc.nginx_server(work, leaf, origin.port, args.server_core, tag,
                                             h2=True),
        "haproxy": lambda tag: lc.haproxy_server(work, leaf, origin.port, args.server_core, tag,
                                                 h2=True),
    }
    servers = [n for n in args.servers.split(",") if n]
    rounds = {n: [] for n in servers}
    res = {}
    try:
        for i in range(args.rounds):
            for name in servers[i % len(servers):] + servers[:i % len(servers)]:
                log(f"round {i + 1}/{args.rounds}: {name}")
                s = makers[name](f"{name}-r{i + 1}").start()
                try:
                    m10, m100 = h2load(s, args, 10), h2load(s, args, 100)
                    rounds[name].append({"m10_cpu": m10["cpu_us"], "m10_rps": m10["rps"],
                                         "m100_cpu": m100["cpu_us"], "m100_rps": m100["rps"],
                                         "failed": m10["failed"] + m100["failed"]})
                    log(f"{name}: {rounds[name][-1]}")
                finally:
                    s.stop()
        for name in servers:
            res[name] = {k: (sum if k == "failed" else statistics.median)(
                [r[k] for r in rounds[name]]) for k in rounds[name][0]}
            s = makers[name](f"{name}-idle").start()
            try:
                idle = idle_h2(s, args)
                res[name]["idle"] = idle["bytes_per_conn"]
                log(f"{name}: idle {idle}")
            finally:
                s.stop()
    finally:
        origin.stop()
    text = table(res, rounds, args)
    print(text)
    if not args.no_write:
        lc.write_section(text + "\n", args.out, MARK_BEGIN, MARK_END)
        log(f"wrote {args.out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
