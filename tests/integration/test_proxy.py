"""Reverse proxying over HTTPS: forwarded headers, hop-by-hop headers,
keep-alive, request and response bodies, 502, static routes, HSTS, 404."""

import hashlib
import os
import unittest

from common import dead_port, make_tempdir
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import header_values, pattern_bytes, start_origin
from clients import (Response, SniHTTPSConnection, client_context, curl_https, http_request,
                     https_request)

WORKERS = 2
MIB = 1 << 20
HOP_BY_HOP = ("Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade")


class ProxyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("shop", ["shop.test", "ka.test", "plain.test", "nohsts.test"])
        cls.origin = start_origin(cls, "main")
        cls.origin_ka = start_origin(cls, "keepalive")
        cls.dead_port = dead_port(cls)
        cfg = base_config(
            os.path.join(cls.tmp, "state"), workers=WORKERS,
            certificates={"shop": cls.leaf}, default_certificate="shop",
            sites=[
                site("shop", ["shop.test"], [
                    upstream_route("/", "main"),
                    respond_route("/static", 203, "static body\n", "text/x-static"),
                    upstream_route("/dead", "dead"),
                ], "shop", hsts={"max_age": 31536000, "include_subdomains": True}),
                site("ka", ["ka.test"], [upstream_route("/", "ka")], "shop"),
                site("plain", ["plain.test"], [upstream_route("/", "main")], "shop",
                     redirect_https=False, hsts={"max_age": 600}),
                site("nohsts", ["nohsts.test"],
                     [respond_route("/", 200, "no hsts\n")], "shop"),
            ],
            upstreams={"main": [cls.origin.address], "ka": [cls.origin_ka.address],
                       "dead": [f"127.0.0.1:{cls.dead_port}"]})
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.port = cls.daemon.https_port
        cls.ca = cls.certs.ca_cert

    def get(self, path="/", host="shop.test", **kw):
        return https_request(self.port, "shop.test", path, ca=self.ca,
                             headers={"Host": host, **kw.pop("headers", {})}, **kw)

    # --- forwarding ---

    def test_forwarded_headers(self):
        r = self.get("/a/b?x=1&y=%20z")
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual(echo["origin"], "main")
        self.assertEqual(echo["method"], "GET")
        self.assertEqual(echo["path"], "/a/b?x=1&y=%20z")
        self.assertEqual(header_values(echo, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(header_values(echo, "X-Forwarded-Proto"), ["https"])
        self.assertEqual(header_values(echo, "X-Forwarded-Host"), ["shop.test"])

    def test_forwarded_host_keeps_port(self):
        host = f"shop.test:{self.port}"
        echo = self.get("/p", host=host).json()
        self.assertEqual(header_values(echo, "X-Forwarded-Host"), [host])

    def test_client_cannot_spoof_forwarded_headers(self):
        echo = self.get("/spoof", headers={"X-Forwarded-Proto": "http",
                                           "X-Forwarded-Host": "evil.test",
                                           "X-Forwarded-For": "203.0.113.9"}).json()
        self.assertEqual(header_values(echo, "X-Forwarded-Proto"), ["https"])
        self.assertEqual(header_values(echo, "X-Forwarded-Host"), ["shop.test"])
        # Appending (nginx's $proxy_add_x_forwarded_for) or replacing are both
        # fine; the last hop must be the real client.
        xff = ",".join(header_values(echo, "X-Forwarded-For"))
        self.assertEqual(xff.split(",")[-1].strip(), "127.0.0.1", xff)

    def test_end_to_end_headers_forwarded(self):
        echo = self.get("/e2e", headers={"X-Custom": "value 1", "Accept": "text/x-test",
                                         "User-Agent": "integration/1"}).json()
        self.assertEqual(header_values(echo, "X-Custom"), ["value 1"])
        self.assertEqual(header_values(echo, "Accept"), ["text/x-test"])
        self.assertEqual(header_values(echo, "User-Agent"), ["integration/1"])

    def test_hop_by_hop_request_headers_stripped(self):
        r = self.get("/hop", headers={
            "Connection": "keep-alive, X-Foo",
            "X-Foo": "bar",
            "Keep-Alive": "timeout=5, max=100",
            "TE": "trailers",
            "Trailer": "X-Checksum",
            "Proxy-Connection": "keep-alive",
            "Upgrade": "websocket",
            "X-Keep": "kept",
        })
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        names = {k.lower() for k, _ in echo["headers"]}
        for h in ("X-Foo", "Keep-Alive", "TE", "Trailer", "Proxy-Connection", "Upgrade"):
            self.assertNotIn(h.lower(), names, f"{h} reached the origin: {echo['headers']}")
        # The proxy may send its own Connection header to the origin, but not
        # the client's tokens.
        for v in header_values(echo, "Connection"):
            tokens = {t.strip().lower() for t in v.split(",")}
            self.assertTrue(tokens <= {"keep-alive", "close"}, f"Connection: {v}")
        self.assertEqual(header_values(echo, "X-Keep"), ["kept"])

    def test_hop_by_hop_response_headers_stripped(self):
        r = self.get("/resp?resp_hop=1")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("X-Origin"), "main")
        self.assertIsNone(r.headers.get("X-Resp-Hop"), dict(r.headers))
        self.assertNotEqual(r.headers.get("Keep-Alive"), "timeout=99")
        for v in r.headers.get_all("Connection") or []:
            self.assertNotIn("x-resp-hop", v.lower())

    # --- keep-alive ---

    def test_keep_alive_both_sides(self):
        conn = SniHTTPSConnection("ka.test", self.port, client_context(self.ca))
        self.addCleanup(conn.close)
        n = 12
        first_sock = local = None
        for i in range(n):
            conn.request("GET", f"/ka/{i}", headers={"Host": "ka.test"})
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 200)
            self.assertNotIn("close", (resp.headers.get("Connection") or "").lower(),
                             f"request {i}: tlsedge closed the keep-alive connection")
            echo = Response(resp.status, "", resp.headers, body).json()
            self.assertEqual(echo["path"], f"/ka/{i}")
            self.assertIsNotNone(conn.sock, f"request {i}: connection closed after response")
            if first_sock is None:
                first_sock, local = conn.sock, conn.sock.getsockname()
            self.assertIs(conn.sock, first_sock, f"request {i}: new client connection")
            self.assertEqual(conn.sock.getsockname(), local)
        records = self.origin_ka.wait_for_requests(n)
        conn_ids = {r["connection_id"] for r in records}
        self.assertLessEqual(self.origin_ka.connections, WORKERS,
                             f"{n} requests on one client connection opened "
                             f"{self.origin_ka.connections} origin connections")
        self.assertLessEqual(len(conn_ids), WORKERS)
        self.assertGreater(max(r["connection_seq"] for r in records), 1,
                           "no origin connection carried more than one request")

    # --- bodies ---

    def test_post_1mib_content_length(self):
        body = pattern_bytes(MIB, 11)
        r = self.get("/upload", method="POST", body=body,
                     headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["body_len"], MIB)
        self.assertEqual(echo["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_post_1mib_chunked(self):
        body = pattern_bytes(MIB, 12)
        chunks = [body[i:i + 65536 - 7] for i in range(0, len(body), 65536 - 7)]
        r = self.get("/upload-chunked", method="POST", body=iter(chunks), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual(echo["body_len"], MIB)
        self.assertEqual(echo["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_post_with_curl(self):
        path = os.path.join(self.tmp, "upload.bin")
        body = pattern_bytes(MIB, 13)
        with open(path, "wb") as f:
            f.write(body)
        res, status, out = curl_https(self.port, "shop.test", "/curl-upload", ca=self.ca,
                                      verbose=False,
                                      extra=["--data-binary", f"@{path}", "-H",
                                             "Content-Type: application/octet-stream"])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(status, 200, out)
        echo = Response(status, "", {}, out.encode()).json()
        self.assertEqual(echo["body_len"], MIB)
        self.assertEqual(echo["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_large_response_10mib(self):
        n = 10 * MIB
        r = self.get(f"/bytes?n={n}&seed=21")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), n)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                         hashlib.sha256(pattern_bytes(n, 21)).hexdigest())

    def test_chunked_and_close_delimited_responses_reach_client_whole(self):
        # Both are re-framed as chunked for an HTTP/1.1 client, so the client
        # connection stays open across them: all on one connection.
        conn = SniHTTPSConnection("shop.test", self.port, client_context(self.ca))
        first_sock = None
        try:
            for i, framing in enumerate(["chunked", "close", "chunked", "length"]):
                n = 300000 + i
                conn.request("GET", f"/bytes?n={n}&seed={i}&framing={framing}",
                             headers={"Host": "shop.test"})
                r = conn.getresponse()
                body = r.read()
                self.assertEqual(r.status, 200, framing)
                self.assertEqual(body, pattern_bytes(n, i), framing)
                expect_chunked = framing != "length"
                self.assertEqual(r.getheader("Transfer-Encoding") == "chunked", expect_chunked,
                                 (framing, r.getheaders()))
                self.assertIsNone(r.getheader("Connection"), framing)
                first_sock = first_sock or conn.sock
                self.assertIs(conn.sock, first_sock, f"{framing}: the client connection was replaced")
        finally:
            conn.close()

    def test_large_response_10mib_curl(self):
        n = 10 * MIB
        out = os.path.join(self.tmp, "download.bin")
        res, status, _ = curl_https(self.port, "shop.test", f"/bytes?n={n}&seed=22",
                                    ca=self.ca, verbose=False, extra=["-o", out])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(status, 200)
        with open(out, "rb") as f:
            got = f.read()
        self.assertEqual(len(got), n)
        self.assertEqual(hashlib.sha256(got).digest(),
                         hashlib.sha256(pattern_bytes(n, 22)).digest())

    # --- errors and static routes ---

    def test_502_when_upstream_unreachable(self):
        r = self.get("/dead/x")
        self.assertEqual(r.status, 502, r)
        # The daemon is still healthy afterwards.
        self.assertEqual(self.get("/after-502").status, 200)

    def test_static_respond_route(self):
        before = self.origin.request_count()
        for path in ("/static", "/static/deeper/x?q=1", "/staticx"):
            r = self.get(path)
            self.assertEqual(r.status, 203, path)
            self.assertEqual(r.body, b"static body\n", path)
            self.assertEqual(r.headers.get("Content-Type"), "text/x-static")
            self.assertEqual(r.headers.get("Content-Length"), str(len(b"static body\n")))
        self.assertEqual(self.origin.request_count(), before, "a respond route reached the origin")
        # A shorter path is not under /static: proxied.
        self.assertEqual(self.get("/stati").json()["path"], "/stati")

    def test_unknown_host_404(self):
        before = self.origin.request_count()
        r = self.get("/", host="unknown.test")
        self.assertEqual(r.status, 404)
        self.assertEqual(self.origin.request_count(), before)

    # --- HSTS ---

    def test_hsts_on_https(self):
        self.assertEqual(self.get("/h").headers.get_all("Strict-Transport-Security"),
                         ["max-age=31536000; includeSubDomains"])
        # Static responses and errors from a site with HSTS carry it too.
        self.assertEqual(self.get("/static").headers.get("Strict-Transport-Security"),
                         "max-age=31536000; includeSubDomains")
        self.assertEqual(self.get("/h", host="plain.test").headers.get("Strict-Transport-Security"),
                         "max-age=600")

    def test_no_hsts_without_config(self):
        r = self.get("/", host="nohsts.test")
        self.assertEqual((r.status, r.body), (200, b"no hsts\n"))
        self.assertIsNone(r.headers.get("Strict-Transport-Security"))

    def test_no_hsts_on_plain_http(self):
        http_port = self.daemon.http_port
        r = http_request(http_port, "/h", headers={"Host": "plain.test"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["origin"], "main")
        self.assertIsNone(r.headers.get("Strict-Transport-Security"))
        # Nor on a redirect from a site that has HSTS.
        r = http_request(http_port, "/h", headers={"Host": "shop.test"})
        self.assertEqual(r.status, 308)
        self.assertIsNone(r.headers.get("Strict-Transport-Security"))


if __name__ == "__main__":
    unittest.main()
