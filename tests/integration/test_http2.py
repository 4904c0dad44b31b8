"""HTTP/2 to clients (issue 18): ALPN, the same request path as HTTP/1.1
(routing, static answers, proxying with the forwarded headers, bodies both
ways), 421 for a name the connection's certificate does not cover, the access
log's protocol, GOAWAY on reload. Real clients: curl --http2, h2load, and
Python's h2 (h2client.py)."""

import hashlib
import json
import os
import re
import signal
import subprocess
import time
import unittest

from common import make_tempdir, require_tool, run
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import header_values, pattern_sha256, start_origin, start_raw_origin
from clients import SniHTTPSConnection, client_context, curl, tls_handshake
from h2client import H2Client, H2Response
from scrape import scrape, value

import h2.events  # noqa: E402  (h2client puts Debian's python3-h2 on the path)

MIB = 1 << 20


# A static answer larger than a few DATA frames: sent from memory, whole.
BIG_BODY = "b" * 300_000


class Http2Test(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf_a = cls.certs.leaf("a", ["a.test", "*.wild.test", "::1"])
        cls.leaf_b = cls.certs.leaf("b", ["b.test"])
        cls.origin = start_origin(cls, "main")

        def early_hints(conn, reader, head):
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\nok")
        cls.raw = start_raw_origin(cls, "raw", {"/early": early_hints})
        cls.log_path = os.path.join(cls.tmp, "access.log")
        cfg = base_config(
            os.path.join(cls.tmp, "state"), workers=1,
            certificates={"a": cls.leaf_a, "b": cls.leaf_b}, default_certificate="a",
            sites=[
                site("a", ["a.test", "x.wild.test"], [
                    respond_route("/static", 203, "static body\n", "text/x-static"),
                    respond_route("/big", 200, BIG_BODY),
                    upstream_route("/early", "raw"),
                    upstream_route("/", "main"),
                ], "a", hsts={"max_age": 600}),
                site("b", ["b.test"], [respond_route("/", 200, "b\n")], "b"),
            ],
            upstreams={"main": [cls.origin.address], "raw": [cls.raw.address]})
        cfg["access_log"] = {"path": cls.log_path}
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.port = cls.daemon.https_port
        cls.ca = cls.certs.ca_cert

    def metric(self, name, **labels):
        return value(scrape(self.daemon.metrics_address), name, **labels)

    def client(self, sni="a.test", **kw):
        c = H2Client(self.port, sni, ca=self.ca, **kw)
        self.addCleanup(c.close)
        self.assertEqual(c.alpn, "h2")
        return c

    def curl_h2(self, path, host="a.test", extra=()):
        res = curl(["--cacert", self.ca, "--http2", "--resolve", f"{host}:{self.port}:127.0.0.1",
                    "-w", "\n%{http_version} %{http_code}", *extra,
                    f"https://{host}:{self.port}{path}"])
        body, _, tail = res.stdout.rpartition("\n")
        return res, tail, body

    # --- negotiation ---

    def test_alpn_prefers_h2_then_http11(self):
        _, alpn, _, _ = tls_handshake(self.port, "a.test", ca=self.ca, alpn=("http/1.1", "h2"))
        self.assertEqual(alpn, "h2")
        _, alpn, _, _ = tls_handshake(self.port, "a.test", ca=self.ca, alpn=("http/1.1",))
        self.assertEqual(alpn, "http/1.1")

    # --- one request path ---

    def test_curl_static_route(self):
        res, tail, body = self.curl_h2("/static")
        self.assertEqual(tail, "2 203", res.stderr)
        self.assertEqual(body, "static body\n")

    def test_static_answer_fields(self):
        r = self.client().get("/static", authority="a.test")
        self.assertEqual(r.status, 203)
        self.assertEqual(r.body, b"static body\n")
        self.assertEqual(r.header("content-type"), ["text/x-static"])
        self.assertEqual(r.header("content-length"), ["12"])
        self.assertEqual(r.header("strict-transport-security"), ["max-age=600"])
        self.assertEqual(r.header("server"), ["tlsedge"])

    def test_head_has_no_body(self):
        r = self.client().get("/static", authority="a.test", method="HEAD")
        self.assertEqual(r.status, 203)
        self.assertEqual(r.body, b"")
        self.assertTrue(r.ended)

    def test_proxied_with_forwarded_headers(self):
        c = self.client()
        r = c.get("/p?q=1", authority="a.test", headers=[
            ("x-forwarded-for", "203.0.113.9"), ("cookie", "a=1"), ("cookie", "b=2"),
            ("x-custom", "v")])
        self.assertEqual(r.status, 200, r.headers)
        echo = json.loads(r.body)
        self.assertEqual(echo["path"], "/p?q=1")
        self.assertEqual(header_values(echo, "Host"), ["a.test"])
        self.assertEqual(header_values(echo, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(header_values(echo, "X-Forwarded-Proto"), ["https"])
        self.assertEqual(header_values(echo, "X-Custom"), ["v"])
        # RFC 9113 8.2.3: split cookies reach HTTP/1.1 as one field.
        self.assertEqual(header_values(echo, "Cookie"), ["a=1; b=2"])
        self.assertEqual(r.header("x-origin"), ["main"])

    def test_early_hints_are_relayed(self):
        r = self.client().get("/early", authority="a.test")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.interim), 1, r.interim)
        interim = dict(r.interim[0])
        self.assertEqual(interim[":status"], "103")
        self.assertEqual(interim["link"], "</s.css>; rel=preload")
        self.assertEqual(r.header("x-final"), ["1"])
        self.assertEqual(r.body, b"ok")

    def test_many_streams_on_one_connection(self):
        c = self.client()
        sids = [c.request(f"/s{i}", authority="a.test") for i in range(50)]
        c.wait(lambda: all(c.responses[s].ended for s in sids))
        self.assertEqual([c.responses[s].status for s in sids], [200] * 50)
        paths = sorted(json.loads(c.responses[s].body)["path"] for s in sids)
        self.assertEqual(paths, sorted(f"/s{i}" for i in range(50)))

    def test_streams_without_priority_share_the_connection(self):
        # RFC 9218 urgency 3, incremental: two answers ready at once go
        # out interleaved, not the older first and whole.
        c = self.client()
        order = []
        handle = c.handle

        def record(event):
            if isinstance(event, h2.events.DataReceived):
                order.append(event.stream_id)
            handle(event)
        c.handle = record
        first = c.request("/big", authority="a.test")
        second = c.request("/big", authority="a.test")
        c.wait(lambda: c.responses[first].ended and c.responses[second].ended)
        self.assertEqual([len(c.responses[s].body) for s in (first, second)],
                         [len(BIG_BODY)] * 2)
        self.assertLess(order.index(second), len(order) - order[::-1].index(first) - 1,
                        "the second answer began only after the first was whole")

    def test_request_body_with_and_without_length(self):
        c = self.client()
        body = os.urandom(300_000)
        for headers in ([("content-length", str(len(body)))], []):
            r = c.get("/upload", authority="a.test", method="POST", headers=headers, body=body)
            self.assertEqual(r.status, 200, (headers, r.headers))
            echo = json.loads(r.body)
            self.assertEqual(echo["body_len"], len(body))

    def test_large_response_streams(self):
        c = self.client()
        r = c.get(f"/bytes?n={8 * MIB}&seed=3", authority="a.test")
        self.assertEqual(r.status, 200)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(8 * MIB, 3))

    def test_connections_idle_past_their_trim_serve_on(self):
        # Idle for half a second (ConnectionTimer::kTrimAfter), a connection
        # gives back its buffers: the TLS memory BIOs and, over HTTP/2,
        # nghttp2's frame buffer and stream map. The next requests on the
        # same connection fault in fresh ones: a large header block, a
        # body each way, over both protocols.
        h2c = self.client()
        h1c = SniHTTPSConnection("a.test", self.port, client_context(self.ca))
        self.addCleanup(h1c.close)
        for i in range(2):
            time.sleep(0.8)
            body = os.urandom(100_000)
            r = h2c.get("/upload", authority="a.test", method="POST",
                        headers=[("x-big", "v" * 6000)], body=body)
            self.assertEqual((r.status, json.loads(r.body)["body_len"]), (200, len(body)), i)
            r = h2c.get(f"/bytes?n={300_000}&seed=5", authority="a.test")
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(300_000, 5))
            h1c.request("POST", "/upload", body=body, headers={"X-Big": "v" * 6000})
            r1 = h1c.getresponse()
            self.assertEqual((r1.status, json.loads(r1.read())["body_len"]), (200, len(body)), i)
            h1c.request("GET", f"/bytes?n={300_000}&seed=5")
            r1 = h1c.getresponse()
            self.assertEqual(hashlib.sha256(r1.read()).hexdigest(), pattern_sha256(300_000, 5))
        self.assertIsNone(h2c.goaway)

    # --- coalescing (RFC 9113 9.1.1) ---

    def test_name_the_certificate_covers_is_served(self):
        # x.wild.test is under a.test's *.wild.test: a browser may reuse the
        # connection for it.
        r = self.client().get("/static", authority="x.wild.test")
        self.assertEqual(r.status, 203)

    def test_name_the_certificate_does_not_cover_is_421(self):
        before = self.metric("tlsedge_misdirected_requests_total")
        c = self.client()
        r = c.get("/", authority="b.test")
        self.assertEqual(r.status, 421)
        # The connection goes on for the names it covers.
        self.assertEqual(c.get("/static", authority="a.test").status, 203)
        # On b.test's own connection b.test is served.
        self.assertEqual(self.client(sni="b.test").get("/", authority="b.test").status, 200)
        self.assertEqual(self.metric("tlsedge_misdirected_requests_total"), before + 1)

    def test_ip_literal_the_certificate_covers_is_not_misdirected(self):
        # a.test's certificate has the iPAddress ::1, whatever way the
        # literal is written; ::2 it does not cover.
        before = self.metric("tlsedge_misdirected_requests_total")
        c = self.client()
        r = c.get("/static", authority="[0:0::1]")
        self.assertNotIn(r.status, (421, None), r.headers)
        self.assertEqual(self.metric("tlsedge_misdirected_requests_total"), before)
        self.assertEqual(c.get("/static", authority="[::2]").status, 421)
        self.assertEqual(self.metric("tlsedge_misdirected_requests_total"), before + 1)

    def test_userinfo_in_authority_is_refused(self):
        r = self.client().get("/static", authority="evil@a.test")
        self.assertTrue(r.status == 400 or r.reset is not None, (r.status, r.reset))

    # --- refusals are per stream ---

    def test_connect_is_refused(self):
        c = self.client(validate=False)
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "a.test:443")],
                            end_stream=False)
        c.responses[sid] = H2Response()
        c.flush()
        r = c.wait_stream(sid)
        self.assertTrue(r.status == 501 or r.reset is not None, (r.status, r.reset))
        self.assertEqual(c.get("/static", authority="a.test").status, 203)

    # --- log and metrics ---

    def test_access_log_says_http2(self):
        r = self.client().get("/static?log=h2", authority="a.test")
        records = []
        for _ in range(100):
            with open(self.log_path) as f:
                records = [json.loads(l) for l in f if "log=h2" in l]
            if records:
                break
            __import__("time").sleep(0.05)
        self.assertEqual(len(records), 1)
        self.assertEqual(records[0]["protocol"], "HTTP/2")
        self.assertEqual(records[0]["status"], 203)
        # The body, and the head as "name: value\r\n" lines before HPACK.
        head = sum(len(n) + len(v) + 4 for n, v in r.headers)
        self.assertEqual(records[0]["bytes_out"], len(r.body) + head, r.headers)

    def test_requests_counted_by_protocol(self):
        before = self.metric("tlsedge_http_requests_by_protocol_total", protocol="HTTP/2")
        c = self.client()
        for _ in range(3):
            c.get("/static", authority="a.test")
        after = self.metric("tlsedge_http_requests_by_protocol_total", protocol="HTTP/2")
        self.assertEqual(after, before + 3)

    # --- h2load ---

    def test_h2load_has_no_failed_streams(self):
        h2load = require_tool("h2load")
        res = run([h2load, "-n", "2000", "-c", "4", "-m", "10", "--connect-to",
                   f"127.0.0.1:{self.port}", f"https://a.test:{self.port}/static"], timeout=120)
        self.assertIn("2000 succeeded, 0 failed, 0 errored", res.stdout, res.stdout + res.stderr)


