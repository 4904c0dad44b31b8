#!/usr/bin/env python3
"""tlsedge next to nginx and HAProxy (issue 8): one run, six figures each,
written as a table into docs/benchmarks.md. Run by hand, never by CI:

    bench/loadcmp.py [--build build/release] [--duration 10] [--rounds 3] [--rate 1000]
                     [--idle 10000] [--certs 100000] [--skip-certs] [--no-write]

What is the same for the three servers: one ECDSA P-256 certificate (leaf
signed by a throw-away CA), TLS 1.3 with X25519 only, one worker (tlsedge
`workers: 1`, nginx `worker_processes 1`, HAProxy `nbthread 1`), every
process of the server pinned to --server-core with taskset, access logs off,
and the same origin: a separate nginx on --client-core answering every
request with a fixed 22-byte body over keep-alive HTTP/1.1 (each server
keeps a pool of idle origin connections). The load generators (wrk and
tlsedge_tls_load, bench/tls_load.cc) run on --client-core too.

Figures (CPU is utime+stime from /proc/<pid>/stat summed over every process
of the server, e.g. nginx's master and worker, over the measured run; the
clients' CPU is not counted):
  1. keep-alive: wrk -t1 -c32, GET / (the proxied 22-byte response):
     server CPU us per request;
  2. full handshake: tls_load --mode handshake (32 in flight, each a new
     connection, full TLS 1.3 handshake, one request with Connection:
     close): server CPU us per connection;
  3. resumption: the same, each connection offering the ticket its
     predecessor received (the share that resumed is given);
  4. latency: tls_load --mode rate at --rate requests/s open-loop over 32
     keep-alive connections, from the time each request was due: p50, p99;
  5. idle memory: a fresh server, VmRSS of its processes before and after
     tls_load --mode idle opened --idle connections (handshake plus one
     keep-alive request each; kernel socket buffers are not in VmRSS):
     (after - before) / connections;
  6. --certs certificates: time from exec to serving and VmRSS then.
     tlsedge: its state directory (generated once by
     tlsedge_store_load_bench, cached in ~/.cache/tlsedge/bench/) and one
     site per certificate (hosts siteI.example, *.siteI.example); HAProxy:
     the same certificates as one PEM file each (chain plus key) in a
     directory given to `crt`; nginx has no certificate store: it would
     need one server block per certificate, so it is not measured.
     Before each start every file the server will read is read once, so
     both start from a warm page cache (as a restart on an edge node does;
     this machine's memory manager drops cold file pages within minutes).
Figures 1-4 and 6 are measured in --rounds rounds (default 3), the servers
in turn and the first one rotating, each round with freshly started
servers; the table gives the medians and, for each ratio, the range of the
ratios of the pairs measured in one round. On a shared 2-vCPU VM one run of
the same binary moves by a quarter, so a single round's ratio is a draw.
The crypto floor of a full handshake (issue 8's "within 2x of bssl speed")
is measured in the same run on --server-core by `tlsedge_tls_load
--crypto-floor`: the calls `bssl speed` times, in process CPU time (bssl
speed divides by wall-clock time, which other work on the machine inflates).
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from pki import Certs  # noqa: E402  (the integration tests' throw-away CA)

CACHE = os.path.expanduser("~/.cache/tlsedge/bench")
BODY = "hello from the origin\n"  # 22 bytes
HOST = "bench.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SECTION_BEGIN = "<!-- loadcmp: begin (written by bench/loadcmp.py; do not edit by hand) -->"
SECTION_END = "<!-- loadcmp: end -->"


def log(msg):
    print(f"[loadcmp {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile():
    """Children inherit it: 10,000 connections need more than 1,024 fds."""
    want = 200000
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- /proc ------------------------------------------------------------------

def _children():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    """pid and all its descendants."""
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_split(pids):
    """(user, system) CPU seconds of all threads of `pids`."""
    user = system = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])  # utime, all threads
            system += int(fields[12])  # stime
        except (OSError, IndexError):
            pass
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pids):
    return sum(cpu_split(pids))


def rss_bytes(pids, key="VmRSS"):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def wait_port(port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def served_names(port, sni):
    """The DER of the certificate served for `sni` (to check a 100k start)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.getpeercert(binary_form=True)


