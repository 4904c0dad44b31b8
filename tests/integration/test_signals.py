"""Graceful shutdown: SIGTERM / SIGINT stop accepting, let in-flight requests
finish (up to shutdown_timeout) and exit 0."""

import http.client
import os
import signal
import ssl
import threading
import time
import unittest

from common import make_tempdir
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import start_origin
from clients import SniHTTPSConnection, client_context, https_request


class Background:
    """Runs fn in a thread; join() returns its result or raises its exception."""

    def __init__(self, fn):
        self._fn = fn
        self.result = self.error = None
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            self.result = self._fn()
        except BaseException as e:  # reported by join()
            self.error = e

    def join(self, timeout):
        self._t.join(timeout)
        if self._t.is_alive():
            raise AssertionError(f"background request still running after {timeout}s")
        if self.error is not None:
            raise self.error
        return self.result


class SignalTest(unittest.TestCase):

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        self.leaf = self.certs.leaf("a", ["a.test"])
        self.origin = start_origin(self, "slow-origin")

    def start(self, name="tlsedge", shutdown_timeout="10s"):
        workdir = os.path.join(self.tmp, name)
        os.makedirs(workdir)
        cfg = base_config(
            os.path.join(workdir, "state"), certificates={"a": self.leaf},
            default_certificate="a", shutdown_timeout=shutdown_timeout,
            sites=[site("a", ["a.test"], [
                upstream_route("/", "o"),
                respond_route("/static", 200, "static\n"),
            ], "a")],
            upstreams={"o": [self.origin.address]})
        return start_daemon(self, workdir, cfg, name)

    def request(self, daemon, path):
        return https_request(daemon.https_port, "a.test", path, ca=self.certs.ca_cert)

    def test_sigterm_completes_in_flight_request(self):
        d = self.start()
        bg = Background(lambda: self.request(d, "/slow?delay_ms=1000"))
        self.origin.wait_for_requests(1, timeout=10)  # the request is at the origin now
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        r = bg.join(timeout=15)
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual(echo["path"], "/slow?delay_ms=1000")
        self.assertEqual(echo["origin"], "slow-origin")
        self.assertEqual(d.wait_exit(timeout=15), 0, d.log())
        # It waited for the request, not for the whole shutdown_timeout.
        self.assertLess(time.monotonic() - t0, 8, "exit took close to shutdown_timeout")

        # A second daemon on a fresh config starts and serves afterwards.
        d2 = self.start("second")
        r2 = self.request(d2, "/static")
        self.assertEqual((r2.status, r2.body), (200, b"static\n"))
        r3 = self.request(d2, "/after")
        self.assertEqual(r3.json()["path"], "/after")
        d2.stop(signal.SIGTERM)

    def test_sigint_is_graceful_too(self):
        d = self.start()
        bg = Background(lambda: self.request(d, "/slow-int?delay_ms=1000"))
        self.origin.wait_for_requests(1, timeout=10)
        d.send_signal(signal.SIGINT)
        r = bg.join(timeout=15)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["path"], "/slow-int?delay_ms=1000")
        self.assertEqual(d.wait_exit(timeout=15), 0, d.log())

    def test_stops_accepting_after_sigterm(self):
        d = self.start()
        port = d.https_port
        bg = Background(lambda: self.request(d, "/slow?delay_ms=3000"))
        self.origin.wait_for_requests(1, timeout=10)
        d.send_signal(signal.SIGTERM)
        # While the slow request is still in flight, new connections must
        # fail (refused, reset, or never answered). Bounded: 20 tries, ~2 s.
        refused = False
        served = []
        for _ in range(20):
            try:
                r = https_request(port, "a.test", "/static", ca=self.certs.ca_cert)
                served.append(r.status)
            except (OSError, ssl.SSLError, ConnectionError, http.client.HTTPException):
                refused = True
                break
            time.sleep(0.1)
        self.assertTrue(refused, f"new requests still served after SIGTERM: {served}")
        r = bg.join(timeout=15)
        self.assertEqual(r.status, 200)
        self.assertEqual(d.wait_exit(timeout=15), 0, d.log())

    def test_shutdown_timeout_bounds_the_wait(self):
        d = self.start(shutdown_timeout="1s")
        bg = Background(lambda: self.request(d, "/stuck?delay_ms=10000"))
        self.origin.wait_for_requests(1, timeout=10)
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(timeout=15), 0, d.log())
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 6, f"exit took {elapsed:.1f}s with shutdown_timeout 1s")
        try:
            bg.join(timeout=15)  # the client saw an error or a 5xx: either is fine
        except Exception:
            pass

    def test_idle_keep_alive_does_not_delay_exit(self):
        d = self.start(shutdown_timeout="20s")
        conn = SniHTTPSConnection("a.test", d.https_port,
                                  client_context(self.certs.ca_cert))
        self.addCleanup(conn.close)
        conn.request("GET", "/static")
        resp = conn.getresponse()
        self.assertEqual(resp.read(), b"static\n")
        self.assertIsNotNone(conn.sock)  # idle keep-alive connection, held open
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(timeout=25), 0, d.log())
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 5, f"an idle keep-alive connection delayed exit {elapsed:.1f}s")

    def test_every_sighup_from_the_first_instant_is_handled(self):
        # Sent as soon as `ready` is logged, one after the other: each one
        # must reach the control loop (no signal lost to another thread).
        d = self.start()
        for _ in range(5):
            d.reload()
        self.assertEqual(self.request(d, "/static").status, 200)

    def test_other_signals_are_logged_and_ignored(self):
        d = self.start()
        mark = d.count_lines(r"ignoring signal")
        d.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while d.count_lines(r"ignoring signal") == mark and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(d.count_lines(r"ignoring signal User defined signal 1"), mark + 1)
        d.reload()
        self.assertTrue(d.running())
        self.assertEqual(self.request(d, "/static").status, 200)

    def test_idle_daemon_exits_zero_quickly(self):
        d = self.start()
        t0 = time.monotonic()
        d.stop(signal.SIGTERM)
        self.assertLess(time.monotonic() - t0, 5)


if __name__ == "__main__":
    unittest.main()
