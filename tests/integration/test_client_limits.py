"""limits.per_client with real clients from several loopback addresses
(127.0.0.2, .3, ...: each is another client to the daemon): one address
floods (stalled handshakes, idle connections, a burst of connections or of
requests) while another is served normally; exempt networks; the metrics of
what was limited. The PROXY protocol case (the header's address is the
client) is in test_proxy_protocol.py, behind a real HAProxy.

Timing: the flooder's refusals are immediate resets, so the bounds below
(seconds) only separate "served now" from "waited for handshake_timeout",
which is 30 s here."""

import os
import shutil
import subprocess
import time
import unittest

from common import make_tempdir
from daemon import start_daemon
from origin import start_origin
from pki import Certs
from scrape import scrape, value
from test_limits import HOST, Conn, get, limits_config, recv_response

FLOODER = "127.0.0.2"
CLIENT = "127.0.0.3"
EXEMPT = "127.0.0.4"


class ClientLimitsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = make_tempdir(self)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        self.leaf = self.certs.leaf("l", [HOST])
        self.ca = self.certs.ca_cert
        self.origin = start_origin(self, "origin")

    def start(self, per_client, **limits):
        cfg = limits_config(self.tmp, self.leaf, self.origin, workers=1,
                            handshake_timeout="30s", keepalive_timeout="30s",
                            per_client=per_client, **limits)
        self.daemon = start_daemon(self, self.tmp, cfg, args=["--log-level", "debug"])
        return self.daemon

    def conn(self, port, source, **kw):
        c = Conn(port, ca=self.ca, source=source, **kw)
        self.addCleanup(c.close)
        return c

    def attempt(self, port, source):
        """A TCP connection from `source` that sends nothing: the Conn, or
        None if it was reset already (the RST can beat connect()'s return)."""
        try:
            return self.conn(port, source)
        except ConnectionResetError:
            return None

    def refused(self, port, source):
        """Is a new connection from `source` reset at once?"""
        c = self.attempt(port, source)
        return c is None or c.closed_within(5)

    def limited(self, limit):
        return value(scrape(self.daemon.metrics_address), "tlsedge_client_limited_total",
                     limit=limit)

    def served(self, port, source, tls=True, path="/static", timeout=5):
        """A whole request from `source` on a new connection: its status,
        within `timeout` seconds."""
        c = self.conn(port, source, tls=tls, handshake=False, timeout=timeout)
        if tls:
            c.handshake(timeout=timeout)
        c.send(get(path))
        status = recv_response(c, timeout=timeout)[0]
        c.close()
        return status

    def served_soon(self, port, source, timeout=5):
        """served(), retried while the daemon may not have seen a close
        that frees a place yet (a refusal is a reset)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.served(port, source)
            except (ConnectionError, AssertionError, OSError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def test_stalled_handshakes_from_one_address_leave_others_served(self):
        # Without per_client, 300 stalled handshakes fill max_handshakes and
        # everyone else waits in the kernel queue for handshake_timeout.
        d = self.start({"max_handshakes": 5}, max_handshakes=50)
        stalled = [self.attempt(d.https_port, FLOODER) for _ in range(300)]
        started = time.monotonic()
        for i in range(3):
            self.assertEqual(self.served(d.https_port, CLIENT, path=f"/static?{i}"), 200)
        self.assertLess(time.monotonic() - started, 15)
        # All but 5 of the flood were reset at once.
        deadline = time.monotonic() + 10
        while self.limited("handshakes") < 295 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.limited("handshakes"), 295)
        open_ones = [c for c in stalled if c is not None and not c.closed_within(0.01)]
        self.assertEqual(len(open_ones), 5)
        # A finished handshake frees its place for the same address (once
        # the daemon has seen the closes).
        for c in open_ones:
            c.close()
        self.assertEqual(self.served_soon(d.https_port, FLOODER), 200)

    def test_concurrent_connections_per_address(self):
        d = self.start({"max_connections": 3})
        held = []
        for i in range(3):
            c = self.conn(d.https_port, FLOODER, tls=True)
            c.send(get(f"/static?{i}"))
            self.assertEqual(recv_response(c)[0], 200)
            held.append(c)
        self.assertTrue(self.refused(d.https_port, FLOODER),
                        "a 4th connection from one address stayed open")
        # Another address, and plain HTTP from it, are served meanwhile.
        self.assertEqual(self.served(d.https_port, CLIENT), 200)
        self.assertEqual(self.served(d.http_port, CLIENT, tls=False), 200)
        self.assertEqual(self.limited("connections"), 1)
        held.pop().close()
        self.assertEqual(self.served_soon(d.https_port, FLOODER), 200)
        self.assertGreaterEqual(d.count_lines("refused: per-client limit connections"), 1)

    def test_connection_rate(self):
        d = self.start({"connections_per_second": 1, "connection_burst": 3})
        results = []
        started = time.monotonic()
        for i in range(8):
            try:
                results.append(self.served(d.http_port, FLOODER, tls=False, path=f"/static?{i}"))
            except (ConnectionError, AssertionError, OSError):
                results.append("reset")
        elapsed = time.monotonic() - started
        self.assertEqual(results[:3], [200, 200, 200], results)
        # One more token a second at most.
        self.assertLessEqual(results.count(200), 3 + int(elapsed) + 1, results)
        self.assertGreaterEqual(results.count("reset"), 8 - 3 - int(elapsed) - 1, results)
        self.assertEqual(self.served(d.http_port, CLIENT, tls=False), 200)
        self.assertEqual(self.limited("connection_rate"), results.count("reset"))

    def test_request_rate_gets_429_with_retry_after(self):
        d = self.start({"requests_per_second": 1, "request_burst": 3})
        c = self.conn(d.https_port, FLOODER, tls=True)
        statuses, retry = [], []
        started = time.monotonic()
        for i in range(8):
            c.send(get(f"/static?{i}"))
            status, headers, _ = recv_response(c)
            statuses.append(status)
            if status == 429:
                retry.append(headers.get("retry-after"))
        elapsed = time.monotonic() - started
        self.assertEqual(statuses[:3], [200, 200, 200], statuses)
        self.assertLessEqual(statuses.count(200), 3 + int(elapsed) + 1, statuses)
        self.assertEqual(statuses.count(200) + statuses.count(429), 8, statuses)
        self.assertTrue(retry and all(r == "1" for r in retry), retry)
        # The connection stays usable and other clients are not held back.
        self.assertEqual(self.served(d.https_port, CLIENT), 200)
        self.assertEqual(self.limited("request_rate"), statuses.count(429))

    @unittest.skipUnless(shutil.which("curl"), "curl is not installed")
    def test_request_rate_over_http2(self):
        d = self.start({"requests_per_second": 1, "request_burst": 2})
        url = f"https://{HOST}:{d.https_port}/static"
        # One curl, one HTTP/2 connection, 6 requests one after another.
        out = subprocess.run(
            ["curl", "-s", "--http2", "--cacert", self.ca, "--interface", FLOODER,
             "--resolve", f"{HOST}:{d.https_port}:127.0.0.1",
             "-w", "%{http_version} %{http_code} %header{retry-after}\\n"]
            + ["-o", "/dev/null", url] * 6,
            capture_output=True, text=True, timeout=30, check=True).stdout.split("\n")
        lines = [l.split() for l in out if l]
        self.assertEqual(len(lines), 6, out)
        self.assertTrue(all(l[0] == "2" for l in lines), lines)
        self.assertEqual([l[1] for l in lines[:2]], ["200", "200"], lines)
        limited = [l for l in lines if l[1] == "429"]
        self.assertGreaterEqual(len(limited), 2, lines)
        self.assertTrue(all(l[2] == "1" for l in limited), lines)

    def test_exempt_networks_are_not_limited(self):
        d = self.start({"max_connections": 1, "exempt": [f"{EXEMPT}/32"]})
        held = [self.conn(d.https_port, EXEMPT, tls=True) for _ in range(4)]
        for i, c in enumerate(held):
            c.send(get(f"/static?{i}"))
            self.assertEqual(recv_response(c)[0], 200)
        first = self.conn(d.https_port, FLOODER, tls=True)
        first.send(get("/static"))
        self.assertEqual(recv_response(first)[0], 200)
        self.assertTrue(self.refused(d.https_port, FLOODER))
        samples = scrape(d.metrics_address)
        self.assertEqual(value(samples, "tlsedge_client_limited_total", limit="connections"), 1)
        # Only the limited address has an entry; the exempt one has none.
        self.assertEqual(value(samples, "tlsedge_clients_tracked"), 1)

    def test_reload_turns_limits_on_for_new_connections(self):
        d = self.start({})
        for _ in range(3):
            self.conn(d.https_port, FLOODER, tls=True)
        self.assertEqual(value(scrape(d.metrics_address), "tlsedge_clients_tracked"), 0)
        cfg = limits_config(self.tmp, self.leaf, self.origin, workers=1,
                            handshake_timeout="30s", keepalive_timeout="30s",
                            per_client={"max_connections": 1})
        d.reload(cfg)
        # Connections opened before the reload were never counted: the
        # limit applies to what comes after it.
        first = self.conn(d.https_port, FLOODER, tls=True)
        first.send(get("/static"))
        self.assertEqual(recv_response(first)[0], 200)
        self.assertTrue(self.refused(d.https_port, FLOODER))
        self.assertEqual(self.served(d.https_port, CLIENT), 200)


if __name__ == "__main__":
    unittest.main()