# -- servers ----------------------------------------------------------------

class Server:
    """One server process (tree) pinned to a core; stopped by its PID."""

    def __init__(self, name, argv, workdir, port, core, ready_line=None):
        self.name, self.argv, self.port, self.core = name, argv, port, core
        self.workdir = workdir
        self.ready_line = ready_line
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.proc = None

    def start(self, timeout=60):
        t0 = time.monotonic()
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["taskset", "-c", str(self.core), *self.argv],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=self.workdir)
        ok = False
        deadline = t0 + timeout
        if self.ready_line:
            while time.monotonic() < deadline and self.proc.poll() is None:
                with open(self.log_path, "rb") as f:
                    if self.ready_line in f.read():
                        ok = True
                        break
                time.sleep(0.02)
            ok = ok and wait_port(self.port, self.proc, max(1, deadline - time.monotonic()))
        else:
            ok = wait_port(self.port, self.proc, timeout)
        self.start_seconds = time.monotonic() - t0
        if not ok:
            self.stop()
            with open(self.log_path, "rb") as f:
                tail = f.read()[-2000:].decode("utf-8", "replace")
            raise RuntimeError(f"{self.name} did not start in {timeout}s:\n{tail}")
        time.sleep(0.3)  # let nginx's worker exist before the tree is read
        return self

    def pids(self):
        return tree(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for p in reversed(tree(self.proc.pid)):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait(timeout=10)
        if getattr(self, "logf", None):
            self.logf.close()


def nginx_temp_paths(prefix):
    return "\n".join(f"  {k} {prefix}/{k};" for k in (
        "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path",
        "uwsgi_temp_path", "scgi_temp_path"))


def origin_server(work, core):
    d = os.path.join(work, "origin")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
{nginx_temp_paths(d)}
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  server {{
    listen 127.0.0.1:{port} reuseport;
    location / {{ default_type text/plain; return 200 "{BODY.strip()}\\n"; }}
  }}
}}
""")
    return Server("origin", ["nginx", "-c", conf, "-p", d, "-g", "daemon off;"],
                  d, port, core)


def tlsedge_config(path, port, origin_port, state, sites, certificates, default_cert, *,
                   workers="1", metrics="", upstream_options=""):
    """The benchmarks' tlsedge YAML. The upstream pool is the default
    (`keepalive: auto`) unless `upstream_options` (", keepalive: 32") says."""
    lines = [
        f"workers: {workers}",
        "listen:",
        f"  https: [\"127.0.0.1:{port}\"]",
        "  http: []",
        f"state_dir: \"{state}\"",
        f"metrics: {{ listen: \"{metrics}\" }}",
        "admin: { socket: \"\" }",
        "tls:",
        "  min_version: \"1.3\"",
    ]
    if default_cert:
        lines.append(f"  default_certificate: \"{default_cert}\"")
    lines += [
        "limits: { max_connections: 30000, keepalive_timeout: 600s, header_timeout: 600s }",
        "certificates:",
    ]
    for name, (cert, key) in certificates.items():
        lines.append(f"  {name}: {{ cert: \"{cert}\", key: \"{key}\" }}")
    if not certificates:
        lines[-1] = "certificates: {}"
    lines += [
        "upstreams:",
        f"  origin: {{ servers: [\"127.0.0.1:{origin_port}\"]{upstream_options} }}",
        "sites:",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
        for name, hosts, cert in sites:
            tls = f", tls: {{ certificate: \"{cert}\" }}" if cert else ""
            hl = ", ".join(f"\"{h}\"" for h in hosts)
            f.write(f"  - {{ name: \"{name}\", hosts: [{hl}]{tls}, "
                    f"routes: [{{ path: \"/\", upstream: origin }}] }}\n")


def tlsedge_server(work, args, leaf, origin_port, core, tag="tlsedge"):
    d = os.path.join(work, tag)
    os.makedirs(d, exist_ok=True)
    port = free_port()
    conf = os.path.join(d, "tlsedge.yaml")
    tlsedge_config(conf, port, origin_port, os.path.join(d, "state"),
                   [("bench", [HOST], "bench")], {"bench": (leaf.cert, leaf.key)}, "bench")
    return Server(tag, [args.tlsedge, "run", "-c", conf], d, port, core, ready_line=b"<6>ready")


def nginx_server(work, leaf, origin_port, core, tag="nginx", h2=False):
    d = os.path.join(work, tag)
    os.makedirs(d, exist_ok=True)
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""user root;
worker_processes 1;
worker_rlimit_nofile 100000;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 30000; }}
http {{
{nginx_temp_paths(d)}
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  client_header_timeout 600s;
  ssl_protocols TLSv1.3;
  ssl_ecdh_curve X25519;
  ssl_session_tickets on;
  upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 4096; }}
  server {{
    listen 127.0.0.1:{port} ssl{" http2" if h2 else ""};
    server_name {HOST};
    ssl_certificate {leaf.cert};
    ssl_certificate_key {leaf.key};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
    return Server(tag, ["nginx", "-c", conf, "-p", d, "-g", "daemon off;"], d, port, core)


def haproxy_config(path, port, origin_port, crt, h2=False):
    with open(path, "w") as f:
        f.write(f"""global
  nbthread 1
  # 10,000 idle clients need maxconn above 10,000, which HAProxy sizes at
  # 2 x maxconn descriptors: more than this container's hard limit
  # (20,000). `no strict-limits` makes that a warning; only the client
  # side of idle connections holds descriptors, so they fit.
  maxconn 10100
  no strict-limits
