"""The access log: one JSON line per request with what happened, written to
the configured file; a reload reopens it (log rotation); a path that cannot
be opened refuses the reload and the running log goes on."""

import json
import os
import time
import unittest

from common import make_tempdir
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import start_origin
from clients import http_request, https_request


def read_lines(path, n, timeout=5.0):
    """The first `n` JSON lines of `path`, waiting (bounded) for the writer."""
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        if os.path.exists(path):
            with open(path, encoding="ascii") as f:
                lines = [l for l in f.read().split("\n") if l]
        if len(lines) >= n or time.monotonic() > deadline:
            return [json.loads(l) for l in lines]
        time.sleep(0.05)


class AccessLogTest(unittest.TestCase):

    def setUp(self):
        self.tmp = make_tempdir(self)
        certs = Certs(os.path.join(self.tmp, "pki"))
        leaf = certs.leaf("shop", ["shop.test"])
        self.ca = certs.ca_cert
        self.origin = start_origin(self, "main")
        self.log_path = os.path.join(self.tmp, "access.log")
        self.cfg = base_config(
            os.path.join(self.tmp, "state"), workers=2,
            certificates={"shop": leaf}, default_certificate="shop",
            sites=[site("shop", ["shop.test"], [
                upstream_route("/", "main"),
                respond_route("/static", 203, "static body\n"),
            ], "shop")],
            upstreams={"main": [self.origin.address]})
        self.cfg["access_log"] = {"path": self.log_path}
        self.daemon = start_daemon(self, self.tmp, self.cfg)
        self.port = self.daemon.https_port

    def get(self, path, **kw):
        return https_request(self.port, "shop.test", path, ca=self.ca, **kw)

    def test_one_line_per_request_with_what_happened(self):
        self.assertEqual(self.get("/api/x?q=1").status, 200)
        self.assertEqual(self.get("/static").status, 203)
        self.assertEqual(self.get("/upload", method="POST", body=b"x" * 1000).status, 200)
        self.assertEqual(self.get("/", headers={"Host": "nobody.test"}).status, 404)
        plain = http_request(self.daemon.http_port, "/p?a=b", headers={"Host": "shop.test"})
        self.assertEqual(plain.status, 308)

        lines = read_lines(self.log_path, 5)
        self.assertEqual(len(lines), 5, lines)
        by_path = {l["path"]: l for l in lines}

        proxied = by_path["/api/x?q=1"]
        self.assertEqual(proxied["method"], "GET")
        self.assertEqual(proxied["status"], 200)
        self.assertEqual(proxied["scheme"], "https")
        self.assertEqual(proxied["site"], "shop")
        self.assertEqual(proxied["host"], f"shop.test:{self.port}")  # the Host header as sent
        self.assertEqual(proxied["client"], "127.0.0.1")
        self.assertEqual(proxied["protocol"], "HTTP/1.1")
        self.assertEqual(proxied["upstream"], "main")
        self.assertEqual(proxied["upstream_addr"], self.origin.address)
        self.assertIsNotNone(proxied["upstream_header_ms"])
        self.assertGreater(proxied["bytes_out"], 100)  # head + JSON body
        self.assertGreaterEqual(proxied["duration_ms"], proxied["upstream_header_ms"])
        self.assertRegex(proxied["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

        static = by_path["/static"]
        self.assertEqual((static["status"], static["upstream"]), (203, ""))
        self.assertIsNone(static["upstream_header_ms"])
        self.assertGreater(static["bytes_out"], len("static body\n"))

        self.assertEqual(by_path["/upload"]["bytes_in"], 1000)
        self.assertEqual(by_path["/upload"]["method"], "POST")
        self.assertEqual((by_path["/"]["status"], by_path["/"]["site"]), (404, ""))
        self.assertEqual((by_path["/p?a=b"]["status"], by_path["/p?a=b"]["scheme"]), (308, "http"))

    def test_hostile_bytes_stay_valid_json(self):
        r = self.get('/q"uo\\te%00', headers={"User-Agent": "x"})
        self.assertEqual(r.status, 200)
        line = read_lines(self.log_path, 1)[0]
        self.assertEqual(line["path"], '/q"uo\\te%00')

    def test_reload_reopens_the_file_for_rotation(self):
        self.assertEqual(self.get("/before").status, 200)
        self.assertEqual(len(read_lines(self.log_path, 1)), 1)
        rotated = self.log_path + ".1"
        os.rename(self.log_path, rotated)
        self.daemon.reload()
        self.assertEqual(self.get("/after").status, 200)
        after = read_lines(self.log_path, 1)
        self.assertEqual([l["path"] for l in after], ["/after"])
        self.assertEqual([l["path"] for l in read_lines(rotated, 1)], ["/before"])

    def test_unopenable_path_refuses_the_reload(self):
        bad = dict(self.cfg)
        bad["access_log"] = {"path": os.path.join(self.tmp, "no-such-dir", "access.log")}
        lines = self.daemon.reload(bad, expect="refused")
        self.assertTrue(any("no-such-dir/access.log" in l for l in lines), lines)
        self.assertEqual(self.get("/still").status, 200)
        self.assertEqual([l["path"] for l in read_lines(self.log_path, 1)], ["/still"])

    def test_off_when_not_configured(self):
        cfg = dict(self.cfg)
        del cfg["access_log"]
        self.daemon.reload(cfg)
        self.assertEqual(self.get("/unlogged").status, 200)
        time.sleep(0.5)  # longer than the buffer's flush delay
        self.assertEqual(read_lines(self.log_path, 0, timeout=0), [])


if __name__ == "__main__":
    unittest.main()
