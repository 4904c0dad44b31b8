"""`tlsedge cert add|list|show|which|rm` through the real binary, on the state
directory of a config, then a daemon serving what the store holds: the
certificate a site binds by store name, the one an unbound site gets because
its names cover the host, and `cert which` agreeing with the handshake.
Without a daemon (nothing listens on admin.socket), the state directory,
said on stderr."""

import json
import os
import re
import socket
import stat
import unittest

from clients import peer_serial, tls_handshake
from common import make_tempdir, run, tlsedge_bin
from config import base_config, respond_route, site, to_yaml
from daemon import start_daemon
from pki import Certs


def field(output, key):
    """The value of a `key: value` line of show/which output."""
    m = re.search(rf"^{re.escape(key)}:\s+(.*)$", output, re.M)
    if not m:
        raise AssertionError(f"no {key!r} line in:\n{output}")
    return m.group(1).strip()


class CertCliTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        c = cls.certs
        cls.shop = c.leaf("shop", ["shop.test", "www.shop.test"])
        cls.shop2 = c.leaf("shop2", ["shop.test", "www.shop.test"])
        cls.blog = c.leaf("blog", ["blog.test"], days=60)
        cls.spare = c.leaf("spare", ["spare.test"], days=60)
        cls.cdn = c.leaf("cdn", ["cdn.test"], days=60)
        cls.state = os.path.join(cls.tmp, "state")
        cls.cfg = base_config(
            cls.state,
            certificates={"cdn": cls.cdn},
            default_certificate="cdn",
            sites=[
                site("shop", ["shop.test", "www.shop.test"],
                     [respond_route("/", 200, "shop\n")], "shop-2026"),
                site("blog", ["blog.test"], [respond_route("/", 200, "blog\n")]),
            ])
        cls.config_path = os.path.join(cls.tmp, "tlsedge.yaml")
        with open(cls.config_path, "w") as f:
            f.write(to_yaml(cls.cfg))

    def cert(self, *args, ok=True):
        res = run([tlsedge_bin(), "cert", *args, "-c", self.config_path], timeout=60)
        if ok:
            self.assertEqual(res.returncode, 0,
                             f"cert {' '.join(args)} failed\nstdout:\n{res.stdout}\n"
                             f"stderr:\n{res.stderr}")
        else:
            self.assertNotEqual(res.returncode, 0, f"cert {' '.join(args)} should fail\n"
                                                   f"stdout:\n{res.stdout}")
        return res

    def add(self, name, leaf, *extra, ok=True):
        return self.cert("add", name, "--cert", leaf.cert, "--key", leaf.key, *extra, ok=ok)

    def handshake_serial(self, port, sni):
        _, _, _, cert = tls_handshake(port, sni, ca=self.certs.ca_cert)
        return peer_serial(cert)

    def test_store_cli_and_daemon(self):
        # add: written with the key 0600, and never echoed.
        res = self.add("shop-2026", self.shop)
        self.assertIn("added `shop-2026`", res.stdout)
        with open(self.shop.key) as f:
            key_body = f.read().splitlines()[1]
        self.assertNotIn(key_body, res.stdout + res.stderr)
        entry = os.path.join(self.state, "certs", "shop-2026")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(entry, "privkey.pem")).st_mode), 0o600)
        self.assertEqual(sorted(os.listdir(entry)), ["fullchain.pem", "meta.json", "privkey.pem"])
        self.add("blog-auto", self.blog)
        self.add("spare", self.spare)

        # Refusals, each with a message naming the problem; the entry is unchanged.
        res = self.add("shop-2026", self.shop2, ok=False)
        self.assertIn("already exists", res.stderr)
        res = self.cert("add", "bad", "--cert", self.shop.cert, "--key", self.blog.key, ok=False)
        self.assertIn("the private key does not match the leaf certificate", res.stderr)
        res = self.cert("add", "bad", "--cert", self.shop.key, "--key", self.shop.key, ok=False)
        self.assertIn("no certificate found", res.stderr)
        res = self.cert("add", "../x", "--cert", self.shop.cert, "--key", self.shop.key, ok=False)
        self.assertIn("certificate name", res.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs", "bad")))

        # list: names covered, bound sites, expiring mark (the shop leaf lives 3 days).
        listing = self.cert("list").stdout
        rows = {l.split()[0]: l for l in listing.splitlines()[1:] if l.strip()}
        self.assertEqual(sorted(rows), ["blog-auto", "shop-2026", "spare"], listing)
        self.assertRegex(rows["shop-2026"], r"shop\.test,www\.shop\.test\s+shop\s")
        self.assertIn("expiring", rows["shop-2026"])
        self.assertRegex(rows["blog-auto"], r"blog\.test\s+blog\s")
        self.assertNotIn("expiring", rows["blog-auto"])
        self.assertRegex(rows["spare"], r"spare\.test\s+-\s")
        listed = json.loads(self.cert("list", "--json").stdout)
        self.assertEqual([e["name"] for e in listed], ["blog-auto", "shop-2026", "spare"])
        self.assertEqual(listed[1]["sites"], ["shop"])
        self.assertEqual(listed[1]["dns_names"], ["shop.test", "www.shop.test"])
        self.assertEqual(int(listed[1]["serial"], 16), self.shop.serial)
        self.assertTrue(listed[1]["expiring"])
        self.assertFalse(listed[1]["expired"])

        # show: the fields, never the key.
        shown = self.cert("show", "shop-2026").stdout
        self.assertEqual(int(field(shown, "serial"), 16), self.shop.serial)
        self.assertEqual(field(shown, "names"), "shop.test,www.shop.test")
        self.assertEqual(field(shown, "sites"), "shop")
        self.assertEqual(field(shown, "key"), "ECDSA P-256")
        self.assertRegex(field(shown, "sha256"), r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$")
        self.assertNotIn(key_body, shown)
        res = self.cert("show", "nope", ok=False)
        self.assertIn("no certificate named `nope`", res.stderr)

        # which: how each host would be served.
        which = self.cert("which", "shop.test").stdout
        self.assertEqual(field(which, "certificate"), "shop-2026")
        self.assertEqual(field(which, "how"), "exact (site shop)")
        which = self.cert("which", "blog.test").stdout
        self.assertEqual(field(which, "certificate"), "blog-auto")
        self.assertEqual(field(which, "how"), "exact, store (site blog)")
        self.assertEqual(field(self.cert("which", "other.test").stdout, "how"), "default")
        which = json.loads(self.cert("which", "blog.test", "--json").stdout)
        self.assertEqual((which["certificate"], which["how"], which["site"]),
                         ("blog-auto", "exact, store", "blog"))
        self.assertEqual(int(which["serial"], 16), self.blog.serial)

        # rm: refused while a site uses the certificate, naming it.
        res = self.cert("rm", "shop-2026", ok=False)
        self.assertIn("in use by site `shop`", res.stderr)
        res = self.cert("rm", "blog-auto", ok=False)
        self.assertIn("in use by site `blog`", res.stderr)
        self.cert("rm", "spare")
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs", "spare")))
        self.cert("rm", "spare", ok=False)

        # The daemon serves the store: by name, by coverage, and as `which` says.
        daemon = start_daemon(self, self.tmp, self.cfg)
        port = daemon.https_port
        self.assertEqual(self.handshake_serial(port, "shop.test"), self.shop.serial)
        self.assertEqual(self.handshake_serial(port, "blog.test"), self.blog.serial)
        for host in ("shop.test", "www.shop.test", "blog.test", "other.test"):
            which = self.cert("which", host).stdout
            self.assertEqual(int(field(which, "serial"), 16), self.handshake_serial(port, host),
                             host)

        # --replace, then a reload: the new certificate is served.
        res = self.add("shop-2026", self.shop2, "--replace")
        self.assertIn("replaced `shop-2026`", res.stdout)
        daemon.reload()
        self.assertEqual(self.handshake_serial(port, "shop.test"), self.shop2.serial)
        self.assertEqual(int(field(self.cert("which", "shop.test").stdout, "serial"), 16),
                         self.shop2.serial)

    def test_no_daemon_works_on_the_state_directory_and_says_so(self):
        """Nothing listens on admin.socket (no socket file, then a stale one):
        the state directory of the configuration, named on stderr without -v."""
        tmp = make_tempdir(self)
        state = os.path.join(tmp, "state")
        sock = os.path.join(state, "admin.sock")
        config_path = os.path.join(tmp, "tlsedge.yaml")
        with open(config_path, "w") as f:
            f.write(to_yaml(base_config(state, sites=[
                site("blog", ["blog.test"], [respond_route("/", 200, "blog\n")])])))
        said = f"tlsedge cert: no daemon listens on {sock}; working on the state directory {state}"

        def cert(*args):
            res = run([tlsedge_bin(), "cert", *args, "-c", config_path], timeout=60, cwd=tmp)
            self.assertEqual(res.returncode, 0, f"{args}\n{res.stdout}{res.stderr}")
            self.assertEqual(res.stderr.strip(), said)
            return res

        self.assertIn("added `spare`", cert("add", "spare", "--cert", self.spare.cert,
                                            "--key", self.spare.key).stdout)
        self.assertTrue(os.path.isdir(os.path.join(state, "certs", "spare")))
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(sock)
        stale.close()
        self.assertRegex(cert("list").stdout, r"spare\s+spare\.test")
        self.assertEqual([e["name"] for e in json.loads(cert("list", "--json").stdout)],
                         ["spare"])
        self.assertFalse(os.path.exists(os.path.join(tmp, "tlsedge-state")))
        # --offline says nothing unless asked (-v).
        res = run([tlsedge_bin(), "cert", "list", "--offline", "-c", config_path], timeout=60)
        self.assertEqual((res.returncode, res.stderr), (0, ""))

    def test_usage_errors(self):
        res = run([tlsedge_bin(), "cert", "add", "x"], timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--cert is required", res.stderr)
        res = run([tlsedge_bin(), "cert", "frobnicate"], timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("not expected: frobnicate", res.stderr)


if __name__ == "__main__":
    unittest.main()
