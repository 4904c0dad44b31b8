#!/usr/bin/env python3
"""Fleet mode's figures (issue 17): start from etcd, upload to served by
every node, etcd requests per start.

Run by hand (not in CI), after a release build:

    bench/fleet_bench.py [--counts 1000,100000] [--rounds 100] [--renewal] [--bin build/release/cli/tlsedge]

For each count N: a real 3-member etcd cluster (TLS, client certificates;
tests/integration/etcd.py) in a temporary directory, filled with the N
certificates of `tlsedge_store_load_bench`'s state directory
(build/release/bench/store-N, generated once) by `tlsedge fleet import`;
every configuration has N sites (`sI` for `siteI.example`, bound to the
store's certificate for it) and `shop` (shop.test). Then:

1. Start. One node (2 workers) started three ways, one after the other:
   `local` (no `storage:`, a copy of the state directory), `etcd, empty`
   (fleet mode, an empty state directory: everything comes from etcd) and
   `etcd, in sync` (fleet mode again on the directory the previous start
   wrote). The time is from spawn until a handshake for the last entry's
   host (`siteJ.example`, J the entry etcd's key order reads last) gets its
   certificate, polled every 20 ms; peak memory is the node's VmHWM then;
   etcd requests are `tlsedge_fleet_etcd_requests_total` once in sync.
2. Upload to served. Three nodes (fleet mode, 1 worker each). Each round
   PUTs the other of two leaves for shop.test as store entry `shop` through
   node A's admin socket, and from the moment it is sent makes handshakes
   to every node in turn until all three serve it: the round's time is
   when the last one did. p50, p99 and max over the rounds.

With --renewal, before the counts: etcd requests per ACME renewal. Real
Pebble (tests/integration/pebble.py, HTTP-01 on 127.0.0.2), one fleet node
with an `acme: true` site; once its first certificate is stored, the node's
`tlsedge_fleet_etcd_requests_total` is read, `tlsedge acme renew` orders
again, and the counter is read once the second one is stored; the
background rate (lease refreshes, ticket ring reads) over as long an idle
stretch before is subtracted.

Prints one table per N; docs/benchmarks.md ("Fleet mode") has a run."""

import argparse
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from config import base_config, respond_route, site  # noqa: E402
from daemon import Daemon  # noqa: E402
from etcd import EtcdCluster  # noqa: E402
from scrape import scrape, value  # noqa: E402
from upload_to_handshake import put  # noqa: E402
from common import closed_port  # noqa: E402
from pebble import Pebble  # noqa: E402
import pki  # noqa: E402

PREFIX = "/tlsedge-bench"
POLL_S = 0.02
SERVED_TIMEOUT_S = 600.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def store_dir(build, count):
    """build/release/bench/store-N, generated once by tlsedge_store_load_bench."""
    path = os.path.join(build, "bench", f"store-{count}")
    marker = os.path.join(path, "generated")
    if not (os.path.exists(marker) and open(marker).read().strip() == str(count)):
        log(f"generating store-{count} (once)")
        subprocess.run([os.path.join(build, "bench", "tlsedge_store_load_bench"),
                        "--count", str(count)], check=True, stdout=subprocess.DEVNULL)
    return path


def first_der(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read().split("-----END CERTIFICATE-----")[0] +
                                        "-----END CERTIFICATE-----\n")


def served_der(port, host, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)


