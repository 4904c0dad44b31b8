"""State-directory store changes reach a running daemon without SIGHUP: the
watcher watches <state>/certs and, kDebounce after the last change there,
applies each changed entry on its own to the certificate snapshot.

Every check is a real `openssl s_client` handshake, polled (bounded) until
it shows the expected serial, within 1 s of the change (3 s in sanitizer builds):

- `tlsedge cert add NAME --replace` of the certificate a site binds: a new
  handshake sees the new serial; a keep-alive connection opened before keeps
  answering on the same connection;
- an unbound site's host: a store entry covering it added (served), replaced
  (the new one), exchanged with bad material (refused, logged, the previous
  one keeps serving), removed by hand (back to the default);
- temporaries (names starting with '.') are ignored, even with bad content;
- a bound entry taken away is refused with a logged reason, the previous
  certificate keeps serving; putting it back changes nothing served;
- a site's tls.fallback_certificate: served while its own certificate is
  missing (a warning at start, not an error), left when the certificate is
  added, served again when it is removed by hand; `cert which` says
  "fallback"."""

import ctypes
import json
import os
import shutil
import time
import unittest

from clients import SniHTTPSConnection, client_context, s_client, s_client_leaf
from common import make_tempdir, run, sanitizer, tlsedge_bin
from config import base_config, respond_route, site, to_yaml
from daemon import start_daemon
from pki import Certs

