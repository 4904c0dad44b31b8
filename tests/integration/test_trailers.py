"""Trailer fields relayed both ways (issue 18): a chunked HTTP/1.1 request's
trailers and an HTTP/2 request's trailing HEADERS reach the origin in its
chunked request; the origin's chunked response trailers reach an HTTP/1.1
client in the last chunk and an HTTP/2 client as a trailing HEADERS frame
that ends the stream (gRPC's grpc-status travels so). Fields a recipient
must not take from a trailer (Host, Set-Cookie, Content-Length, ...) are
dropped in both directions. A real origin speaking raw HTTP/1.1, a raw TLS
client, and Python's h2."""

import os
import unittest

from clients import TlsStream
from common import SockReader, make_tempdir
from config import base_config, site, upstream_route
from daemon import start_daemon
from h2client import H2Client
from origin import start_raw_origin
from pki import Certs


def read_chunked(reader):
    """The body and the raw trailer section (b"" if none) of a chunked body."""
    body = b""
    while True:
        size = int(reader.read_until(b"\r\n").split(b";")[0], 16)
        if size == 0:
            break
        body += reader.recv_exact(size)
        assert reader.recv_exact(2) == b"\r\n"
    trailers = b""
    while True:
        line = reader.read_until(b"\r\n")
        if line == b"\r\n":
            return body, trailers
        trailers += line


class TrailersTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.ca = certs.ca_cert
        leaf = certs.leaf("shop", ["shop.test"])
        cls.origin = start_raw_origin(cls, "raw", {"/echo": cls.handle})
        cfg = base_config(os.path.join(cls.tmp, "state"), workers=1,
                          certificates={"shop": leaf}, upstreams={"raw": [cls.origin.address]},
                          sites=[site("shop", ["shop.test"], [upstream_route("/", "raw")], "shop")])
        cls.daemon = start_daemon(cls, cls.tmp, cfg)

    @classmethod
    def handle(cls, conn, reader, head):
        body, trailers = read_chunked(reader)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
                     b"Content-Type: text/plain\r\n\r\n"
                     b"5\r\nhello\r\n0\r\nGrpc-Status: 0\r\nX-Checksum: c0ffee\r\n"
                     b"Set-Cookie: stolen=1\r\nContent-Length: 99\r\n\r\n")
        cls.origin.set_result(head.header("x-test"), (body, trailers))

    def test_http11_both_ways(self):
        s = TlsStream(self.daemon.https_port, "shop.test", ca=self.ca)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: shop.test\r\nX-Test: h1\r\nTE: trailers\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                  b"3\r\nabc\r\n0\r\nX-Request-Sum: 42\r\nHost: evil.test\r\n\r\n")
        reader = SockReader(s.recv)
        head = reader.read_until(b"\r\n\r\n")
        self.assertIn(b"200 OK", head)
        self.assertIn(b"transfer-encoding: chunked", head.lower())
        body, trailers = read_chunked(reader)
        s.close()
        self.assertEqual(body, b"hello")
        self.assertIn(b"Grpc-Status: 0\r\n", trailers)
        self.assertIn(b"X-Checksum: c0ffee\r\n", trailers)
        self.assertNotIn(b"stolen", trailers)
        self.assertNotIn(b"Content-Length", trailers)
        got_body, got_trailers = self.origin.wait_result("h1")
        self.assertEqual(got_body, b"abc")
        self.assertEqual(got_trailers, b"X-Request-Sum: 42\r\n")

    def test_http2_both_ways(self):
        c = H2Client(self.daemon.https_port, "shop.test", ca=self.ca)
        try:
            self.assertEqual(c.alpn, "h2")
            sid = c.request("/echo", authority="shop.test", method="POST",
                            headers=[("x-test", "h2"), ("te", "trailers")], body=b"abcd",
                            end_stream=False)
            c.conn.send_headers(sid, [("x-request-sum", "43"), ("authorization", "no")],
                                end_stream=True)
            c.flush()
            r = c.wait_stream(sid)
        finally:
            c.close()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.ended)
        self.assertEqual(r.body, b"hello")
        self.assertEqual(dict(r.trailers), {"grpc-status": "0", "x-checksum": "c0ffee"})
        got_body, got_trailers = self.origin.wait_result("h2")
        self.assertEqual(got_body, b"abcd")
        self.assertEqual(got_trailers, b"x-request-sum: 43\r\n")


if __name__ == "__main__":
    unittest.main()
