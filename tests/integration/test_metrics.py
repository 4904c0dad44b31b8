"""The metrics endpoint: /metrics (Prometheus text, counts that move by what
was sent, certificate expiry states, promtool accepts it), /healthz and
/readyz. Real daemon, real TLS clients, curl and promtool."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from common import make_tempdir
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import start_origin
from clients import http_request, https_request, tls_handshake
from pki import Certs
from scrape import parse_metrics, value


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.later = cls.certs.leaf("later", ["a.test"], days=30)
        cls.soon = cls.certs.leaf("soon", ["soon.test"], days=5)
        cls.origin = start_origin(cls, "main")
        cfg = base_config(
            os.path.join(cls.tmp, "state"),
            certificates={"later": cls.later, "soon": cls.soon},
            sites=[site("a", ["a.test"], [respond_route("/", 200, "hello\n")], "later"),
                   site("soon", ["soon.test"], [respond_route("/", 200, "soon\n"),
                                                upstream_route("/proxied", "main")], "soon")],
            upstreams={"main": [cls.origin.address]})
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        if cls.daemon.metrics_address is None:
            raise AssertionError(f"no metrics listening line\n{cls.daemon.log()}")
        cls.host, cls.port = cls.daemon.metrics_address

    def get(self, path):
        """(status, content type, body) of GET path on the metrics endpoint, with curl."""
        res = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code} %{content_type}",
             f"http://{self.host}:{self.port}{path}"],
            capture_output=True, text=True, timeout=20)
        self.assertEqual(res.returncode, 0, res.stderr)
        body, _, tail = res.stdout.rpartition("\n")
        status, _, ctype = tail.partition(" ")
        return int(status), ctype, body + "\n" if body else body

    def scrape(self):
        status, ctype, body = self.get("/metrics")
        self.assertEqual(status, 200, body)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        return parse_metrics(body)

    def test_requests_and_handshakes_move_by_what_was_sent(self):
        before = self.scrape()
        n = 5
        port = self.daemon.https_port
        for _ in range(n):
            res = https_request(port, "a.test", ca=self.certs.ca_cert)
            self.assertEqual(res.status, 200)
        res = http_request(self.daemon.http_port, "/", headers={"Host": "nosuch.test"})
        self.assertEqual(res.status, 404)
        after = self.scrape()

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        self.assertEqual(delta("tlsedge_http_requests_total", site="a", code="2xx"), n)
        self.assertEqual(delta("tlsedge_http_requests_total", site="soon", code="2xx"), 0)
        # No site for that host: counted apart, under "(none)".
        self.assertEqual(delta("tlsedge_http_requests_total", site="(none)", code="4xx"), 1)
        self.assertEqual(delta("tlsedge_http_request_duration_seconds_count"), n + 1)
        self.assertEqual(delta("tlsedge_tls_handshake_duration_seconds_count"), n)
        self.assertEqual(delta("tlsedge_connections_accepted_total", listener="https"), n)
        self.assertEqual(delta("tlsedge_connections_accepted_total", listener="http"), 1)
        self.assertEqual(delta("tlsedge_sni_lookups_total", outcome="exact"), n)
        done = sum(delta("tlsedge_tls_handshakes_total", result="success", version=v, resumed=r)
                   for v in ("TLSv1.2", "TLSv1.3") for r in ("true", "false"))
        self.assertEqual(done, n)
        self.assertEqual(value(after, "tlsedge_workers"), 2)
        self.assertEqual(value(after, "tlsedge_metrics_workers_unanswered"), 0)

    def test_bad_request_after_a_good_one_has_no_site(self):
        # One keep-alive connection: a request for site a, then garbage. The
        # 400 belongs to no site, not to the request before it.
        before = self.scrape()
        with socket.create_connection(("127.0.0.1", self.daemon.http_port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")  # redirected to https
            got = b""
            while b"\r\n\r\n" not in got:
                chunk = s.recv(4096)
                self.assertTrue(chunk, got)
                got += chunk
            self.assertTrue(got.startswith(b"HTTP/1.1 308 "), got)
            self.assertIn(b"Content-Length: 0\r\n", got)
            s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            rest = b""
            while chunk := s.recv(4096):
                rest += chunk
            self.assertTrue(rest.startswith(b"HTTP/1.1 400 "), rest)
        after = self.scrape()

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        self.assertEqual(delta("tlsedge_http_requests_total", site="a", code="3xx"), 1)
        self.assertEqual(delta("tlsedge_http_requests_total", site="a", code="4xx"), 0)
        self.assertEqual(delta("tlsedge_http_requests_total", site="(none)", code="4xx"), 1)

    def test_upstream_latency_and_store_generation(self):
        before = self.scrape()
        for _ in range(3):
            res = https_request(self.daemon.https_port, "soon.test", "/proxied",
                                ca=self.certs.ca_cert)
            self.assertEqual(res.status, 200)
        res = https_request(self.daemon.https_port, "soon.test", ca=self.certs.ca_cert)
        self.assertEqual(res.status, 200)  # answered by tlsedge: not an upstream response
        self.daemon.reload()  # publishes a new certificate snapshot
        after = self.scrape()

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        self.assertEqual(delta("tlsedge_upstream_response_duration_seconds_count"), 3)
        self.assertGreater(delta("tlsedge_upstream_response_duration_seconds_sum"), 0)
        self.assertGreaterEqual(value(before, "tlsedge_certificate_store_generation"), 1)
        self.assertEqual(delta("tlsedge_certificate_store_generation"), 1)

    def test_handshake_failure_and_sni_miss_are_counted(self):
        before = self.scrape()
        with socket.create_connection(("127.0.0.1", self.daemon.https_port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")  # not a ClientHello
            s.recv(1024)  # the alert, or EOF
        with self.assertRaises(OSError):  # no default certificate: refused
            tls_handshake(self.daemon.https_port, "unknown.test", ca=self.certs.ca_cert)
        deadline = time.monotonic() + 10
        while True:
            after = self.scrape()
            failures = (value(after, "tlsedge_tls_handshakes_total", result="failure",
                              version="unknown", resumed="false") -
                        value(before, "tlsedge_tls_handshakes_total", result="failure",
                              version="unknown", resumed="false"))
            if failures >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # the worker notices the peer gone on its next read
        self.assertEqual(failures, 2)
        self.assertEqual(value(after, "tlsedge_sni_lookups_total", outcome="miss") -
                         value(before, "tlsedge_sni_lookups_total", outcome="miss"), 1)

    def test_certificate_expiring_in_5_days_is_in_its_bucket_with_its_not_after(self):
        samples = self.scrape()
        self.assertEqual(value(samples, "tlsedge_certificates", state="expiring_7d"), 1)
        self.assertEqual(value(samples, "tlsedge_certificates", state="valid"), 1)
        self.assertEqual(value(samples, "tlsedge_certificates", state="expired"), 0)
        res = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", self.soon.cert],
                             capture_output=True, text=True, check=True, timeout=30)
        not_after = ssl.cert_time_to_seconds(res.stdout.strip().split("=", 1)[1])
        self.assertEqual(value(samples, "tlsedge_certificate_not_after_seconds", name="soon"),
                         not_after)
        names = {dict(labels).get("name") for (name, labels) in samples
                 if name == "tlsedge_certificate_not_after_seconds"}
        self.assertEqual(names, {"soon"})  # not the one with 30 days left

    def test_process_and_build_metrics(self):
        samples = self.scrape()
        self.assertGreater(value(samples, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(value(samples, "process_open_fds"), 5)
        start = value(samples, "process_start_time_seconds")
        self.assertLess(abs(start - time.time()), 3600)
        self.assertGreaterEqual(value(samples, "process_cpu_seconds_total"), 0)
        build = [dict(labels) for n, labels in samples if n == "tlsedge_build_info"]
        self.assertEqual(len(build), 1, build)
        self.assertEqual(build[0].get("version"), os.environ["TLSEDGE_EXPECTED_VERSION"])

    def test_health_ready_and_unknown_paths(self):
        self.assertEqual(self.get("/healthz")[0], 200)
        self.assertEqual(self.get("/readyz")[0], 200)
        self.assertEqual(self.get("/nope")[0], 404)
        req = urllib.request.Request(f"http://{self.host}:{self.port}/metrics", method="POST",
                                     data=b"")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(cm.exception.code, 405)

    def test_keep_alive_scrapes_in_order(self):
        """Two pipelined requests on one connection: answered in order."""
        with socket.create_connection((self.host, self.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        first = data.find(b"HTTP/1.1 200")
        second = data.find(b"HTTP/1.1 200", first + 1)
        self.assertGreaterEqual(second, 0, data[:500])
        self.assertIn(b"ok\n", data[:second])
        self.assertIn(b"tlsedge_build_info", data[second:])

    def test_promtool_accepts_the_output(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.fail("promtool not installed (Debian package prometheus; scripts/setup.sh)")
        https_request(self.daemon.https_port, "a.test", ca=self.certs.ca_cert)
        _, _, body = self.get("/metrics")
        res = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr + "\n" + body)


class ReadinessTest(unittest.TestCase):
    """/readyz answers 503 while draining; /healthz stays 200."""

    def test_readyz_is_503_while_draining(self):
        tmp = make_tempdir(self)
        certs = Certs(os.path.join(tmp, "pki"))
        leaf = certs.leaf("a", ["a.test"])
        origin = start_origin(self, "slow-origin")
        cfg = base_config(os.path.join(tmp, "state"), certificates={"a": leaf},
                          sites=[site("a", ["a.test"], [upstream_route("/", "o")], "a")],
                          upstreams={"o": [origin.address]}, shutdown_timeout="5s", workers=1)
        daemon = start_daemon(self, tmp, cfg)
        host, port = daemon.metrics_address
        url = f"http://{host}:{port}"
        self.assertEqual(urllib.request.urlopen(url + "/readyz", timeout=10).status, 200)
        # An in-flight request (the origin answers after 3 s) keeps the daemon draining.
        held = threading.Thread(target=lambda: https_request(
            daemon.https_port, "a.test", "/slow?delay_ms=3000", ca=certs.ca_cert), daemon=True)
        held.start()
        origin.wait_for_requests(1, timeout=10)
        daemon.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 4
        status = None
        while time.monotonic() < deadline:
            try:
                status = urllib.request.urlopen(url + "/readyz", timeout=2).status
            except urllib.error.HTTPError as e:
                status = e.code
                break
            except OSError:
                break
            time.sleep(0.05)
        self.assertEqual(status, 503, daemon.log())
        self.assertEqual(urllib.request.urlopen(url + "/healthz", timeout=10).status, 200)
        held.join(timeout=15)
        self.assertEqual(daemon.wait_exit(timeout=15), 0, daemon.log())


if __name__ == "__main__":
    unittest.main()
