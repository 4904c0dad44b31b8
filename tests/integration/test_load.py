"""A short, bounded load run with wrk over HTTPS keep-alive: a static respond
route and a proxied route. Zero socket errors, zero non-2xx/3xx responses,
and every response body is the expected one (checked by a wrk Lua script)."""

import os
import re
import unittest

from common import make_tempdir, require_tool, run
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import start_origin

DURATION = "5s"

# wrk calls response() for every response of a thread; done() reads the
# thread's counters back (-t1: one thread, but written for any number).
LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) good = 0; bad = 0; first_bad = "" end
function response(status, headers, body)
  if status == %(status)d and body and string.find(body, %(needle)s, 1, true) then
    good = good + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200) end
  end
end
function done(summary, latency, requests)
  local g, b, f = 0, 0, ""
  for _, t in ipairs(threads) do
    g = g + t:get("good"); b = b + t:get("bad")
    if f == "" then f = t:get("first_bad") end
  end
  io.write(string.format("LUA good=%%d bad=%%d first_bad=%%q\n", g, b, f))
end
"""


def lua_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class WrkResult:
    def __init__(self, text):
        self.text = text
        m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", text, re.M)
        if not m:
            raise AssertionError(f"cannot parse wrk output:\n{text}")
        self.requests = int(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        self.socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                                      map(int, m.groups()))) if m else {}
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        self.non_2xx_3xx = int(m.group(1)) if m else 0
        m = re.search(r"LUA good=(\d+) bad=(\d+) first_bad=(.*)$", text, re.M)
        if not m:
            raise AssertionError(f"wrk Lua summary missing:\n{text}")
        self.good, self.bad, self.first_bad = int(m.group(1)), int(m.group(2)), m.group(3)


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
        script = os.path.join(self.tmp, f"check{abs(hash(path))}.lua")
        with open(script, "w") as f:
            f.write(LUA % {"status": status, "needle": lua_quote(needle)})
        # wrk does not verify the certificate; SNI is the URL's host (the IP),
        # so the handshake gets the default certificate; Host picks the site.
        url = f"https://127.0.0.1:{self.daemon.https_port}{path}"
        res = run(["wrk", "-t1", f"-c{connections}", f"-d{DURATION}", "--timeout", "5s",
                   "-H", "Host: load.test", "-s", script, url], timeout=60)
        text = res.stdout + res.stderr
        self.assertEqual(res.returncode, 0, text)
        return WrkResult(text)

    def assert_clean(self, w, min_requests):
        self.assertEqual(sum(w.socket_errors.values()), 0, f"socket errors {w.socket_errors}\n{w.text}")
        self.assertEqual(w.non_2xx_3xx, 0, w.text)
        self.assertEqual(w.bad, 0, f"unexpected responses, first: {w.first_bad}\n{w.text}")
        self.assertGreaterEqual(w.requests, min_requests, w.text)
        self.assertGreaterEqual(w.good, min_requests, w.text)
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
