"""State-directory store changes reach a running daemon without SIGHUP: the
watcher watches <state>/certs and, kDebounce after the last change there,
rebuilds the certificate snapshot and publishes it if it differs.

- `tlsedge cert add NAME --replace` of the certificate a site binds: a new
  handshake sees the new serial within 1 s (bounded poll); a keep-alive
  connection opened before keeps answering on the same connection;
- `cert add` of a second name covering an unbound site's host: that host is
  served by it within 1 s;
- temporaries (names starting with '.') are ignored, even with bad content;
- a bound entry taken away is refused with a logged reason, the previous
  certificate keeps serving; putting it back changes nothing served."""

import os
import time
import unittest

from clients import SniHTTPSConnection, client_context, peer_serial, tls_handshake
from common import make_tempdir, run, tlsedge_bin
from config import base_config, respond_route, site, to_yaml
from daemon import start_daemon
from pki import Certs

VISIBLE_WITHIN_S = 1.0
REBUILT = r"^<6>certificate store .* changed: snapshot rebuilt"
REFUSED = r"^<3>certificate store .* changed: refused, the previous certificates keep serving"


class StoreWatchTest(unittest.TestCase):

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        c = self.certs
        self.shop1 = c.leaf("shop1", ["shop.test"])
        self.shop2 = c.leaf("shop2", ["shop.test"])
        self.blog = c.leaf("blog", ["blog.test"])
        self.cdn = c.leaf("cdn", ["cdn.test"])
        self.state = os.path.join(self.tmp, "state")
        self.cfg = base_config(
            self.state,
            certificates={"cdn": self.cdn},
            default_certificate="cdn",
            sites=[
                site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")], "shop-store"),
                site("blog", ["blog.test"], [respond_route("/", 200, "blog\n")]),
            ])
        self.config_path = os.path.join(self.tmp, "tlsedge.yaml")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(self.cfg))

    def add(self, name, leaf, *extra):
        res = run([tlsedge_bin(), "cert", "add", name, "--cert", leaf.cert, "--key", leaf.key,
                   *extra, "-c", self.config_path], timeout=60)
        self.assertEqual(res.returncode, 0, f"cert add {name} failed\n{res.stdout}\n{res.stderr}")

    def serial(self, port, sni):
        return peer_serial(tls_handshake(port, sni, ca=self.certs.ca_cert)[3])

    def wait_serial(self, port, sni, serial, timeout=VISIBLE_WITHIN_S):
        start = time.monotonic()
        seen = None
        while time.monotonic() - start < timeout:
            seen = self.serial(port, sni)
            if seen == serial:
                return
            time.sleep(0.01)
        self.fail(f"{sni}: serial {serial:x} not served after {timeout}s (still {seen:x})")

    def wait_lines(self, d, pattern, count, timeout=5):
        deadline = time.monotonic() + timeout
        while d.count_lines(pattern) < count:
            if time.monotonic() > deadline:
                self.fail(f"no {count} log line(s) {pattern!r} after {timeout}s\n{d.log()}")
            time.sleep(0.02)

    def test_store_changes_without_sighup(self):
        self.add("shop-store", self.shop1)
        d = start_daemon(self, self.tmp, self.cfg)
        port = d.https_port
        self.assertEqual(self.serial(port, "shop.test"), self.shop1.serial)
        self.assertEqual(self.serial(port, "blog.test"), self.cdn.serial)  # the default

        held = SniHTTPSConnection("shop.test", port, client_context(self.certs.ca_cert))
        self.addCleanup(held.close)
        held.request("GET", "/")
        self.assertEqual(held.getresponse().read(), b"shop\n")
        held_sock = held.sock

        # The bound certificate replaced (directory exchange), no SIGHUP.
        self.add("shop-store", self.shop2, "--replace")
        self.wait_serial(port, "shop.test", self.shop2.serial)
        held.request("GET", "/")
        resp = held.getresponse()
        self.assertEqual((resp.status, resp.read()), (200, b"shop\n"))
        self.assertIs(held.sock, held_sock)

        # A new name covering the unbound site's host (directory rename).
        self.add("blog-auto", self.blog)
        self.wait_serial(port, "blog.test", self.blog.serial)
        self.assertEqual(self.serial(port, "shop.test"), self.shop2.serial)
        self.wait_lines(d, REBUILT, 2)
        rebuilt = d.count_lines(REBUILT)

        # A temporary, even a broken one, is not looked at.
        junk = os.path.join(self.state, "certs", ".tmp-junk-1-1")
        os.mkdir(junk)
        with open(os.path.join(junk, "fullchain.pem"), "w") as f:
            f.write("not a certificate\n")
        os.rename(junk, junk + "x")
        time.sleep(0.5)
        self.assertEqual(d.count_lines(r"^<3>"), 0, d.log())
        self.assertEqual(d.count_lines(REBUILT), rebuilt, d.log())

        # The bound entry taken away: refused, the previous certificate serves.
        entry = os.path.join(self.state, "certs", "shop-store")
        aside = os.path.join(self.state, "certs", ".aside")
        os.rename(entry, aside)
        self.wait_lines(d, REFUSED + r".*shop-store", 1)
        self.assertEqual(self.serial(port, "shop.test"), self.shop2.serial)
        # Back in place: the same certificates as served, nothing published.
        os.rename(aside, entry)
        time.sleep(0.5)
        self.assertEqual(self.serial(port, "shop.test"), self.shop2.serial)
        self.assertEqual(d.count_lines(REBUILT), rebuilt, d.log())

        held.request("GET", "/")
        self.assertEqual(held.getresponse().read(), b"shop\n")
        self.assertEqual(d.count_lines(r"SIGHUP"), 0, d.log())
        self.assertTrue(d.running(), d.log())


if __name__ == "__main__":
    unittest.main()
