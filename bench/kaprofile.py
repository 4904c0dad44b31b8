#!/usr/bin/env python3
"""Per-request cost of tlsedge's keep-alive path, in counts that do not
depend on how busy the machine is (issue 8, figure 1). Run by hand:

    bench/kaprofile.py [--build build/release] [--requests 2000] [--tool strace|callgrind|both]

The same set-up as bench/loadcmp.py (its origin nginx with the 22-byte body,
its tlsedge config, one worker), one client (Python's ssl) sending
--requests GETs one after another over one keep-alive HTTPS connection.
The connection's handshake and first request come before the count starts.
  strace:    `strace -c -f` attached to the running daemon for the counted
             requests: system calls per request, by name;
  callgrind: the daemon under `valgrind --tool=callgrind --instr-atstart=no`,
             instrumentation on only for the counted requests: instructions
             per request (total, and the top functions, inclusive).
With --handshakes each request is a new connection (full TLS 1.3
handshake, Connection: close), as in figure 2, for either tool.
"""

import argparse
import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import loadcmp  # noqa: E402  (servers, config, the throw-away CA)


def client(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    conn._tunnel_host = None
    return conn


def get(conn):
    conn.request("GET", "/", headers={"Host": loadcmp.HOST})
    r = conn.getresponse()
    body = r.read()
    if r.status != 200 or body != loadcmp.BODY.encode():
        raise RuntimeError(f"unexpected response {r.status} {body!r}")


def start(work, build, leaf, origin_port, wrap):
    d = os.path.join(work, "tlsedge")
    os.makedirs(d, exist_ok=True)
    port = loadcmp.free_port()
    conf = os.path.join(d, "tlsedge.yaml")
    loadcmp.tlsedge_config(conf, port, origin_port, os.path.join(d, "state"),
                           [("bench", [loadcmp.HOST], "bench")],
                           {"bench": (leaf.cert, leaf.key)}, "bench")
    argv = wrap + [os.path.join(build, "cli", "tlsedge"), "run", "-c", conf]
    return loadcmp.Server("tlsedge", argv, d, port, 0, ready_line=b"<6>ready").start(timeout=120)


def run_strace(work, args, leaf, origin):
    s = start(work, args.build, leaf, origin.port, [])
    try:
        conn = client(s.port)
        get(conn)
        out = os.path.join(work, "strace.txt")
        st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(s.proc.pid)],
                              stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached to every thread
        for _ in range(args.requests):
            if args.handshakes:
                new_connection(s.port)
            else:
                get(conn)
        st.send_signal(signal.SIGINT)
        st.wait(timeout=30)
        conn.close()
    finally:
        s.stop()
    print(f"system calls per {'new connection' if args.handshakes else 'request'} "
          f"({args.requests} " + ("connections)" if args.handshakes else "requests, one connection)"))
    with open(out) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+\s+)?(\w+)\s*$", line)
            if m and m.group(3) != "total":
                print(f"  {m.group(3):16} {int(m.group(1)) / args.requests:6.2f}")


def new_connection(port):
    """A full TLS 1.3 handshake (no session offered) and one request."""
    conn = client(port)
    conn.request("GET", "/", headers={"Host": loadcmp.HOST, "Connection": "close"})
    r = conn.getresponse()
    r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError(f"unexpected response {r.status}")


def run_callgrind(work, args, leaf, origin):
    out = os.path.join(work, "callgrind.out")
    s = start(work, args.build, leaf, origin.port,
              ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}"])
    try:
        conn = client(s.port)
        for _ in range(20):
            get(conn)
        pid = str(s.proc.pid)
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        for _ in range(args.requests):
            if args.handshakes:
                new_connection(s.port)
            else:
                get(conn)
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
        conn.close()
    finally:
        s.stop()
    files = [os.path.join(work, f) for f in os.listdir(work) if f.startswith("callgrind.out")]
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", *files],
                         capture_output=True, text=True).stdout
    m = re.search(r"^\s*([\d,]+)\s+\(100.0%\)\s+PROGRAM TOTALS", ann, re.M)
    total = int(m.group(1).replace(",", "")) if m else 0
    what = "new connection (full handshake + 1 request)" if args.handshakes else "request"
    print(f"instructions per {what}: {total / args.requests:,.0f} ({args.requests} "
          + ("connections)" if args.handshakes else "requests, one connection)"))
    if args.top:
        print(f"top {args.top} functions (inclusive instructions per request):")
        n = 0
        for line in ann.splitlines():
            m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S.*)$", line)
            if not m or "PROGRAM TOTALS" in line:
                continue
            ir = int(m.group(1).replace(",", ""))
            print(f"  {ir / args.requests:10,.0f}  {m.group(2)[:110]}")
            n += 1
            if n >= args.top:
                break


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(loadcmp.ROOT, "build", "release"))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--tool", choices=["strace", "callgrind", "both"], default="both")
    ap.add_argument("--top", type=int, default=0, help="also list the top N functions")
    ap.add_argument("--handshakes", action="store_true",
                    help="a new connection per request (figure 2) instead")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (callgrind.out)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tlsedge-kaprofile-")
    leaf = loadcmp.Certs(os.path.join(work, "pki")).leaf("bench", [loadcmp.HOST])
    origin = loadcmp.origin_server(work, 1).start()
    try:
        if args.tool in ("strace", "both"):
            run_strace(work, args, leaf, origin)
        if args.tool in ("callgrind", "both"):
            run_callgrind(work, args, leaf, origin)
    finally:
        origin.stop()
        if args.keep:
            print(f"work directory: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
