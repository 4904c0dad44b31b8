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

    def test_request_then_add_the_signed_certificate(self):
        """`cert request` keeps the key in the store (0600, never printed)
        and prints the CSR; the CA's certificate completes it with `cert add
        NAME --cert` (no --key), on the state directory and through the
        daemon, which then serves it; a certificate for another key is
        refused naming both, and the request stays."""
        tmp = make_tempdir(self)
        state = os.path.join(tmp, "state")
        config_path = os.path.join(tmp, "tlsedge.yaml")
        cfg = base_config(state, certificates={"cdn": self.cdn}, default_certificate="cdn",
                          sites=[site("ov", ["ov.test", "www.ov.test"],
                                      [respond_route("/", 200, "ov\n")])])
        with open(config_path, "w") as f:
            f.write(to_yaml(cfg))

        def cert(*args, ok=True):
            res = run([tlsedge_bin(), "cert", *args, "-c", config_path], timeout=60)
            self.assertEqual(res.returncode == 0, ok,
                             f"cert {' '.join(args)}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
            return res

        def csr_file(name, pem):
            path = os.path.join(tmp, name + ".csr")
            with open(path, "w") as f:
                f.write(pem)
            return path

        # On the state directory (no daemon yet): stdout is the CSR alone.
        res = cert("request", "ov-2026", "--hosts", "ov.test,www.ov.test")
        self.assertTrue(res.stdout.startswith("-----BEGIN CERTIFICATE REQUEST-----"), res.stdout)
        self.assertTrue(res.stdout.endswith("-----END CERTIFICATE REQUEST-----\n"))
        self.assertNotIn("PRIVATE KEY", res.stdout + res.stderr)
        pending = os.path.join(state, "requests", "ov-2026")
        key = os.path.join(pending, "privkey.pem")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        with open(key) as f:
            self.assertNotIn(f.read().splitlines()[1], res.stdout + res.stderr)
        self.assertFalse(os.path.exists(os.path.join(state, "certs", "ov-2026")))
        csr = csr_file("ov-2026", res.stdout)
        text = run(["openssl", "req", "-in", csr, "-noout", "-verify", "-text"], timeout=30)
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("DNS:ov.test, DNS:www.ov.test", text.stdout)

        # list: pending, with its hosts and when requested.
        rows = {l.split()[0]: l for l in cert("list").stdout.splitlines()[1:] if l.strip()}
        self.assertRegex(rows["ov-2026"], r"ov\.test,www\.ov\.test\s.*PENDING request since "
                                          r"\d{4}-\d\d-\d\dT")
        listed = {e["name"]: e for e in json.loads(cert("list", "--json").stdout)}
        self.assertTrue(listed["ov-2026"]["pending"])
        self.assertEqual(listed["ov-2026"]["dns_names"], ["ov.test", "www.ov.test"])

        # Name clashes: a pending request, a stored certificate.
        res = cert("request", "ov-2026", "--hosts", "x.test", ok=False)
        self.assertIn("a certificate request named `ov-2026` is pending", res.stderr)
        cert("add", "stored", "--cert", self.spare.cert, "--key", self.spare.key)
        res = cert("request", "stored", "--hosts", "x.test", ok=False)
        self.assertIn("a certificate named `stored` already exists", res.stderr)
        res = cert("add", "ov-2026", "--cert", self.spare.cert, "--key", self.spare.key, ok=False)
        self.assertIn("is pending", res.stderr)

        # rm of a pending request (this one with a subject, as OV/EV CAs want).
        res = cert("request", "dropped", "--hosts", "dropped.test", "--key-type", "ecdsa-p384",
                   "--subject", "/C=DE/O=Example GmbH/CN=dropped.test")
        text = run(["openssl", "req", "-in", csr_file("dropped", res.stdout), "-noout",
                    "-verify", "-subject"], timeout=30)
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertRegex(text.stdout, r"C\s*=\s*DE, O\s*=\s*Example GmbH, CN\s*=\s*dropped\.test")
        cert("rm", "dropped")
        self.assertFalse(os.path.exists(os.path.join(state, "requests", "dropped")))

        # The daemon serves the default until the signed certificate comes back.
        daemon = start_daemon(self, tmp, cfg)
        port = daemon.https_port
        self.assertEqual(self.handshake_serial(port, "ov.test"), self.cdn.serial)

        # Through the daemon: a certificate for another key is refused, naming
        # the file and the pending request; the request is left as it was.
        res = cert("add", "ov-2026", "--cert", self.blog.cert, ok=False)
        self.assertIn(self.blog.cert, res.stderr)
        self.assertIn("pending request `ov-2026`", res.stderr)
        self.assertIn("does not match", res.stderr)
        self.assertTrue(os.path.exists(key))

        signed, serial = self.certs.sign_csr("ov-2026", csr, ["ov.test", "www.ov.test"])
        res = cert("add", "ov-2026", "--cert", signed, "-v")
        self.assertIn("through the daemon", res.stderr)
        self.assertIn("added `ov-2026`", res.stdout)
        self.assertFalse(os.path.exists(pending))
        self.assertEqual(self.handshake_serial(port, "ov.test"), serial)
        self.assertEqual(self.handshake_serial(port, "www.ov.test"), serial)
        listed = {e["name"]: e for e in json.loads(cert("list", "--json").stdout)}
        self.assertFalse(listed["ov-2026"]["pending"])
        self.assertEqual(int(listed["ov-2026"]["serial"], 16), serial)

        # request, list and rm through the daemon as well.
        res = cert("request", "next", "--hosts", "next.test", "--json")
        self.assertTrue(json.loads(res.stdout)["csr"].startswith(
            "-----BEGIN CERTIFICATE REQUEST-----"))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(state, "requests", "next",
                                                           "privkey.pem")).st_mode), 0o600)
        self.assertIn("PENDING", cert("list").stdout)
        cert("rm", "next")
        self.assertFalse(os.path.exists(os.path.join(state, "requests", "next")))

    def test_usage_errors(self):
        res = run([tlsedge_bin(), "cert", "add", "x"], timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--cert is required", res.stderr)
        res = run([tlsedge_bin(), "cert", "request", "x"], timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--hosts is required", res.stderr)
        res = run([tlsedge_bin(), "cert", "frobnicate"], timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("not expected: frobnicate", res.stderr)


if __name__ == "__main__":
    unittest.main()