defaults
  mode http
  timeout connect 5s
  timeout client 600s
  timeout server 60s
  timeout http-request 600s
  timeout http-keep-alive 600s
frontend fe
  bind 127.0.0.1:{port} ssl crt {crt} curves X25519 ssl-min-ver TLSv1.3{" alpn h2,http/1.1" if h2 else ""}
  default_backend be
backend be
  http-reuse always
  server o 127.0.0.1:{origin_port}
""")


def haproxy_server(work, leaf, origin_port, core, tag="haproxy", h2=False):
    d = os.path.join(work, tag)
    os.makedirs(d, exist_ok=True)
    port = free_port()
    pem = os.path.join(d, "bench.pem")
    with open(pem, "w") as out:
        for part in (leaf.cert, leaf.key):
            with open(part) as f:
                out.write(f.read())
    os.chmod(pem, 0o600)
    conf = os.path.join(d, "haproxy.cfg")
    haproxy_config(conf, port, origin_port, pem, h2)
    return Server(tag, ["haproxy", "-db", "-f", conf], d, port, core)


# -- measurements -------------------------------------------------------------

def run_client(argv, core, timeout):
    res = subprocess.run(["taskset", "-c", str(core), *argv], capture_output=True, text=True,
                         timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({res.returncode}): {res.stderr[-1000:]}")
    return res.stdout


def measure(server, fn):
    """Server CPU seconds spent while fn() runs, fn's result, and the
    share of that CPU time spent in the kernel."""
    pids = server.pids()
    u0, s0 = cpu_split(pids)
    out = fn()
    u1, s1 = cpu_split(pids)
    cpu = (u1 - u0) + (s1 - s0)
    return cpu, out, (s1 - s0) / cpu if cpu > 0 else 0.0


def keepalive(server, args):
    url = f"https://127.0.0.1:{server.port}/"
    wrk = ["wrk", "-t1", "-c32", "-H", f"Host: {HOST}", url]
    run_client(wrk[:1] + ["-d1s"] + wrk[1:], args.client_core, 60)  # warm-up
    segs0 = tcp_out_segments()
    cpu, out, sys_share = measure(server, lambda: run_client(
        wrk[:1] + [f"-d{args.duration}s"] + wrk[1:], args.client_core, args.duration + 60))
    segs = tcp_out_segments() - segs0
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if not m:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    n = int(m.group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    return {"cpu_us_per_req": cpu * 1e6 / n, "sys_share": sys_share, "requests": n, "rps": n / args.duration,
            "non2xx": int(bad.group(1)) if bad else 0, "socket_errors": errs.group(1) if errs else "",
            "segments_per_req": segs / n}


def tcp_out_segments():
    """TCP segments sent on the whole machine so far (/proc/net/snmp
    Tcp: OutSegs). Over a keep-alive run it counts the client's, the
    server's and the origin's: 4 per proxied request is the least there is
    (request in, request out, response in, response out, ACKs piggybacked)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("OutSegs")])


