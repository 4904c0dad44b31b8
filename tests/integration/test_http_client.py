"""http::HttpClient (the ACME client's HTTP) against a real origin: Python's
http.server over TLS with a test CA, through tests/tools/http_fetch.cc."""

import http.server
import json
import os
import socket
import ssl
import threading
import unittest

import pki
from common import add_cleanup, dead_port, have_ipv6_loopback, make_tempdir, run
from origin import start_origin


class _V6Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"path": self.path, "client": self.client_address[0]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _V6Server(http.server.HTTPServer):
    address_family = socket.AF_INET6


def start_v6_tls_server(testcase, leaf):
    """A TLS HTTP server on [::1]:<port 0> (stopped by the test's cleanups)."""
    server = _V6Server(("::1", 0), _V6Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf.cert, leaf.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    add_cleanup(testcase, stop)
    return server.server_address[1]


def fetch(*args, timeout=30):
    tool = os.environ.get("TLSEDGE_HTTP_FETCH", "")
    if not tool:
        raise AssertionError("TLSEDGE_HTTP_FETCH is not set: run through ctest")
    res = run([tool, *map(str, args)], timeout=timeout, check=True)
    return [json.loads(line) for line in res.stdout.splitlines()]


class HttpClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = make_tempdir(cls)
        cls.certs = pki.Certs(os.path.join(d, "pki"))
        cls.leaf = cls.certs.leaf("origin", ["localhost", "127.0.0.1"])
        cls.other = cls.certs.leaf("other", ["other.test"])
        cls.origin = start_origin(cls, "tls", tls=cls.leaf)
        cls.wrong = start_origin(cls, "wrong", tls=cls.other)
        cls.plain = start_origin(cls, "plain")

    def url(self, host, path, origin=None):
        return f"https://{host}:{(origin or self.origin).port}{path}"

    def test_get_verified_by_name_and_address(self):
        out = fetch("--root", self.certs.ca_cert, self.url("localhost", "/a?x=1"),
                    self.url("127.0.0.1", "/b"))
        for line, path, sni in ((out[0], "/a?x=1", "localhost"), (out[1], "/b", None)):
            self.assertNotIn("error", line)
            self.assertEqual(line["status"], 200)
            record = json.loads(line["body"])
            self.assertEqual(record["path"], path)
            self.assertEqual(record["tls"]["sni"], sni)
            self.assertEqual(record["tls"]["alpn"], "http/1.1")

    @unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6(self):
        leaf = self.certs.leaf("v6", ["::1"])
        port = start_v6_tls_server(self, leaf)
        out = fetch("--root", self.certs.ca_cert, f"https://[::1]:{port}/six")
        self.assertNotIn("error", out[0])
        self.assertEqual(json.loads(out[0]["body"]), {"path": "/six", "client": "::1"})

    def test_post_body_and_headers(self):
        out = fetch("--root", self.certs.ca_cert, "-X", "POST", "-d", '{"a":1}',
                    "-H", "Content-Type:application/jose+json", self.url("localhost", "/p"))
        record = json.loads(out[0]["body"])
        self.assertEqual(record["method"], "POST")
        self.assertEqual(record["body"], '{"a":1}')
        headers = {k.lower(): v for k, v in record["headers"]}
        self.assertEqual(headers["content-type"], "application/jose+json")
        self.assertEqual(headers["host"], f"localhost:{self.origin.port}")

    def test_framings(self):
        out = fetch("--root", self.certs.ca_cert,
                    self.url("localhost", "/c?framing=chunked"),
                    self.url("localhost", "/d?framing=close"),
                    f"http://127.0.0.1:{self.plain.port}/e?status=404")
        self.assertEqual(json.loads(out[0]["body"])["path"], "/c?framing=chunked")
        self.assertEqual(json.loads(out[1]["body"])["path"], "/d?framing=close")
        self.assertEqual(out[2]["status"], 404)

    def test_untrusted_and_mismatched_certificates(self):
        out = fetch(self.url("localhost", "/"))  # no roots given: the test CA is unknown
        self.assertIn(f"TLS with localhost:{self.origin.port}: certificate verify failed: ",
                      out[0]["error"])
        out = fetch("--root", self.certs.ca_cert, self.url("localhost", "/", self.wrong))
        self.assertIn("certificate verify failed: Hostname mismatch", out[0]["error"])

    def test_connection_refused(self):
        port = dead_port(self)
        out = fetch(f"https://127.0.0.1:{port}/")
        self.assertEqual(out[0]["error"], f"connect to 127.0.0.1:{port}: connection refused")

    def test_bounded_size_and_timeout(self):
        out = fetch("--root", self.certs.ca_cert, "--max-bytes", "1000", "--timeout-ms", "500",
                    self.url("localhost", "/bytes?n=100000&seed=1"),
                    self.url("localhost", "/slow?delay_ms=3000"))
        self.assertIn("is larger than 1000 bytes", out[0]["error"])
        self.assertIn("timed out after 500 ms", out[1]["error"])

    def test_bad_url(self):
        out = fetch("ftp://x/")
        self.assertIn("only http:// and https://", out[0]["error"])


if __name__ == "__main__":
    unittest.main()
