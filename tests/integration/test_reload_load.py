"""Reload under load: wrk keeps HTTPS keep-alive connections busy on a route
proxied to real origins while the config is rewritten and SIGHUP sent once a
second. A reload must cost no request: zero socket errors (connect, read,
write, timeout), zero non-2xx/3xx, every body from an origin (wrk Lua check),
and throughput above a floor.

HTTP/2 load goes alongside (curl --parallel, h2_load.CurlH2Load): every
reload sends its connections GOAWAY, their streams in flight finish and curl
opens new connections; every stream a 200 over HTTP/2, none failed.

Each reload changes something harmless: the upstream's server order, a
static body, and a second https listener that comes and goes (the one wrk
uses stays). Alongside the keep-alive run a second, smaller wrk sends
`Connection: close`, so new connections are accepted while listeners and
generations change."""

import os
import time
import unittest

from common import make_tempdir, require_tool, sanitizer
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import start_origin
from h2_load import CurlH2Load
from wrk import WrkResult, assert_clean, start_wrk, wrk_command, write_check_script

WRK_THREADS = 1
WRK_CONNECTIONS = 20  # keep-alive
WRK_CLOSE_CONNECTIONS = 4  # Connection: close, a new connection per request
H2_PARALLEL = 10  # HTTP/2 streams at a time (curl): each reload sends GOAWAY
WRK_DURATION_S = 20
RELOAD_EVERY_S = 1.0
MIN_RELOADS = 15
# Floors far below what this does on a loaded 2-core box (release: about
# 3000/s keep-alive and 700/s with a handshake per request; the Python
# origins are the bottleneck), far above what a reload that stalls the
# workers leaves. Sanitizer builds are several times slower.
MIN_REQUESTS = 1000 if sanitizer() else 5000
MIN_CLOSE_REQUESTS = 200 if sanitizer() else 1000
MIN_H2_STREAMS = 500 if sanitizer() else 2000


class ReloadUnderLoadTest(unittest.TestCase):

    def setUp(self):
        require_tool("wrk")
        self.tmp = make_tempdir(self)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        self.leaf = self.certs.leaf("load", ["load.test"])
        self.origins = [start_origin(self, "reload-origin-1"), start_origin(self, "reload-origin-2")]

    def config(self, i):
        """Variant i: a harmless change every time (the static body, and the
        order of the upstream's servers, alternate)."""
        servers = [o.address for o in self.origins]
        if i % 2:
            servers.reverse()
        https = ["127.0.0.1:0"] * (2 if i % 2 else 1)
        return base_config(
            os.path.join(self.tmp, "state"), workers=2, https=https,
            certificates={"load": self.leaf}, default_certificate="load",
            sites=[site("load", ["load.test"], [
                upstream_route("/", "o"),
                respond_route("/version", 200, f"config {i}\n"),
            ], "load")],
            upstreams={"o": servers})

    def test_reload_every_second_under_wrk(self):
        d = start_daemon(self, self.tmp, self.config(0))
        script = write_check_script(os.path.join(self.tmp, "check.lua"), 200,
                                    '"origin": "reload-origin-')
        url = f"https://127.0.0.1:{d.https_port}/proxied"
        runs = {}
        for name, connections, extra in (("keep-alive", WRK_CONNECTIONS, []),
                                         ("close", WRK_CLOSE_CONNECTIONS,
                                          ["-H", "Connection: close"])):
            cmd = wrk_command(url, script, threads=WRK_THREADS, connections=connections,
                              duration=f"{WRK_DURATION_S}s", host="load.test", extra=extra)
            proc, out_path = start_wrk(cmd, self.tmp)
            self.addCleanup(lambda p=proc: p.poll() is None and p.kill())
            runs[name] = (proc, out_path)
        h2 = CurlH2Load(self.tmp, d.https_port, "load.test", "/proxied", ca=self.certs.ca_cert,
                        duration_s=WRK_DURATION_S - 1, parallel=H2_PARALLEL).start()
        self.addCleanup(h2.stop, 0)
        wrk = runs["keep-alive"][0]

        start = time.monotonic()
        reloads = 0
        # One reload a second while wrk runs, the last one a second before
        # it stops (bounded: at most WRK_DURATION_S reloads).
        for i in range(1, WRK_DURATION_S):
            time.sleep(max(0.0, start + i * RELOAD_EVERY_S - time.monotonic()))
            if wrk.poll() is not None or time.monotonic() - start > WRK_DURATION_S - 1:
                break
            d.reload(self.config(i))
            reloads += 1

        results = {}
        for name, (proc, out_path) in runs.items():
            proc.wait(timeout=WRK_DURATION_S + 30)  # bounded; the cleanup kills it
            with open(out_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            self.assertEqual(proc.returncode, 0, text)
            results[name] = WrkResult(text)
        h2.stop(timeout=60)
        summary = ", ".join(f"{n}: {w.requests} requests ({w.requests_per_sec:.0f}/s)"
                            for n, w in results.items())
        summary += (f", h2: {len(h2.lines)} streams on {h2.connections()} connections;"
                    f" {reloads} reloads")
        print(f"\nreload under load: {summary}")
        assert_clean(self, results["keep-alive"], MIN_REQUESTS)
        assert_clean(self, results["close"], MIN_CLOSE_REQUESTS)
        h2.assert_clean(self, MIN_H2_STREAMS)
        # Each reload's GOAWAY moved curl to a new connection.
        self.assertGreaterEqual(h2.connections(), MIN_RELOADS, summary)
        self.assertGreaterEqual(reloads, MIN_RELOADS, summary)
        self.assertGreaterEqual(d.count_lines(r"^<6>reloaded$"), MIN_RELOADS, d.log())
        # Every other reload opened, the next one closed, the second listener.
        self.assertGreaterEqual(d.count_lines(r"^<6>closed listener "), MIN_RELOADS // 2 - 1,
                                d.log())
        self.assertEqual(d.count_lines(r"^<3>"), 0, d.log())
        self.assertTrue(d.running(), d.log())
        for o in self.origins:  # round robin reached both, whatever the order
            self.assertGreater(o.request_count(), 0)


if __name__ == "__main__":
    unittest.main()