class Http2OffTest(unittest.TestCase):

    def test_setting_turns_h2_off(self):
        tmp = make_tempdir(self)
        certs = Certs(os.path.join(tmp, "pki"))
        leaf = certs.leaf("a", ["a.test"])
        cfg = base_config(os.path.join(tmp, "state"), workers=1, certificates={"a": leaf},
                          sites=[site("a", ["a.test"], [respond_route("/", 200, "a\n")], "a")])
        cfg["tls"] = {"http2": False}
        daemon = start_daemon(self, tmp, cfg)
        _, alpn, _, _ = tls_handshake(daemon.https_port, "a.test", ca=certs.ca_cert,
                                      alpn=("h2", "http/1.1"))
        self.assertEqual(alpn, "http/1.1")


class Http2ReloadTest(unittest.TestCase):

    def test_reload_sends_goaway_and_the_stream_in_flight_finishes(self):
        tmp = make_tempdir(self)
        certs = Certs(os.path.join(tmp, "pki"))
        leaf = certs.leaf("a", ["a.test"])
        origin = start_origin(self, "slow")
        cfg = base_config(os.path.join(tmp, "state"), workers=1, certificates={"a": leaf},
                          sites=[site("a", ["a.test"], [upstream_route("/", "slow")], "a")],
                          upstreams={"slow": [origin.address]})
        daemon = start_daemon(self, tmp, cfg)
        # nghttp (not Python's h2, which ignores frames after a GOAWAY) prints
        # every frame it receives.
        nghttp = subprocess.Popen(
            [require_tool("nghttp"), "-v", "--no-verify-peer",
             f"https://127.0.0.1:{daemon.https_port}/slow?delay_ms=1500",
             "-H", ":authority: a.test"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        def stop():
            if nghttp.poll() is None:
                nghttp.kill()
                nghttp.communicate()
        self.addCleanup(stop)
        origin.wait_until(lambda o: o.connections >= 1, "the origin to get the request")
        os.kill(daemon.proc.pid, signal.SIGHUP)
        out, _ = nghttp.communicate(timeout=30)
        self.assertEqual(nghttp.returncode, 0, out)
        # Two GOAWAYs came while the stream was in flight (RFC 9113 6.8):
        # the notice naming no stream, with a PING, then, once the PING came
        # back, the final one naming the stream as processed. The stream then
        # got its whole answer.
        goaways = list(re.finditer(
            r"recv GOAWAY frame .*\n\s*\(last_stream_id=(\d+), error_code=NO_ERROR", out))
        self.assertEqual(len(goaways), 2, out)
        stream = re.search(r"send HEADERS frame <.*stream_id=(\d+)>", out).group(1)
        self.assertEqual([g.group(1) for g in goaways], [str(2**31 - 1), stream])
        ping_ack = re.search(r"send PING frame <[^>]*flags=0x01", out)
        self.assertIsNotNone(ping_ack, out)
        self.assertLess(goaways[0].start(), ping_ack.start())
        self.assertLess(ping_ack.start(), goaways[1].start())
        self.assertLess(goaways[1].start(), out.index(":status: 200"))
        self.assertRegex(out, r"recv DATA frame .*\n\s*; END_STREAM")
        self.assertEqual(origin.paths(), ["/slow?delay_ms=1500"])


if __name__ == "__main__":
    unittest.main()
