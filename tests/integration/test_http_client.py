"""http::HttpClient (the ACME and etcd clients' HTTP) against real origins:
Python's http.server over TLS with a test CA (client certificates
required by one), scripted raw origins for streamed bodies, through
tests/tools/http_fetch.cc (HttpClient, or BlockingHttpClient with
--blocking)."""

import http.server
import json
import os
import queue
import socket
import ssl
import subprocess
import threading
import time
import unittest

import pki
from common import add_cleanup, dead_port, have_ipv6_loopback, make_tempdir, run
from origin import start_origin, start_raw_origin


class _TlsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        record = {"path": self.path, "client": self.client_address[0]}
        peer = self.connection.getpeercert()
        if peer:  # a verified client certificate: its subject's CN
            record["peer"] = dict(x[0] for x in peer["subject"]).get("commonName")
        body = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _V6Server(http.server.HTTPServer):
    address_family = socket.AF_INET6


def start_tls_server(testcase, leaf, host="::1", client_ca=None):
    """A TLS HTTP server on host:<port 0> (stopped by the test's cleanups);
    with `client_ca`, a client certificate it issued is required."""
    server = (_V6Server if ":" in host else http.server.HTTPServer)((host, 0), _TlsHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf.cert, leaf.key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
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


def tool():
    path = os.environ.get("TLSEDGE_HTTP_FETCH", "")
    if not path:
        raise AssertionError("TLSEDGE_HTTP_FETCH is not set: run through ctest")
    return path


def fetch(*args, timeout=30, env=None):
    res = run([tool(), *map(str, args)], timeout=timeout, check=True, env=env)
    return [json.loads(line) for line in res.stdout.splitlines()]


class LiveFetch:
    """The tool running, its stdout lines read as they come (a reader
    thread): for streams, whose pieces are seen before they end. Killed by
    PID in the test's cleanups if still running."""

    def __init__(self, testcase, *args):
        self.proc = subprocess.Popen([tool(), *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        add_cleanup(testcase, self._stop)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)  # EOF

    def next_line(self, timeout=10):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output line from the tool after {timeout}s")
        if line is None:
            raise AssertionError("the tool ended early: " + self.proc.stderr.read().decode())
        return line

    def rest(self, timeout=10):
        """Every remaining line, once the tool has exited (status 0)."""
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=timeout)
        self.assert_exit_ok()
        out = []
        while (line := self.lines.get_nowait()) is not None:
            out.append(line)
        return out

    def assert_exit_ok(self):
        if self.proc.returncode != 0:
            raise AssertionError(f"tool exit {self.proc.returncode}: "
                                 + self.proc.stderr.read().decode())

    def _stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


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
        port = start_tls_server(self, leaf)
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


    def test_per_request_timeout_overrides_the_clients(self):
        out = fetch("--root", self.certs.ca_cert, "--request-timeout-ms", "300",
                    self.url("localhost", "/slow?delay_ms=3000"))
        self.assertIn("timed out after 300 ms", out[0]["error"])  # the client's is 30 s
        out = fetch("--root", self.certs.ca_cert, "--timeout-ms", "200",
                    "--request-timeout-ms", "5000", self.url("localhost", "/slow?delay_ms=600"))
        self.assertEqual(out[0]["status"], 200)  # past the client's 200 ms

    def test_blocking_fetch_from_two_threads(self):
        out = fetch("--root", self.certs.ca_cert, "--blocking", "threads",
                    self.url("localhost", "/one?delay_ms=200"), self.url("127.0.0.1", "/two"))
        self.assertEqual([json.loads(line["body"])["path"] for line in out],
                         ["/one?delay_ms=200", "/two"])

    def test_blocking_fetch_on_every_thread_of_libuvs_pool(self):
        # Both pool threads are in fetch() (one waits for the other's turn):
        # a name resolved on the pool would wait for a thread forever.
        env = dict(os.environ, UV_THREADPOOL_SIZE="2")
        out = fetch("--root", self.certs.ca_cert, "--blocking", "pool",
                    self.url("localhost", "/p1"), self.url("localhost", "/p2"), env=env,
                    timeout=20)
        self.assertEqual([json.loads(line["body"])["path"] for line in out], ["/p1", "/p2"])


class ClientCertificateTest(unittest.TestCase):
    """mTLS: a Python ssl server that requires a client certificate of the test CA."""

    @classmethod
    def setUpClass(cls):
        d = make_tempdir(cls)
        cls.certs = pki.Certs(os.path.join(d, "pki"))
        cls.client = cls.certs.leaf("client", ["client.test"], eku="clientAuth")
        cls.other = cls.certs.leaf("other-client", ["other.test"], eku="clientAuth")

    def setUp(self):
        leaf = self.certs.leaf("server", ["localhost"])
        self.port = start_tls_server(self, leaf, host="127.0.0.1", client_ca=self.certs.ca_cert)
        self.url = f"https://localhost:{self.port}/who"

    def test_presented_when_the_server_requires_one(self):
        out = fetch("--root", self.certs.ca_cert, "--client-cert", self.client.cert,
                    "--client-key", self.client.key, self.url)
        self.assertNotIn("error", out[0])
        self.assertEqual(json.loads(out[0]["body"]), {"path": "/who", "client": "127.0.0.1",
                                                      "peer": "client.test"})

    def test_without_one_the_server_refuses(self):
        out = fetch("--root", self.certs.ca_cert, "--timeout-ms", "5000", self.url)
        self.assertIn(f"localhost:{self.port}", out[0]["error"])

    def test_a_key_that_does_not_match_is_refused_by_create(self):
        res = run([tool(), "--client-cert", self.client.cert, "--client-key", self.other.key,
                   self.url], timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertEqual(res.stdout, "")
        self.assertIn(f"client certificate {self.client.cert}: the public key of its first "
                      f"certificate does not match the private key in {self.other.key}",
                      res.stderr)

    def test_files_that_do_not_parse_are_named(self):
        res = run([tool(), "--client-cert", self.client.key, "--client-key", self.client.key,
                   self.url], timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn(f"client certificate {self.client.key}: no certificate found", res.stderr)
        res = run([tool(), "--client-cert", self.client.cert, "--client-key", self.client.cert,
                   self.url], timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn(f"client certificate key {self.client.cert}: no private key could be "
                      "parsed", res.stderr)


def _chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


_STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


class StreamingTest(unittest.TestCase):
    """HttpRequest::onBody (--stream) against a raw origin that sends an
    etcd-like watch: chunked, one JSON object per line, trailers at the end."""

    @classmethod
    def setUpClass(cls):
        cls.origin = start_raw_origin(cls, "stream", {
            "/watch": cls._watch, "/forever": cls._forever, "/error": cls._error,
            "/cut": cls._cut, "/hello": cls._hello})

    def setUp(self):
        StreamingTest.second = threading.Event()  # /watch?wait=1 sends its 2nd line once set
        with self.origin._cond:
            self.origin.results.pop("closed", None)
        add_cleanup(self, self.origin.check)

    def url(self, path):
        return f"http://127.0.0.1:{self.origin.port}{path}"

    @classmethod
    def _watch(cls, conn, reader, head):
        conn.sendall(_STREAM_HEAD + _chunk(b'{"n":1}\n'))
        if "wait=1" in head.target:
            if not cls.second.wait(timeout=10):
                raise AssertionError("the test never saw the first piece")
        elif "pause_ms=" in head.target:
            time.sleep(int(head.target.rsplit("=", 1)[1]) / 1000)
        conn.sendall(_chunk(b'{"n":2}\n') + b"0\r\nGrpc-Status: 0\r\n\r\n")

    @classmethod
    def _forever(cls, conn, reader, head):
        conn.sendall(_STREAM_HEAD + _chunk(b'{"n":1}\n'))
        conn.settimeout(10)
        try:
            closed = conn.recv(1) == b""  # until the client closes
        except ConnectionResetError:
            closed = True
        cls.origin.set_result("closed", closed)

    @classmethod
    def _error(cls, conn, reader, head):
        body = b'{"error":"etcdserver: no leader","code":14}'
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + _chunk(body) + b"0\r\nGrpc-Status: 14\r\n\r\n")

    @classmethod
    def _cut(cls, conn, reader, head):
        conn.sendall(_STREAM_HEAD + _chunk(b'{"n":1}\n') + b"20\r\n{\"n\"")

    @classmethod
    def _hello(cls, conn, reader, head):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")

    def test_pieces_arrive_before_the_stream_ends(self):
        live = LiveFetch(self, "--stream", self.url("/watch?wait=1"))
        first = live.next_line()
        self.assertEqual(first["piece"], '{"n":1}\n')  # and the second is not sent yet
        self.second.set()
        second, result = live.rest()
        self.assertEqual(second["piece"], '{"n":2}\n')
        self.assertEqual(result["status"], 200)
        self.assertEqual(result["body"], "")
        self.assertEqual(result["headers"]["Content-Type"], "application/json")

    def test_the_deadline_ends_with_the_head(self):
        out = fetch("--stream", "--request-timeout-ms", "300", self.url("/watch?pause_ms=800"))
        self.assertEqual([line.get("piece") for line in out[:2]], ['{"n":1}\n', '{"n":2}\n'])
        self.assertEqual(out[2]["status"], 200)

    def test_the_sink_returning_false_closes_the_connection(self):
        out = fetch("--stream", "--stop-after", "1", self.url("/forever"), timeout=10)
        self.assertEqual(out[0]["piece"], '{"n":1}\n')
        self.assertEqual((out[1]["status"], out[1]["body"]), (200, ""))
        self.assertTrue(self.origin.wait_result("closed"))

    def test_an_error_status_is_kept_whole(self):
        out = fetch("--stream", self.url("/error"))
        self.assertEqual(len(out), 1)  # no piece
        self.assertEqual(out[0]["status"], 503)
        self.assertEqual(json.loads(out[0]["body"])["code"], 14)

    def test_a_stream_cut_after_the_head_is_an_error(self):
        out = fetch("--stream", self.url("/cut"))
        self.assertEqual(out[0]["piece"], '{"n":1}\n')
        self.assertIn(f"127.0.0.1:{self.origin.port} closed the connection before the "
                      "response was complete", out[-1]["error"])

    def test_cancel_drops_the_callback(self):
        start = time.monotonic()
        out = fetch("--stream", "--cancel-after-ms", "300", self.url("/forever"),
                    self.url("/hello"), timeout=10)
        self.assertLess(time.monotonic() - start, 5)
        pieces = sorted((line["url"], line["piece"]) for line in out if "piece" in line)
        self.assertEqual(pieces, [(self.url("/forever"), '{"n":1}\n'),
                                  (self.url("/hello"), "hello")])
        self.assertEqual(out[-2], {"url": self.url("/forever"), "cancelled": True})
        self.assertEqual((out[-1]["status"], out[-1]["body"]), (200, ""))
        self.assertTrue(self.origin.wait_result("closed"))

    def test_streams_through_the_blocking_client(self):
        out = fetch("--blocking", "threads", "--stream", self.url("/watch?pause_ms=100"),
                    self.url("/hello"))
        pieces = sorted(line["piece"] for line in out if "piece" in line)
        self.assertEqual(pieces, sorted(['{"n":1}\n', '{"n":2}\n', "hello"]))
        self.assertEqual([line["status"] for line in out[-2:]], [200, 200])


if __name__ == "__main__":
    unittest.main()