def tls_load(args, server, *extra, timeout=None):
    argv = [args.tls_load, "--connect", f"127.0.0.1:{server.port}", "--sni", HOST, *extra]
    out = run_client(argv, args.client_core, timeout or args.duration + 60)
    return json.loads(out.strip().splitlines()[-1])


def handshakes(server, args, mode):
    tls_load(args, server, "--mode", mode, "--concurrency", "32", "--duration", "1")  # warm-up
    cpu, r, sys_share = measure(server, lambda: tls_load(
        args, server, "--mode", mode, "--concurrency", "32", "--duration", str(args.duration)))
    r["sys_share"] = sys_share
    r["cpu_us_per_conn"] = cpu * 1e6 / max(1, r["ok"])
    r["conn_per_s"] = r["ok"] / r["seconds"]
    return r


def latency(server, args):
    return tls_load(args, server, "--mode", "rate", "--rate", str(args.rate), "--concurrency", "32",
                    "--duration", str(args.duration), "--warmup", "1")


def idle_memory(server, args):
    pids = server.pids()
    # One connection first, so that first-use allocations are in the baseline.
    tls_load(args, server, "--mode", "handshake", "--concurrency", "1", "--duration", "0.2")
    time.sleep(0.5)
    before = rss_bytes(pids)
    p = subprocess.Popen(["taskset", "-c", str(args.client_core), args.tls_load, "--connect",
                          f"127.0.0.1:{server.port}", "--sni", HOST, "--mode", "idle",
                          "--connections", str(args.idle), "--concurrency", "200"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        r = json.loads(line)
        time.sleep(1.0)
        after = rss_bytes(pids)
        r["rss_before"], r["rss_after"] = before, after
        r["bytes_per_conn"] = (after - before) / max(1, r["open"])
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return r


def crypto_floor(args):
    """CPU us of one ECDSA P-256 signature + X25519 key generation + X25519
    shared secret with tlsedge's BoringSSL, on the server core: the
    server's crypto per full handshake. `bssl speed` counts operations per
    wall-clock second, which a shared machine inflates; `tlsedge_tls_load
    --crypto-floor` times the same calls in process CPU time."""
    out = run_client([args.tls_load, "--crypto-floor"], args.server_core, 60)
    r = json.loads(out)
    return {"sign": r["ecdsa_p256_sign_us"], "x25519_base": r["x25519_keygen_us"],
            "x25519_arb": r["x25519_shared_us"], "total": r["total_us"]}


def measure_round(server, args, name):
    """Figures 1-4 on one started server: one round's values."""
    r = {}
    log(f"{name}: keep-alive")
    ka = keepalive(server, args)
    r.update(ka_cpu=ka["cpu_us_per_req"], ka_sys=ka["sys_share"], ka_rps=ka["rps"],
             ka_requests=ka["requests"], ka_non2xx=ka["non2xx"], ka_errs=ka["socket_errors"],
             ka_segs=ka["segments_per_req"])
    log(f"{name}: full handshakes")
    hs = handshakes(server, args, "handshake")
    r.update(hs_cpu=hs["cpu_us_per_conn"], hs_sys=hs["sys_share"], hs_rate=hs["conn_per_s"],
             hs_errors=hs["errors"])
    log(f"{name}: resumed handshakes")
    rs = handshakes(server, args, "resume")
    r.update(res_cpu=rs["cpu_us_per_conn"], res_sys=rs["sys_share"], res_rate=rs["conn_per_s"],
             res_share=rs["resumed"] / max(1, rs["ok"]))
    log(f"{name}: latency at {args.rate}/s")
    lat = latency(server, args)
    r.update(p50=lat["p50_us"], p99=lat["p99_us"], p90=lat["p90_us"], pmax=lat["max_us"],
             lat_errors=lat["errors"])
    return r


# Failures are added up over the rounds, so that a median never hides one.
SUMMED = ("ka_non2xx", "hs_errors", "lat_errors")


def fold_rounds(rounds):
    """One value per key: the median over the rounds (sums for failure
    counts, the distinct texts for socket errors); `rounds` keeps them all."""
    out = {"rounds": rounds}
    for key in rounds[0]:
        vals = [r[key] for r in rounds]
        if key in SUMMED:
            out[key] = sum(vals)
        elif isinstance(vals[0], str):
            out[key] = "; ".join(sorted({v for v in vals if v}))
        else:
            out[key] = statistics.median(vals)
    return out


# -- 100k certificates ----------------------------------------------------------

def ensure_store(args, n):
    store = os.path.join(CACHE, f"store-{n}")
    marker = os.path.join(store, "generated")
    if not (os.path.exists(marker) and open(marker).read().strip() == str(n)):
        log(f"generating {n} certificates into {store} (once; minutes)")
        os.makedirs(CACHE, exist_ok=True)
    # Generates when missing, then measures a load (its figures are in its output).
    res = subprocess.run([args.store_bench, "--count", str(n), "--state", store],
                         capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        raise RuntimeError(f"tlsedge_store_load_bench failed: {res.stderr[-2000:]}")
    hap = os.path.join(CACHE, f"haproxy-{n}")
    hmarker = os.path.join(hap, "generated")
    if not (os.path.exists(hmarker) and open(hmarker).read().strip() == str(n)):
        log(f"writing the same {n} certificates as HAProxy PEM files into {hap}")
        shutil.rmtree(hap, ignore_errors=True)
        os.makedirs(os.path.join(hap, "certs"), mode=0o700)
        certs = os.path.join(store, "certs")
        for name in os.listdir(certs):
            with open(os.path.join(certs, name, "fullchain.pem")) as a, \
                    open(os.path.join(certs, name, "privkey.pem")) as b:
                data = a.read() + b.read()
            fd = os.open(os.path.join(hap, "certs", name + ".pem"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(data)
        with open(hmarker, "w") as f:
            f.write(f"{n}\n")
    return store, os.path.join(hap, "certs")


def many_certs(work, args, origin_port):
    n = args.certs
    store, hapdir = ensure_store(args, n)
    names = sorted(os.listdir(os.path.join(store, "certs")))
    probe = names[len(names) * 7 // 10]  # some cI in the middle
    idx = probe[1:]
    results = {}
    # tlsedge: a state dir whose certs/ is the cached store, one site per certificate.
    d = os.path.join(work, "tlsedge-many")
    os.makedirs(os.path.join(d, "state"), exist_ok=True)
    os.symlink(os.path.join(store, "certs"), os.path.join(d, "state", "certs"))
    port = free_port()
    conf = os.path.join(d, "tlsedge.yaml")
    tlsedge_config(conf, port, origin_port, os.path.join(d, "state"),
                   [(f"s{c[1:]}", [f"site{c[1:]}.example", f"*.site{c[1:]}.example"], c)
                    for c in names], {}, None)
    tlsedge = (Server("tlsedge-many", [args.tlsedge, "run", "-c", conf], d, port, args.server_core,
                      ready_line=b"<6>ready"), os.path.join(store, "certs"), conf)
    # HAProxy: the same certificates, one PEM file each, in a crt directory.
    d = os.path.join(work, "haproxy-many")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    conf = os.path.join(d, "haproxy.cfg")
    haproxy_config(conf, port, origin_port, hapdir)
    haproxy = (Server("haproxy-many", ["haproxy", "-db", "-f", conf], d, port, args.server_core),
               hapdir, conf)
    starts = {"tlsedge": [], "haproxy": []}
    for i in range(args.rounds):
        order = [("tlsedge", tlsedge), ("haproxy", haproxy)]
        for name, (server, *files) in order[i % 2:] + order[:i % 2]:
            r = start_many(server, args, f"site{idx}.example", *files)
            if "error" in r:
                results[name] = r
            starts[name].append(r)
    for name, rounds in starts.items():
        if name not in results:
            results[name] = fold_rounds(rounds)
            results[name]["right_cert"] = all(r["right_cert"] for r in rounds)
    return results


def warm(*paths):
    """Reads every file under `paths` once (into the page cache)."""
    def read(path):
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    for top in paths:
        if os.path.isfile(top):
            read(top)
        for root, _, files in os.walk(top, followlinks=True):
            for name in files:
                read(os.path.join(root, name))


def start_many(server, args, sni, *files):
    warm(*files)
    log(f"starting {server.name} with {args.certs} certificates")
    try:
        server.start(timeout=args.certs_timeout)
    except RuntimeError as e:
        log(str(e))
        return {"error": f"not serving after {args.certs_timeout} s"}
    try:
        pids = server.pids()
        r = {"seconds": server.start_seconds, "rss": rss_bytes(pids),
             "hwm": rss_bytes(pids, "VmHWM"), "cpu": cpu_seconds(pids)}
        der = served_names(server.port, sni)
        r["right_cert"] = sni.encode() in der
        return r
    finally:
        server.stop()


# -- report -----------------------------------------------------------------------

def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def paired_ratio(a, b, key):
    """a[key] / b[key] (medians), then in brackets the lowest and highest
    ratio of the pairs measured in one round, where there are several."""
    text = ratio(a.get(key), b.get(key))
    per = [x[key] / y[key] for x, y in zip(a.get("rounds", []), b.get("rounds", [])) if y.get(key)]
    if len(per) > 1:
        text += f" ({min(per):.2f}-{max(per):.2f})"
    return text


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // (1024 * 1024)
    return f"{os.cpu_count()} vCPU {model}, {mem} GiB, Linux {platform.release()}"


def versions(args):
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    hap = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    ossl = ossl.split(" (")[0].strip()
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    return (f"tlsedge {rev} (RelWithDebInfo, BoringSSL 13.0.0+r24-2 with assembly); "
            f"{nginx.replace('nginx version: ', '')}; {' '.join(hap.split()[:3])}; both on {ossl}")


def table(res, args, floor, many, load):
    S = ("tlsedge", "nginx", "haproxy")

    def row(label, key, target="", digits=1):
        vals = [res[s].get(key) if s in res else None for s in S]
        t, n, h = vals
        tl = res.get("tlsedge", {})
        return (f"| {label} | {fmt(t, digits)} | {fmt(n, digits)} | {fmt(h, digits)} | "
                f"{paired_ratio(tl, res.get('nginx', {}), key)} | "
                f"{paired_ratio(tl, res.get('haproxy', {}), key)} | {target} |")

    lines = [
        SECTION_BEGIN,
        "## Side by side with nginx and HAProxy (issue 8)",
        "",
        f"Written by `bench/loadcmp.py` on {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} "
        f"({machine()}); load average {load[0]} before, {load[1]} after. "
        f"{versions(args)}.",
        "",
        ("**Noisy**: other work was running when the harness started (load average over 1), "
         "sharing the machine's two vCPUs." if float(load[0]) > 1.0 else
         "Nothing else was running when the harness started (load average at most 1)."),
        "The load generators and the origin share the second vCPU. Compare ratios within",
        "this run, not against other runs.",
        "",
        (f"Figures 1-4 and 6 are medians of {args.rounds} rounds (each round starts every server afresh, "
         "the first server rotating); a ratio is that of the medians, followed in brackets by "
         "the lowest and highest ratio of one round's pair." if args.rounds > 1 else
         "Figures 1-4 and 6 are from one round."),
        "",
        "| figure | tlsedge | nginx | HAProxy | tlsedge / nginx | tlsedge / HAProxy | target |",
        "|---|---|---|---|---|---|---|",
        row("1. keep-alive: server CPU us per request", "ka_cpu", "<= 0.7x both"),
        row("2. full handshake + 1 request: server CPU us per connection", "hs_cpu",
            f"<= 0.5x nginx; <= 2x crypto ({2 * floor['total']:.0f} us)" if floor else "<= 0.5x nginx"),
        row("3. resumed handshake + 1 request: server CPU us per connection", "res_cpu"),
        row(f"4. p50 latency at {args.rate:.0f} req/s, us", "p50", digits=0),
        row(f"4. p99 latency at {args.rate:.0f} req/s, us", "p99", digits=0),
        row(f"5. resident bytes per idle TLS connection ({args.idle:,} open)", "idle_bytes",
            "<= 0.5x nginx", digits=0),
    ]
    if many:
        t, h = many.get("tlsedge", {}), many.get("haproxy", {})

        def mrow(label, key, scale, target):
            tv = t.get(key) / scale if key in t else None
            hv = h.get(key) / scale if key in h else None
            return (f"| {label} | {fmt(tv)} | not measured (no store) | "
                    f"{fmt(hv) if hv is not None else h.get('error', '-')} | - | "
                    f"{paired_ratio(t, h, key)} | {target} |")
        lines += [
            mrow(f"6. start with {args.certs:,} certificates: seconds to serving", "seconds", 1,
                 "<= 0.1x HAProxy"),
            mrow(f"6. start with {args.certs:,} certificates: CPU seconds to serving", "cpu", 1,
                 "(wall time is noisy here)"),
            mrow(f"6. start with {args.certs:,} certificates: resident MiB when serving", "rss",
                 1 << 20, "< HAProxy"),
        ]
    lines += ["", "Details of the same run:", ""]
    for s in S:
        if s not in res:
            continue
        r = res[s]
        lines.append(
            f"- {s}: kernel share of the CPU: keep-alive {r['ka_sys']:.0%}, full handshakes "
            f"{r['hs_sys']:.0%}, resumed {r['res_sys']:.0%}; "
            f"keep-alive {r['ka_rps']:,.0f} req/s under wrk ({r['ka_requests']:,.0f} requests, "
            f"{r['ka_segs']:.2f} TCP segments each on the machine, "
            f"non-2xx {r['ka_non2xx']}{', socket errors ' + r['ka_errs'] if r['ka_errs'] else ''}); "
            f"full handshakes {r['hs_rate']:,.0f}/s ({r['hs_errors']} errors); resumed "
            f"{r['res_rate']:,.0f}/s, {r['res_share']:.0%} resumed; latency p90 {r['p90']:.0f} us, "
            f"max {r['pmax']:.0f} us ({r['lat_errors']} errors); idle: {r['idle_open']:,} open "
            f"({r['idle_errors']} errors), VmRSS {r['idle_before'] / 2**20:.1f} -> "
            f"{r['idle_after'] / 2**20:.1f} MiB.")
    if floor:
        lines.append(
            f"- crypto floor (`tlsedge_tls_load --crypto-floor`: CPU time, same core, same run): "
            f"ECDSA P-256 sign "
            f"{floor['sign']:.1f} us + X25519 key generation {floor['x25519_base']:.1f} us + "
            f"X25519 shared secret {floor['x25519_arb']:.1f} us = {floor['total']:.1f} us per full "
            f"handshake.")
    if many:
        for s, r in many.items():
            if "error" in r:
                lines.append(f"- {args.certs:,} certificates, {s}: {r['error']}.")
            else:
                lines.append(
                    f"- {args.certs:,} certificates, {s}: serving after {r['seconds']:.1f} s "
                    f"(CPU {r['cpu']:.1f} s), VmRSS {r['rss'] / 2**20:,.0f} MiB (peak "
                    f"{r['hwm'] / 2**20:,.0f} MiB); the certificate of a probe SNI was "
                    f"{'right' if r['right_cert'] else 'WRONG'}.")
        lines.append("- nginx has no certificate store: 100k certificates would take 100k `server` "
                     "blocks (or a Lua/njs certificate loader), so it is left out of figure 6.")
    lines += [
        "",
        "Method (details in `bench/loadcmp.py` and [bench/README.md](../bench/README.md)): every "
        "server process pinned with `taskset` to one vCPU, the clients and the origin (a separate "
        "nginx returning a 22-byte body) on the other; one worker each; TLS 1.3, X25519 only, the "
        "same ECDSA P-256 certificate; CPU = utime + stime of all the server's processes from "
        f"`/proc/<pid>/stat` over the run ({args.duration} s per figure and round), clients not "
        "counted; "
        "figures 2-5 by `tlsedge_tls_load` (BoringSSL client, 32 connections in flight), figure 1 "
        "by `wrk -t1 -c32`.",
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"


def write_section(text, path, begin=SECTION_BEGIN, end=SECTION_END):
    """Replaces what is between the `begin` and `end` markers of `path` (both
    included; `text` carries them) with `text`, or appends it; atomically."""
    with open(path) as f:
        doc = f.read()
    if begin in doc and end in doc:
        a = doc.index(begin)
        b = doc.index(end) + len(end) + 1
        doc = doc[:a] + text + doc[b:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, path)


# -- main --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of figures 1-4, the servers in turn; medians are reported")
    ap.add_argument("--rate", type=float, default=1000, help="requests/s for the latency figure")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections for figure 5")
    ap.add_argument("--certs", type=int, default=100000)
    ap.add_argument("--certs-timeout", type=int, default=900)
    ap.add_argument("--skip-certs", action="store_true")
    ap.add_argument("--servers", default="tlsedge,nginx,haproxy")
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--client-core", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--nice", type=int, default=-10,
                    help="priority of everything the harness starts (inherited): ahead of "
                         "other work on a shared machine (needs root when negative)")
    args = ap.parse_args()
    args.tlsedge = os.path.join(args.build, "cli", "tlsedge")
    args.tls_load = os.path.join(args.build, "bench", "tlsedge_tls_load")
    args.store_bench = os.path.join(args.build, "bench", "tlsedge_store_load_bench")
    for tool in ("nginx", "haproxy", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"loadcmp: {tool} not found (apt-get install nginx haproxy wrk util-linux)")
    for path in (args.tlsedge, args.tls_load):
        if not os.access(path, os.X_OK):
            sys.exit(f"loadcmp: {path} missing: build with -DTLSEDGE_BENCH=ON")
    raise_nofile()
    try:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    except OSError:
        log(f"cannot set nice {args.nice}; running at {os.getpriority(os.PRIO_PROCESS, 0)}")
    load0 = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="tlsedge-loadcmp-")
    log(f"work directory {work}")
    leaf = Certs(os.path.join(work, "pki")).leaf("bench", [HOST])
    origin = origin_server(work, args.client_core).start()
    makers = {
        "tlsedge": lambda tag="tlsedge": tlsedge_server(work, args, leaf, origin.port,
                                                        args.server_core, tag),
        "nginx": lambda tag="nginx": nginx_server(work, leaf, origin.port, args.server_core, tag),
        "haproxy": lambda tag="haproxy": haproxy_server(work, leaf, origin.port,
                                                        args.server_core, tag),
    }
    res, floor, many = {}, None, None
    try:
        servers = [n for n in args.servers.split(",") if n]
        rounds = {name: [] for name in servers}
        floors = []
        for i in range(args.rounds):
            floors.append(crypto_floor(args))
            # Each round starts with the next server, so that a slow spell of the
            # machine does not fall on the same server every time.
            for name in servers[i % len(servers):] + servers[:i % len(servers)]:
                log(f"round {i + 1}/{args.rounds}: {name}")
                s = makers[name](f"{name}-r{i + 1}").start()
                try:
                    rounds[name].append(measure_round(s, args, name))
                finally:
                    s.stop()
        floor = {k: statistics.median(f[k] for f in floors) for k in floors[0]}
        for name in servers:
            r = res[name] = fold_rounds(rounds[name])
            log(f"{name}: {args.idle} idle connections (fresh process)")
            s = makers[name](name + "-idle").start()
            try:
                idle = idle_memory(s, args)
                r.update(idle_bytes=idle["bytes_per_conn"], idle_open=idle["open"],
                         idle_errors=idle["errors"], idle_before=idle["rss_before"],
                         idle_after=idle["rss_after"])
            finally:
                s.stop()
            log(f"{name}: {json.dumps({k: v for k, v in r.items() if k != 'rounds'})}")
        if not args.skip_certs:
            many = many_certs(work, args, origin.port)
            log(f"{args.certs} certificates: {json.dumps(many)}")
    finally:
        origin.stop()
    text = table(res, args, floor, many, (f"{load0:.1f}", f"{os.getloadavg()[0]:.1f}"))
    print(text)
    if not args.no_write:
        write_section(text, args.out)
        log(f"wrote {args.out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