VISIBLE_WITHIN_S = 3.0 if sanitizer() else 1.0  # sanitized daemons are slower
APPLIED = r"^<6>certificate store entry \S+ (added|replaced|removed)"
REFUSED = r"^<3>certificate store entry "

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a, b):
    """renameat2(RENAME_EXCHANGE), as `cert add --replace` does."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, a.encode(), _AT_FDCWD, b.encode(), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)


class StoreWatchTest(unittest.TestCase):

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        c = self.certs
        self.shop1 = c.leaf("shop1", ["shop.test"])
        self.shop2 = c.leaf("shop2", ["shop.test"])
        self.blog = c.leaf("blog", ["blog.test"])
        self.blog2 = c.leaf("blog2", ["blog.test"])
        self.cdn = c.leaf("cdn", ["cdn.test"])
        self.spare = c.leaf("spare", ["spare.test"])
        self.own = c.leaf("own", ["own.test"])
        self.state = os.path.join(self.tmp, "state")
        self.cfg = base_config(
            self.state,
            certificates={"cdn": self.cdn},
            default_certificate="cdn",
            sites=[
                site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")], "shop-store"),
                site("blog", ["blog.test"], [respond_route("/", 200, "blog\n")]),
            ])
        self.write_config()

    def write_config(self):
        self.config_path = os.path.join(self.tmp, "tlsedge.yaml")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(self.cfg))

    def add(self, name, leaf, *extra):
        # --offline: straight to the store, as another tool would write it;
        # through the admin socket the daemon would not wait for the watch.
        res = run([tlsedge_bin(), "cert", "add", name, "--cert", leaf.cert, "--key", leaf.key,
                   *extra, "--offline", "-c", self.config_path], timeout=60)
        self.assertEqual(res.returncode, 0, f"cert add {name} failed\n{res.stdout}\n{res.stderr}")

    def serial(self, port, sni):
        return s_client_leaf(s_client(port, sni, ca=self.certs.ca_cert))[0]

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

        # An entry covering the unbound site's host: added (directory rename)...
        self.add("blog-auto", self.blog)
        self.wait_serial(port, "blog.test", self.blog.serial)
        self.assertEqual(self.serial(port, "shop.test"), self.shop2.serial)
        # ... replaced ...
        self.add("blog-auto", self.blog2, "--replace")
        self.wait_serial(port, "blog.test", self.blog2.serial)
        self.wait_lines(d, APPLIED, 3)
        applied = d.count_lines(APPLIED)

        # ... exchanged with bad material: refused, the previous one serves.
        certs_dir = os.path.join(self.state, "certs")
        bad = os.path.join(certs_dir, ".tmp-bad-1-1")
        os.mkdir(bad)
        for f in ("fullchain.pem", "privkey.pem"):
            with open(os.path.join(bad, f), "w") as out:
                out.write("not PEM\n")
        exchange(bad, os.path.join(certs_dir, "blog-auto"))
        self.wait_lines(d, REFUSED + r".*blog-auto refused, the previous certificate keeps "
                        r"serving: .*fullchain.pem", 1)
        self.assertEqual(self.serial(port, "blog.test"), self.blog2.serial)
        exchange(bad, os.path.join(certs_dir, "blog-auto"))  # the good one back: the same
        time.sleep(0.5)
        self.assertEqual(self.serial(port, "blog.test"), self.blog2.serial)
        self.assertEqual(d.count_lines(APPLIED), applied, d.log())

        # ... removed by hand (the CLI refuses, it is in use): back to the default.
        shutil.rmtree(os.path.join(certs_dir, "blog-auto"))
        self.wait_serial(port, "blog.test", self.cdn.serial)
        applied += 1
        self.wait_lines(d, APPLIED, applied)
        refused = d.count_lines(REFUSED)

        # A temporary, even a broken one, is not looked at.
        junk = os.path.join(certs_dir, ".tmp-junk-1-1")
        os.mkdir(junk)
        with open(os.path.join(junk, "fullchain.pem"), "w") as f:
            f.write("not a certificate\n")
        os.rename(junk, junk + "x")
        time.sleep(0.5)
        self.assertEqual(d.count_lines(REFUSED), refused, d.log())
        self.assertEqual(d.count_lines(APPLIED), applied, d.log())

        # The bound entry taken away: refused, the previous certificate serves.
        entry = os.path.join(certs_dir, "shop-store")
        aside = os.path.join(certs_dir, ".aside")
        os.rename(entry, aside)
        self.wait_lines(d, REFUSED + r".*shop-store: .* but is in use \(tls.certificate of site "
                        r"`shop`\): the previous certificate keeps serving", 1)
        self.assertEqual(self.serial(port, "shop.test"), self.shop2.serial)
        # Back in place: the same certificate as served, nothing published.
        os.rename(aside, entry)
        time.sleep(0.5)
        self.assertEqual(self.serial(port, "shop.test"), self.shop2.serial)
        self.assertEqual(d.count_lines(APPLIED), applied, d.log())

        held.request("GET", "/")
        self.assertEqual(held.getresponse().read(), b"shop\n")
        self.assertEqual(d.count_lines(r"SIGHUP"), 0, d.log())
        self.assertTrue(d.running(), d.log())

    def test_site_fallback_certificate(self):
        self.cfg["sites"].append(site("own", ["own.test"], [respond_route("/", 200, "own\n")],
                                      **{"tls": {"certificate": "own-store",
                                                 "fallback_certificate": "spare"}}))
        self.write_config()
        self.add("spare", self.spare)
        self.add("shop-store", self.shop1)
        # own-store does not exist yet: a warning, the site is served by its fallback.
        d = start_daemon(self, self.tmp, self.cfg)
        port = d.https_port
        self.assertGreaterEqual(d.count_lines(r"^<4>.*site `own`: its tls.certificate is "
                                              r"unavailable, served by tls.fallback_certificate "
                                              r"`spare`"), 1, d.log())
        self.assertEqual(self.serial(port, "own.test"), self.spare.serial)
        self.assertEqual(self.serial(port, "nowhere.test"), self.cdn.serial)
        which = run([tlsedge_bin(), "cert", "which", "own.test", "--json", "-c",
                     self.config_path], timeout=60)
        self.assertEqual(which.returncode, 0, which.stderr)
        self.assertEqual(json.loads(which.stdout)["how"], "fallback")
        self.assertEqual(json.loads(which.stdout)["certificate"], "spare")

        # The site's own certificate arrives: served, no SIGHUP.
        self.add("own-store", self.own)
        self.wait_serial(port, "own.test", self.own.serial)
        # Removed by hand: the fallback again (as a reload would give).
        shutil.rmtree(os.path.join(self.state, "certs", "own-store"))
        self.wait_serial(port, "own.test", self.spare.serial)
        self.assertEqual(self.serial(port, "shop.test"), self.shop1.serial)
        self.assertEqual(d.count_lines(r"^<3>"), 0, d.log())
        self.assertTrue(d.running(), d.log())


if __name__ == "__main__":
    unittest.main()
