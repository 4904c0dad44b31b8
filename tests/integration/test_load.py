"""A short, bounded load run with wrk over HTTPS keep-alive: a static respond
route and a proxied route. Zero socket errors, zero non-2xx/3xx responses,
and every response body is the expected one (checked by a wrk Lua script)."""

import os
import unittest

from common import make_tempdir, require_tool, run
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import start_origin
from wrk import WrkResult, assert_clean, wrk_command, write_check_script

DURATION = "5s"


class LoadTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require_tool("wrk")
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("load", ["load.test"])
        cls.origin = start_origin(cls, "load-origin")
        cfg = base_config(
            os.path.join(cls.tmp, "state"), workers=2,
            certificates={"load": cls.leaf}, default_certificate="load",
            sites=[site("load", ["load.test"], [
                respond_route("/static", 200, "static response for wrk\n", "text/plain"),
                upstream_route("/proxy", "o"),
            ], "load")],
            upstreams={"o": [cls.origin.address]})
        cls.daemon = start_daemon(cls, cls.tmp, cfg)

    def wrk(self, path, status, needle, connections=16):
        script = write_check_script(os.path.join(self.tmp, f"check{abs(hash(path))}.lua"),
                                    status, needle)
        # wrk does not verify the certificate; SNI is the URL's host (the IP),
        # so the handshake gets the default certificate; Host picks the site.
        url = f"https://127.0.0.1:{self.daemon.https_port}{path}"
        res = run(wrk_command(url, script, threads=1, connections=connections,
                              duration=DURATION, host="load.test"), timeout=60)
        text = res.stdout + res.stderr
        self.assertEqual(res.returncode, 0, text)
        return WrkResult(text)

    def assert_clean(self, w, min_requests):
        assert_clean(self, w, min_requests)
        self.assertTrue(self.daemon.running(), self.daemon.log())

    def test_static_route(self):
        w = self.wrk("/static", 200, "static response for wrk\n")
        self.assert_clean(w, 500)

    def test_proxied_route(self):
        before = self.origin.request_count()
        w = self.wrk("/proxy/load", 200, '"origin": "load-origin"')
        self.assert_clean(w, 100)
        # Every request wrk counted reached the origin (wrk may have a few
        # in flight when it stops, hence >=).
        self.assertGreaterEqual(self.origin.request_count() - before, w.good)


if __name__ == "__main__":
    unittest.main()