def vm_hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Bench:
    def __init__(self, args, top, count):
        self.args = args
        self.top = top
        self.count = count
        self.store = store_dir(args.build, count)
        self.certs = pki.Certs(os.path.join(top, "pki"))
        self.default = self.certs.leaf("default", ["default.test"])
        self.shops = [self.certs.leaf(f"shop{i}", ["shop.test"]) for i in range(2)]
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        names = sorted(n for n in os.listdir(os.path.join(self.store, "certs"))
                       if not n.startswith("."))
        self.last = names[-1]  # etcd's key order: the entry read last
        self.last_host = f"site{self.last[1:]}.example"
        self.last_der = first_der(os.path.join(self.store, "certs", self.last, "fullchain.pem"))
        self.sites = [site(f"s{i}", [f"site{i}.example"], [respond_route("/", 200, "x\n")])
                      for i in range(count)]
        self.sites.append(site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")]))
        self.etcd = None
        self.key_file = os.path.join(top, "fleet.key")

    def config(self, state, fleet, workers):
        cfg = base_config(state, certificates={"default": self.default},
                          default_certificate="default", sites=self.sites, workers=workers)
        if fleet:
            cfg["storage"] = {"etcd": {
                "endpoints": self.etcd.endpoints, "prefix": PREFIX,
                "tls": {"ca": self.etcd.ca_cert, "cert": self.etcd.client_cert,
                        "key": self.etcd.client_key},
                "key_file": self.key_file}}
        return cfg

    def setup_fleet(self):
        self.etcd = EtcdCluster(self.top, members=3, tls=True,
                                extra_args=["--quota-backend-bytes", str(8 << 30)])
        line = subprocess.run([self.args.bin, "fleet-key", "new"], check=True,
                              capture_output=True, text=True).stdout
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(line)
        d = Daemon(self.top, self.config(os.path.join(self.top, "unused"), True, 1), name="import")
        t0 = time.monotonic()
        res = subprocess.run([self.args.bin, "fleet", "import", "-c", d.config_path,
                              "--from", self.store], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        log(f"N={self.count}: {res.stdout.strip()} in {time.monotonic() - t0:.1f} s")

    def wait_served(self, d, t0):
        while True:
            try:
                if served_der(d.https_port, self.last_host, self.ctx) == self.last_der:
                    return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > SERVED_TIMEOUT_S:
                raise RuntimeError(f"{self.last_host} not served\n{d.log()[-3000:]}")
            time.sleep(POLL_S)

    def start_once(self, name, state, fleet):
        d = Daemon(self.top, self.config(state, fleet, 2), name=name)
        t0 = time.monotonic()
        d.start(timeout=SERVED_TIMEOUT_S)
        seconds = self.wait_served(d, t0)
        row = {"case": name, "seconds": seconds, "hwm": vm_hwm(d.proc.pid)}
        if fleet:
            deadline = time.monotonic() + 60
            while not any(re.search(r"the store is in sync with \S+/certs |/certs resumes from", ln)
                          for ln in d.lines()):
                if time.monotonic() > deadline:
                    raise RuntimeError(d.log()[-3000:])
                time.sleep(POLL_S)
            samples = scrape(d.metrics_address)
            row["unary"] = value(samples, "tlsedge_fleet_etcd_requests_total", kind="unary")
            row["watch"] = value(samples, "tlsedge_fleet_etcd_requests_total", kind="watch")
            row["written"] = next((m.group(1) for ln in d.lines()
                                   if (m := re.search(r"in sync .*\((\d+) entries written", ln))),
                                  "0")
        d.cleanup()
        return row

    def starts(self):
        local = os.path.join(self.top, "state-local")
        shutil.copytree(self.store, local, symlinks=True)
        fleet_dir = os.path.join(self.top, "state-fleet")
        rows = [self.start_once("local", local, False),
                self.start_once("etcd-empty", fleet_dir, True),
                self.start_once("etcd-in-sync", fleet_dir, True)]
        shutil.rmtree(local, ignore_errors=True)
        return rows

    def upload_to_served(self):
        nodes = []
        try:
            for n in "abc":
                d = Daemon(self.top, self.config(os.path.join(self.top, f"node-{n}"), True, 1),
                           name=f"node-{n}")
                t0 = time.monotonic()
                d.start(timeout=SERVED_TIMEOUT_S)
                self.wait_served(d, t0)
                nodes.append(d)
            sock = os.path.join(self.top, "node-a", "admin.sock")
            ders = [first_der(leaf.cert) for leaf in self.shops]
            times = []
            for i in range(self.args.rounds):
                leaf, der = self.shops[i % 2], ders[i % 2]
                t0 = time.monotonic()
                put(sock, "shop", leaf)
                waiting = list(nodes)
                while waiting:
                    waiting = [d for d in waiting
                               if served_der(d.https_port, "shop.test", self.ctx) != der]
                    if time.monotonic() - t0 > 30:
                        raise RuntimeError("upload not served by every node in 30 s")
                times.append((time.monotonic() - t0) * 1000)
            return times
        finally:
            for d in nodes:
                d.cleanup()


class Cleanups:
    """What the test harness's fixtures register with a test case: run at the end."""

    def __init__(self):
        self.calls = []

    def addCleanup(self, fn, *args):
        self.calls.append((fn, args))

    def run(self):
        for fn, args in reversed(self.calls):
            fn(*args)


def renewal_requests(args):
    """etcd requests of one forced ACME renewal on a fleet node (see above)."""
    top = tempfile.mkdtemp(prefix="fleet-bench-renewal-")
    cleanups = Cleanups()
    try:
        etcd = EtcdCluster(top, members=3, tls=True)
        cleanups.addCleanup(etcd.stop)
        key_file = os.path.join(top, "fleet.key")
        line = subprocess.run([args.bin, "fleet-key", "new"], check=True, capture_output=True,
                              text=True).stdout
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(line)
        http_port = closed_port()
        pebble = Pebble(cleanups, top, http_port,
                        env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
                             "PEBBLE_AUTHZREUSE": "0"})
        pebble.add_a("shop.test", ["127.0.0.2"])
        fallback = pki.Certs(os.path.join(top, "pki")).leaf("fallback", ["fallback.test"])
        cfg = base_config(os.path.join(top, "state"), http=(f"127.0.0.2:{http_port}",),
                          https=("127.0.0.2:0",), certificates={"fallback": fallback},
                          default_certificate="fallback",
                          sites=[site("shop", ["shop.test"], [respond_route("/", 200, "x\n")],
                                      tls={"acme": True})])
        cfg["acme"] = {"directory": pebble.directory, "email": "ops@shop.test",
                       "trusted_roots": [pebble.ca_cert],
                       "preflight_resolve": {"shop.test": "127.0.0.2"}}
        cfg["storage"] = {"etcd": {
            "endpoints": etcd.endpoints, "prefix": PREFIX,
            "tls": {"ca": etcd.ca_cert, "cert": etcd.client_cert, "key": etcd.client_key},
            "key_file": key_file, "node": "a"}}
        d = Daemon(top, cfg, name="node-a")
        cleanups.addCleanup(d.cleanup)
        d.start()
        stored = r"acme: certificate `acme-shop` for site `shop` \(shop.test\) issued and stored"

        def wait_stored(n):
            deadline = time.monotonic() + 60
            while d.count_lines(stored) < n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no certificate stored\n{d.log()[-3000:]}")
                time.sleep(0.05)

        def unary():
            return value(scrape(d.metrics_address), "tlsedge_fleet_etcd_requests_total",
                         kind="unary")
        wait_stored(1)
        time.sleep(2)
        t0, idle0 = time.monotonic(), unary()
        res = subprocess.run([args.bin, "acme", "renew", "shop", "-c", d.config_path],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        wait_stored(2)
        time.sleep(1)  # the lock's release and the answers' removal
        renewal, seconds = unary() - idle0, time.monotonic() - t0
        t1, idle1 = time.monotonic(), unary()
        time.sleep(seconds)
        background = (unary() - idle1) * seconds / (time.monotonic() - t1)
        print(f"ACME renewal (HTTP-01, one host) on a fleet node: {renewal:.0f} etcd requests "
              f"in {seconds:.1f} s, of which about {background:.0f} background "
              f"(lease refreshes, ticket ring): ~{renewal - background:.0f} for the renewal",
              flush=True)
    finally:
        cleanups.run()
        shutil.rmtree(top, ignore_errors=True)


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,100000")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--bin", help="the tlsedge binary (default: build/release/cli/tlsedge)")
    parser.add_argument("--renewal", action="store_true",
                        help="also count etcd requests per ACME renewal (real Pebble)")
    args = parser.parse_args()
    args.build = os.path.abspath(os.path.join(ROOT, "build", "release"))
    args.bin = os.path.abspath(args.bin or os.path.join(args.build, "cli", "tlsedge"))
    os.environ["TLSEDGE_BIN"] = args.bin
    if args.renewal:
        renewal_requests(args)
    for count in (int(c) for c in args.counts.split(",")):
        top = tempfile.mkdtemp(prefix=f"fleet-bench-{count}-")
        bench = None
        try:
            bench = Bench(args, top, count)
            bench.setup_fleet()
            rows = bench.starts()
            times = bench.upload_to_served()
            local = rows[0]
            print(f"\nN = {count} certificates, 3 etcd members, {args.rounds} upload rounds")
            print(f"{'start':14} {'seconds':>8} {'x local':>8} {'peak RSS MiB':>13} "
                  f"{'etcd unary':>11} {'watches':>8} {'written':>8}")
            for r in rows:
                print(f"{r['case']:14} {r['seconds']:8.2f} {r['seconds'] / local['seconds']:8.2f} "
                      f"{r['hwm'] / 2**20:13.0f} {r.get('unary', 0):11.0f} "
                      f"{r.get('watch', 0):8.0f} {r.get('written', '-'):>8}")
            print(f"upload to served by 3 nodes: p50 {statistics.median(times):.0f} ms, "
                  f"p99 {quantile(times, 0.99):.0f} ms, max {max(times):.0f} ms", flush=True)
        finally:
            if bench is not None and bench.etcd is not None:
                bench.etcd.stop()
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
