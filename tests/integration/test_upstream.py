"""Per-upstream options, end to end: TLS to origins (verified by CA and server
name or IP address, verify: false, session resumption, an unreadable CA
refused), balancing (round robin, least connections), passive health
(ejection and return), retries (next server, stale pooled connection, never
once body bytes went out), timeouts (connect, read, send) and the keep-alive
pool (keepalive: 0, idle_timeout).

Every daemon here runs one worker, so the per-worker pool, cursor and health
state are the daemon's and counts are exact."""

import concurrent.futures
import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

from common import START_TIMEOUT, dead_port, make_tempdir, run, tlsedge_bin
from pki import Certs, self_signed
from config import base_config, site, to_yaml, upstream, upstream_route
from daemon import start_daemon
from origin import (Blackhole, Origin, ResetAfterRequest, Sink, start_helper, start_origin)
from clients import SniHTTPSConnection, client_context, https_request
from scrape import scrape, value


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


class UpstreamTestBase(unittest.TestCase):
    """A test CA, the edge's certificate for shop.test, and a daemon per test
    routing shop.test/ (HTTPS, and plain HTTP too) to the upstream `up`."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.edge = cls.certs.leaf("edge", ["shop.test"])
        cls.ca = cls.certs.ca_cert

    def config(self, up, workdir):
        return base_config(
            os.path.join(workdir, "state"), workers=1,
            certificates={"edge": self.edge}, default_certificate="edge",
            sites=[site("shop", ["shop.test"], [upstream_route("/", "up")], "edge",
                        redirect_https=False)],
            upstreams={"up": up})

    def start(self, up):
        workdir = make_tempdir(self)
        self.daemon = start_daemon(self, workdir, self.config(up, workdir))
        self.port = self.daemon.https_port
        return self.daemon

    def get(self, path="/", **kw):
        headers = {"Host": "shop.test", **kw.pop("headers", {})}
        return https_request(self.port, "shop.test", path, ca=self.ca, headers=headers, **kw)

    def log_count(self, pattern):
        rx = re.compile(pattern, re.I)
        return sum(1 for line in self.daemon.lines() if rx.search(line))

    def wait_log(self, pattern, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_count(pattern):
                return
            time.sleep(0.05)
        raise AssertionError(f"no log line matching {pattern!r} after {timeout}s\n"
                             f"log:\n{self.daemon.log()}")

    def assertStatus(self, response, status):
        self.assertEqual(response.status, status, f"{response}\nlog:\n{self.daemon.log()}")


# ---------------------------------------------------------------------------
# TLS to origins


class UpstreamTlsTest(UpstreamTestBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin_leaf = cls.certs.leaf("origin", ["origin.test"])
        cls.ip_leaf = cls.certs.leaf("origin-ip", ["127.0.0.1"])
        cls.other = Certs(os.path.join(cls.tmp, "other-pki"))
        cls.self_signed = self_signed(os.path.join(cls.tmp, "self-signed"), ["origin.test"])

    def test_origin_verified_with_configured_ca(self):
        origin = start_origin(self, "tls", tls=self.origin_leaf)
        self.start(upstream([origin.address],
                            tls={"ca": self.ca, "server_name": "origin.test"}))
        r = self.get("/tls")
        self.assertStatus(r, 200)
        echo = r.json()
        self.assertEqual(echo["path"], "/tls")
        self.assertEqual(echo["tls"]["sni"], "origin.test")
        self.assertEqual(echo["tls"]["alpn"], "http/1.1")
        self.assertIn(echo["tls"]["version"], ("TLSv1.2", "TLSv1.3"))

    def test_wrong_ca_is_502_and_says_why(self):
        origin = start_origin(self, "tls", tls=self.origin_leaf)
        self.start(upstream([origin.address],
                            tls={"ca": self.other.ca_cert, "server_name": "origin.test"}))
        r = self.get("/wrong-ca")
        self.assertStatus(r, 502)
        self.wait_log(r"certificate verify failed")
        self.assertEqual(origin.request_count(), 0)

    def test_server_name_mismatch_is_502(self):
        origin = start_origin(self, "tls", tls=self.origin_leaf)
        self.start(upstream([origin.address],
                            tls={"ca": self.ca, "server_name": "other.test"}))
        r = self.get("/mismatch")
        self.assertStatus(r, 502)
        self.wait_log(r"certificate verify failed: hostname mismatch")
        self.assertEqual(origin.request_count(), 0)

    def test_verify_false_accepts_self_signed_origin(self):
        origin = start_origin(self, "self-signed", tls=self.self_signed)
        self.start(upstream([origin.address], tls={"verify": False}))
        self.assertTrue(self.log_count(r"<4>.*upstream up: tls.verify is false"),
                        self.daemon.log())
        r = self.get("/unverified")
        self.assertStatus(r, 200)
        self.assertIsNone(r.json()["tls"]["sni"])

    def test_ip_address_verified_without_server_name(self):
        origin = start_origin(self, "tls-ip", tls=self.ip_leaf)
        self.start(upstream([origin.address], tls={"ca": self.ca}))
        r = self.get("/by-ip")
        self.assertStatus(r, 200)
        self.assertIsNone(r.json()["tls"]["sni"], "no server_name: no SNI")

    def test_ip_address_mismatch_is_502(self):
        origin = start_origin(self, "tls", tls=self.origin_leaf)  # DNS names only
        self.start(upstream([origin.address], tls={"ca": self.ca}))
        r = self.get("/no-ip-san")
        self.assertStatus(r, 502)
        self.wait_log(r"certificate verify failed: ip address mismatch")

    def test_sessions_resumed_on_new_connections(self):
        origin = start_origin(self, "tls", tls=self.origin_leaf)
        self.start(upstream([origin.address], keepalive=0,
                            tls={"ca": self.ca, "server_name": "origin.test"}))
        resumed = []
        for i in range(4):
            r = self.get(f"/resume/{i}")
            self.assertStatus(r, 200)
            resumed.append(r.json()["tls"]["resumed"])
        self.assertEqual(origin.connections, 4, "keepalive: 0 should connect per request")
        self.assertFalse(resumed[0])
        self.assertTrue(all(resumed[1:]), f"resumed per request: {resumed}")

    def test_unreadable_or_unparsable_ca_is_refused(self):
        workdir = make_tempdir(self)
        garbage = os.path.join(workdir, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("this is not a certificate\n")
        missing = os.path.join(workdir, "missing.pem")
        for ca in (garbage, missing):
            path = os.path.join(workdir, "bad.yaml")
            with open(path, "w") as f:
                f.write(to_yaml(self.config(upstream(["127.0.0.1:9"], tls={"ca": ca}), workdir)))
            res = run([tlsedge_bin(), "check", "-c", path])
            self.assertEqual(res.returncode, 1, res)
            self.assertIn("upstream up", res.stderr)
            self.assertIn(ca, res.stderr)
            proc = subprocess.run([tlsedge_bin(), "run", "-c", path], capture_output=True,
                                  timeout=START_TIMEOUT, stdin=subprocess.DEVNULL, cwd=workdir)
            out = proc.stdout.decode() + proc.stderr.decode()
            self.assertNotEqual(proc.returncode, 0, out)
            self.assertIn(ca, out)

    def test_reload_with_unreadable_ca_is_refused(self):
        origin = start_origin(self, "tls", tls=self.origin_leaf)
        good = upstream([origin.address], tls={"ca": self.ca, "server_name": "origin.test"})
        daemon = self.start(good)
        self.assertStatus(self.get("/before"), 200)
        missing = os.path.join(self.tmp, "no-such-ca.pem")
        bad = upstream([origin.address], tls={"ca": missing, "server_name": "origin.test"})
        with open(daemon.config_path, "w") as f:
            f.write(to_yaml(self.config(bad, os.path.dirname(daemon.config_path))))
        daemon.send_signal(signal.SIGHUP)
        self.wait_log(r"reload refused")
        self.assertTrue(self.log_count(re.escape(missing)), daemon.log())
        self.assertStatus(self.get("/after"), 200)


# ---------------------------------------------------------------------------
# Balancing


class UpstreamBalanceTest(UpstreamTestBase):

    def test_round_robin_alternates(self):
        a = start_origin(self, "a")
        b = start_origin(self, "b")
        self.start(upstream([a.address, b.address]))
        seen = [self.get(f"/rr/{i}").headers.get("X-Origin") for i in range(4)]
        self.assertEqual(seen, ["a", "b", "a", "b"])

    def test_least_connections_avoids_the_busy_server(self):
        a = start_origin(self, "a")
        b = start_origin(self, "b")
        self.start(upstream([a.address, b.address], balance="least_connections"))
        # Busy for longer than four fresh TLS requests can take, even sanitized.
        slow = Background(lambda: self.get("/slow?delay_ms=4000"))
        deadline = time.monotonic() + 5
        while a.request_count() + b.request_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = "a" if a.request_count() else "b"
        idle = "b" if busy == "a" else "a"
        seen = [self.get(f"/quick/{i}").headers.get("X-Origin") for i in range(4)]
        self.assertEqual(seen, [idle] * 4, f"{busy} holds the slow request")
        r = slow.join(10)
        self.assertStatus(r, 200)
        self.assertEqual(r.headers.get("X-Origin"), busy)


# ---------------------------------------------------------------------------
# Passive health and retries


class UpstreamFailoverTest(UpstreamTestBase):

    def test_dead_server_is_retried_then_ejected(self):
        live = start_origin(self, "live")
        dead = f"127.0.0.1:{dead_port(self)}"
        self.start(upstream([dead, live.address], max_fails=1, fail_timeout="30s"))
        for i in range(6):
            r = self.get(f"/r/{i}")
            self.assertStatus(r, 200)
            self.assertEqual(r.headers.get("X-Origin"), "live")
        self.assertEqual(live.request_count(), 6)
        # One failed attempt (retried on the live server), then out of rotation.
        self.assertEqual(self.log_count(re.escape(dead) + r".*trying the next server"), 1,
                         self.daemon.log())
        self.assertEqual(self.log_count(r"<4>.*server " + re.escape(dead) + " out of rotation"), 1,
                         self.daemon.log())

    def test_ejected_server_returns_after_fail_timeout(self):
        live = start_origin(self, "live")
        back = Origin("back")
        port = back.port
        back.stop()  # a port where nothing listens, for now
        self.start(upstream([f"127.0.0.1:{port}", live.address], max_fails=1,
                            fail_timeout="1s"))
        # The ejection happens during this request: taking the time before it
        # keeps the window below inside fail_timeout however slow the request.
        ejected_at = time.monotonic()
        self.assertEqual(self.get("/first").headers.get("X-Origin"), "live")
        back = start_origin(self, "back", port=port)  # up again, same port
        # Out of rotation for fail_timeout even though it answers again.
        while time.monotonic() - ejected_at < 0.6:
            self.assertEqual(self.get("/during").headers.get("X-Origin"), "live")
        self.assertEqual(back.request_count(), 0)
        deadline = time.monotonic() + 10
        while back.request_count() == 0 and time.monotonic() < deadline:
            self.assertStatus(self.get("/after"), 200)
            time.sleep(0.05)
        self.assertGreater(back.request_count(), 0, self.daemon.log())
        self.assertGreaterEqual(time.monotonic() - ejected_at, 0.9)
        self.wait_log(r"<6>.*server 127\.0\.0\.1:%d back in rotation" % port)

    def test_every_server_down_is_502_after_trying_each_once(self):
        dead = [f"127.0.0.1:{dead_port(self)}", f"127.0.0.1:{dead_port(self)}"]
        self.start(upstream(dead))
        for i in range(3):
            r = self.get(f"/down/{i}")
            self.assertStatus(r, 502)
            self.assertEqual(r.body, b"Bad Gateway\n")
        # Both ejected after the first request, and tried anyway (each once
        # per request) rather than refusing.
        for d in dead:
            self.assertGreaterEqual(self.log_count(re.escape(d) + r": ECONNREFUSED"), 3,
                                    self.daemon.log())

    def test_post_retried_when_nothing_was_sent(self):
        live = start_origin(self, "live")
        self.start(upstream([f"127.0.0.1:{dead_port(self)}", live.address]))
        body = os.urandom(40000)
        r = self.get("/post", method="POST", body=body,
                     headers={"Content-Type": "application/octet-stream"})
        self.assertStatus(r, 200)
        echo = r.json()
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["body_sha256"], hashlib.sha256(body).hexdigest())
        self.assertEqual(self.log_count(r"trying the next server"), 1, self.daemon.log())

    def test_large_buffered_body_replayed_after_connect_timeout(self):
        # More than the 1 MiB the edge buffers while connecting: the client is
        # paused until the next server is connected, then the whole body goes.
        hole = start_helper(self, Blackhole())
        live = start_origin(self, "live")
        self.start(upstream([hole.address, live.address], connect_timeout="300ms"))
        body = os.urandom(3 << 20)
        r = self.get("/big", method="PUT", body=body)
        self.assertStatus(r, 200)
        echo = r.json()
        self.assertEqual(echo["body_len"], len(body))
        self.assertEqual(echo["body_sha256"], hashlib.sha256(body).hexdigest())
        self.assertEqual(self.log_count(r"trying the next server"), 1, self.daemon.log())

    def test_post_not_retried_once_body_bytes_went_out(self):
        reset = start_helper(self, ResetAfterRequest(body_bytes=1))
        live = start_origin(self, "live")
        self.start(upstream([reset.address, live.address]))
        body = b"x" * 4096
        r = self.get("/post", method="POST", body=body)
        self.assertStatus(r, 502)
        received = reset.connections()
        self.assertEqual(len(received), 1)
        head, _, sent_body = received[0].partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"POST /post "), head[:100])
        self.assertGreater(len(sent_body), 0)
        self.assertEqual(live.request_count(), 0, "the POST was sent twice")
        self.assertEqual(self.log_count(r"trying the next server"), 0, self.daemon.log())

    def test_stale_pooled_connection_retried_for_get_not_for_post(self):
        origin = start_origin(self, "dropper", drop_reused=True)
        self.start(upstream([origin.address]))
        self.assertStatus(self.get("/one"), 200)
        # The pooled connection is closed by the origin on the next request:
        # a GET goes again on a new connection ...
        r = self.get("/two")
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["path"], "/two")
        self.assertEqual((origin.drops, origin.connections), (1, 2))
        self.wait_log(r"retrying on a new connection")  # the log is read by another thread
        self.assertEqual(self.log_count(r"retrying on a new connection"), 1, self.daemon.log())
        # ... a POST does not (it may have been acted on).
        r = self.get("/three", method="POST", body=b"once")
        self.assertStatus(r, 502)
        self.assertEqual((origin.drops, origin.connections), (2, 2))
        self.assertEqual(self.log_count(r"retrying on a new connection"), 1, self.daemon.log())
        # A stale connection is not the server's fault: still in rotation.
        self.assertEqual(self.log_count(r"out of rotation"), 0, self.daemon.log())


# ---------------------------------------------------------------------------
# Timeouts


class UpstreamTimeoutTest(UpstreamTestBase):

    def test_read_timeout_is_504(self):
        origin = start_origin(self, "slow")
        self.start(upstream([origin.address], read_timeout="500ms"))
        t0 = time.monotonic()
        r = self.get("/slow?delay_ms=4000")
        elapsed = time.monotonic() - t0
        self.assertStatus(r, 504)
        self.assertEqual(r.body, b"Gateway Timeout\n")
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 3.0)
        self.wait_log(r"no response for \d+ ms \(read_timeout\)")

    def test_connect_timeout_then_next_server(self):
        hole = start_helper(self, Blackhole())
        live = start_origin(self, "live")
        self.start(upstream([hole.address, live.address], connect_timeout="300ms"))
        t0 = time.monotonic()
        r = self.get("/ct")
        elapsed = time.monotonic() - t0
        self.assertStatus(r, 200)
        self.assertEqual(r.headers.get("X-Origin"), "live")
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 3.0)
        self.wait_log(re.escape(hole.address) + r" timed out \(connect_timeout 300 ms\)")

    def test_connect_timeout_alone_is_504(self):
        hole = start_helper(self, Blackhole())
        self.start(upstream([hole.address], connect_timeout="300ms"))
        t0 = time.monotonic()
        r = self.get("/ct")
        self.assertStatus(r, 504)
        self.assertLess(time.monotonic() - t0, 3.0)

    def test_send_timeout_is_504(self):
        sink = start_helper(self, Sink())
        self.start(upstream([sink.address], send_timeout="500ms"))
        http_port = self.daemon.http_port
        sock = socket.create_connection(("127.0.0.1", http_port), timeout=5)
        self.addCleanup(sock.close)
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: shop.test\r\n"
                     b"Content-Length: 1073741824\r\n\r\n")
        got = bytearray()

        def read_all():
            sock2 = sock.dup()
            sock2.settimeout(15)
            try:
                while True:
                    piece = sock2.recv(65536)
                    if not piece:
                        break
                    got.extend(piece)
            except OSError:
                pass
            finally:
                sock2.close()

        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        sock.settimeout(0.05)
        chunk = b"y" * 65536
        t0 = time.monotonic()
        while not got and time.monotonic() - t0 < 15:
            try:
                sock.send(chunk)
            except (socket.timeout, TimeoutError):
                pass
            except OSError:
                break
        reader.join(timeout=10)
        self.assertTrue(bytes(got).startswith(b"HTTP/1.1 504 "), bytes(got[:200]))
        self.assertLess(time.monotonic() - t0, 12)
        self.wait_log(r"sending the request stalled for \d+ ms \(send_timeout\)")


# ---------------------------------------------------------------------------
# The keep-alive pool


class UpstreamPoolTest(UpstreamTestBase):

    def requests_on_one_client_connection(self, n):
        conn = SniHTTPSConnection("shop.test", self.port, client_context(self.ca))
        self.addCleanup(conn.close)
        for i in range(n):
            conn.request("GET", f"/pool/{i}", headers={"Host": "shop.test"})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)

    def test_keepalive_reuses_one_origin_connection(self):
        origin = start_origin(self, "pooled")
        self.start(upstream([origin.address]))
        self.requests_on_one_client_connection(5)
        self.assertEqual(origin.connections, 1)

    def test_keepalive_zero_connects_per_request(self):
        origin = start_origin(self, "unpooled")
        self.start(upstream([origin.address], keepalive=0))
        self.requests_on_one_client_connection(5)
        self.assertEqual(origin.connections, 5)
        self.assertEqual({r["connection_seq"] for r in origin.requests}, {1})
        origin.wait_until(lambda o: o.closed == 5, "closed 5 connections", timeout=5)

    def concurrent_round(self, n):
        """n requests at once, each held 400 ms by the origin so all n are in
        flight together: the pool needs n origin connections."""
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(self.get, f"/slow?delay_ms=400&i={i}") for i in range(n)]
            self.assertEqual([f.result().status for f in futures], [200] * n)

    def pool_metric(self, how):
        return value(scrape(self.daemon.metrics_address), "tlsedge_upstream_connections_total",
                     how=how)

    def test_default_pool_keeps_what_demand_opened(self):
        # keepalive: auto. 48 requests at once open 48 connections; all 48
        # stay, so the next 48 at once open none (a fixed 32 would close 16).
        origin = start_origin(self, "demand")
        self.start(upstream([origin.address]))
        self.concurrent_round(48)
        self.assertEqual(origin.connections, 48)
        self.concurrent_round(48)
        self.assertEqual((origin.connections, origin.closed), (48, 0))
        self.assertEqual((self.pool_metric("opened"), self.pool_metric("reused")), (48, 48))

    def test_fixed_keepalive_closes_beyond_it(self):
        origin = start_origin(self, "fixed")
        self.start(upstream([origin.address], keepalive=32))
        self.concurrent_round(48)
        origin.wait_until(lambda o: o.closed == 16, "closed the 16 beyond keepalive", timeout=5)
        self.concurrent_round(48)
        self.assertEqual(origin.connections, 64)
        self.assertEqual((self.pool_metric("opened"), self.pool_metric("reused")), (64, 32))

    def test_idle_timeout_closes_pooled_connections(self):
        origin = start_origin(self, "idle")
        self.start(upstream([origin.address], idle_timeout="1s"))
        # Taken before the request: the pool's idle timer starts after it,
        # so the close can come no sooner than 1 s from here.
        t0 = time.monotonic()
        self.assertStatus(self.get("/a"), 200)
        self.assertEqual((origin.connections, origin.closed), (1, 0))
        origin.wait_until(lambda o: o.closed == 1, "closed the idle connection", timeout=5)
        self.assertGreaterEqual(time.monotonic() - t0, 0.95)  # libuv's cached loop time
        self.assertStatus(self.get("/b"), 200)
        self.assertEqual(origin.connections, 2)


if __name__ == "__main__":
    unittest.main()
