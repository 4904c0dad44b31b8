"""The web console (docs/console.md, issue 20) in a real browser against the
real daemon: Debian's chromium, driven by playwright-core from npm
(tests/browser/console_test.mjs), on the HTTPS management listener with an
API token. The page signs in, lists the certificates with their expiry
marks and the sites using them, shows a broken chain's message against the
chain field and a wrong key's against the key field, replaces the
certificate a site is served (and `which` changes to the new serial),
refuses to remove it while in use, runs the CSR workflow (request, install
the CA's answer, remove a pending request), renews an ACME site, shows the
sites (a YAML one read-only) and binds an API site to one certificate then
another (`which` follows) and switches its HTTPS redirect; it
makes no request to another origin and nothing breaks its
Content-Security-Policy. Screenshots go to the test's directory, or to
$TLSEDGE_CONSOLE_SCREENSHOTS (docs/console/ is refreshed that way).

chromium, node and playwright-core are installed by scripts/setup.sh; when
one is missing this test fails (it never skips)."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import unittest

from clients import curl
from common import make_tempdir, run, tlsedge_bin
from config import base_config, respond_route, site, to_yaml
from daemon import start_daemon
from pki import Certs

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER = os.path.join(HERE, "..", "browser")
CHROMIUM = "/usr/bin/chromium"
NODE_TIMEOUT = 240  # seconds for the whole browser run (each step: 30 s at most)


def node_modules():
    """Where scripts/setup.sh put tests/browser's packages (npm ci), keyed by
    the lock file's hash."""
    with open(os.path.join(BROWSER, "package-lock.json"), "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = os.environ.get("TLSEDGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                             "tlsedge")
    return os.path.join(cache, "npm", key, "node_modules")


class ConsoleTest(unittest.TestCase):

    def setUp(self):
        # Missing tools fail the test: scripts/setup.sh installs them all.
        self.node = shutil.which("node")
        self.assertIsNotNone(self.node, "node is missing: run scripts/setup.sh")
        self.assertTrue(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: run scripts/setup.sh")
        self.modules = node_modules()
        self.assertTrue(os.path.isdir(os.path.join(self.modules, "playwright-core")),
                        f"playwright-core is not in {self.modules}: run scripts/setup.sh")

        self.tmp = make_tempdir(self)
        c = self.certs = Certs(os.path.join(self.tmp, "pki"))
        self.admin_leaf = c.leaf("admin", ["admin.test"])
        self.shop1 = c.leaf("shop1", ["shop.test"])            # 3 days: marked expiring
        self.shop2 = c.leaf("shop2", ["shop.test"])            # the replacement
        self.other = c.leaf("other", ["shop.test"])            # its key is the wrong one
        self.old = c.leaf("old", ["old.test"], days=60)        # unused, removable
        self.news_a = c.leaf("news-a", ["news.test"], days=30)  # bound to the API site, then
        self.news_b = c.leaf("news-b", ["news.test"], days=40)  # this one, in the page
        self.rogue_ca = Certs(os.path.join(self.tmp, "rogue")).ca_cert  # links to nothing
        self.state = os.path.join(self.tmp, "state")
        self.config_path = os.path.join(self.tmp, "tlsedge.yaml")

        cfg = base_config(self.state, sites=[
            site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")]),
            site("auto", ["auto.test"], [respond_route("/", 200, "auto\n")], tls={"acme": True})])
        cfg["acme"] = {"directory": "internal"}
        cfg["admin"] = {"listen": "127.0.0.1:0",
                        "tls": {"certificate": self.admin_leaf.cert, "key": self.admin_leaf.key}}
        self.write_config(cfg)
        # The store before the start (no daemon yet: on the state directory),
        # then the site bound to its certificate.
        for name, leaf in (("shop-a", self.shop1), ("old", self.old), ("news-a", self.news_a),
                           ("news-b", self.news_b)):
            run([tlsedge_bin(), "cert", "add", name, "--cert", leaf.cert, "--key", leaf.key,
                 "-c", self.config_path], check=True)
        cfg["sites"][0]["tls"] = {"certificate": "shop-a"}
        self.write_config(cfg)
        self.token = run([tlsedge_bin(), "token", "add", "console", "--scopes", "all",
                          "-c", self.config_path], check=True).stdout.strip()
        self.daemon = start_daemon(self, self.tmp, cfg)
        self.url = f"https://127.0.0.1:{self.daemon.management_address[1]}"
        # A site made through the API (on the Unix socket), which the page can change.
        put = curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                    "--unix-socket", os.path.join(self.state, "admin.sock"),
                    "--data-binary", json.dumps({"hosts": ["news.test"], "routes": [
                        respond_route("/", 200, "news\n")]}),
                    "http://tlsedge/v1/sites/news"])
        self.assertEqual(put.stdout, "201")

    def write_config(self, cfg):
        with open(self.config_path, "w") as f:
            f.write(to_yaml(cfg))

    def read(self, path):
        with open(path) as f:
            return f.read()

    def run_browser(self, plan):
        """Runs console_test.mjs in its own process group and returns (exit
        status, report). Stopped by its PID (the group's id, which chromium
        shares) if it overruns."""
        plan_path = os.path.join(self.tmp, "plan.json")
        with open(plan_path, "w") as f:
            json.dump(plan, f)
        env = dict(os.environ, NODE_PATH=self.modules)
        proc = subprocess.Popen([self.node, os.path.join(BROWSER, "console_test.mjs"), plan_path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=NODE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
            self.fail(f"the browser test ran over {NODE_TIMEOUT} s\n{out.decode()}\n{err.decode()}")
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever chromium left behind
            except ProcessLookupError:
                pass
        text = out.decode("utf-8", "replace")
        try:
            report = json.loads(text.strip().splitlines()[-1])
        except (IndexError, ValueError):
            self.fail(f"no report from the browser test (exit {proc.returncode})\n"
                      f"stdout:\n{text}\nstderr:\n{err.decode('utf-8', 'replace')}")
        return proc.returncode, report, err.decode("utf-8", "replace")

    def test_console_in_chromium(self):
        shots = os.environ.get("TLSEDGE_CONSOLE_SCREENSHOTS") or os.path.join(self.tmp, "shots")
        os.makedirs(shots, exist_ok=True)
        ext = os.path.join(self.tmp, "req-ext.cnf")
        with open(ext, "w") as f:
            f.write("[v3_leaf]\nbasicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n"
                    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
                    "subjectAltName = DNS:req.test,DNS:www.req.test\n")
        plan = {
            "url": self.url,
            "token": self.token,
            "chromium": CHROMIUM,
            "user_data_dir": os.path.join(self.tmp, "chromium-profile"),
            "screenshots": shots,
            "bound": {"certificate": "shop-a", "site": "shop", "host": "shop.test"},
            "removable": "old",
            "upload": {
                "name": "shop-a",
                "broken_chain": self.read(self.shop2.cert) + self.read(self.rogue_ca),
                "good_chain": self.read(self.shop2.cert),
                "good_key": self.read(self.shop2.key),
                "other_key": self.read(self.other.key),
            },
            "markup_name": "<img src=x onerror=alert(1)><b>x",
            "csr": {
                "name": "req", "discarded": "req-discarded",
                "hosts": ["req.test", "www.req.test"], "subject": "/O=Console Test/CN=req.test",
                "sign": {"csr": os.path.join(self.tmp, "req.csr"), "ca": self.certs.ca_cert,
                         "ca_key": self.certs.ca_key, "ext": ext,
                         "out": os.path.join(self.tmp, "req-signed.pem"),
                         "serial": str(0x5eed_c0de_0001)},
            },
            "acme_site": "auto",
            "sites": {"yaml_site": "shop", "api_site": "news", "host": "news.test",
                      "certificates": ["news-a", "news-b"],
                      "acme_error": "host news.test (192.0.2.10) does not reach this edge: <b>x</b>"},
        }
        status, report, stderr = self.run_browser(plan)
        detail = json.dumps(report, indent=1) + "\nstderr:\n" + stderr + "\n" + self.daemon.log()
        self.assertEqual(status, 0, detail)
        self.assertTrue(report["ok"], detail)
        self.assertEqual(report["console_errors"], [], detail)
        self.assertEqual(report["foreign_requests"], [], detail)
        seen = report["observed"]

        # The page: redirected from /, under its policy.
        self.assertEqual(seen["url"], self.url + "/console/")
        self.assertIn("script-src 'self'", seen["csp"])
        self.assertIn("unknown or removed API token", seen["wrong_token"])
        # The list: site, issuer, expiry marks.
        self.assertIn("shop", seen["bound_row"])
        self.assertIn("tlsedge test CA", seen["issuer"])
        self.assertRegex(seen["expiring_mark"], r"^[0-3] days? left$")
        self.assertRegex(seen["good_mark"], r"^(59|60) days$")
        # Refusals against their fields.
        self.assertIn("chain: the chain does not link", seen["chain_error"])
        self.assertEqual(seen["key_error_then"], "")
        self.assertIn("key: the private key does not match the leaf certificate", seen["key_error"])
        self.assertEqual(seen["chain_error_then"], "")
        # The replace, seen by `which` in the page and by the daemon.
        self.assertEqual(int(seen["which_before"], 16), self.shop1.serial)
        self.assertEqual(int(seen["which_after"], 16), self.shop2.serial)
        self.assertEqual(seen["which_site"], "shop")
        self.assertTrue(seen["upload_message"].startswith("Replaced shop-a"))
        which = json.loads(curl(["-s", "-k", "-H", f"Authorization: Bearer {self.token}",
                                 self.url + "/v1/which?host=shop.test"]).stdout)
        self.assertEqual(int(which["serial"], 16), self.shop2.serial)
        # Markup in a message stays text.
        self.assertIn("<img src=x onerror=alert(1)><b>x", seen["markup_text"])
        self.assertEqual(seen["markup_elements"], 0)
        # Removal: refused in use, done when unused.
        self.assertIn("in use by site `shop`", seen["in_use"])
        self.assertIn("Removed the certificate old", seen["removed_message"])
        # The CSR workflow, ending in an installed certificate.
        self.assertTrue(seen["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----"))
        self.assertTrue(seen["complete_message"].startswith("Added req"))
        listed = json.loads(curl(["-s", "-k", "-H", f"Authorization: Bearer {self.token}",
                                  self.url + "/v1/certificates"]).stdout)
        names = {c["name"] for c in listed}
        self.assertTrue({"req", "shop-a"} <= names, names)
        self.assertFalse({"old", "req-discarded"} & names, names)
        self.assertEqual([c["serial"] for c in listed if c["name"] == "req"],
                         [format(0x5eed_c0de_0001, "X")])
        # ACME.
        self.assertEqual(seen["acme_certificate"], "acme-auto")
        self.assertIn("Renewal of auto started", seen["renew_message"])
        # Sites: the YAML one read-only, the API one bound and switched.
        self.assertEqual(seen["yaml_source"], "config")
        self.assertEqual(seen["yaml_bound"], "shop-a")
        self.assertIn("defined in the configuration file", seen["yaml_note"])
        self.assertEqual(seen["yaml_controls"], 0)
        self.assertTrue(seen["yaml_redirect_disabled"])
        self.assertEqual(seen["acme_site_bound"], "ACME")
        self.assertEqual(seen["api_source"], "api")
        self.assertEqual(seen["api_bound_before"], "newest covering")
        self.assertEqual(seen["which_bound"], ["news-a", "news-b"])
        self.assertEqual(seen["bound_message"], "Saved.")
        self.assertIn("news", seen["cert_sites"])
        # redirect_https defaults to on (the daemon has an HTTP listener): switched off.
        self.assertEqual([seen["redirect_before"], seen["redirect_after"]], [True, False])
        self.assertFalse(seen["redirect_checked"])
        news = json.loads(curl(["-s", "-k", "-H", f"Authorization: Bearer {self.token}",
                                self.url + "/v1/sites/news"]).stdout)
        self.assertEqual(news["tls"], {"certificate": "news-b"})
        self.assertFalse(news["redirect_https"])
        which = json.loads(curl(["-s", "-k", "-H", f"Authorization: Bearer {self.token}",
                                 self.url + "/v1/which?host=news.test"]).stdout)
        self.assertEqual(int(which["serial"], 16), self.news_b.serial)
        self.assertIn("no certificate named `news-a`", seen["refused_message"])
        self.assertEqual(seen["bound_after_refusal"], "news-b")
        self.assertEqual(seen["site_acme_error"],
                         "host news.test (192.0.2.10) does not reach this edge: <b>x</b>")
        self.assertEqual(seen["site_acme_markup"], 0)
        self.assertIsNone(seen["token_after_sign_out"])
        for name in ("certificates", "upload-error", "which", "csr", "acme", "sites"):
            path = os.path.join(shots, name + ".png")
            self.assertGreater(os.path.getsize(path), 1000, path)
        # Nothing of the private keys reached the daemon's log.
        for leaf in (self.shop2, self.other):
            self.assertNotIn(self.read(leaf.key).splitlines()[1], self.daemon.log())

    def test_served_headers_with_curl(self):
        """The page's files with their types and headers, no token needed;
        an unknown file 404; the API itself still asks for a token."""
        for path, kind in (("/console/", "text/html"), ("/console/app.js", "text/javascript"),
                           ("/console/style.css", "text/css")):
            res = curl(["-s", "-k", "-i", self.url + path])
            head = res.stdout.split("\r\n\r\n", 1)[0]
            self.assertIn("HTTP/1.1 200", head)
            self.assertIn(f"Content-Type: {kind}; charset=utf-8", head)
            self.assertIn("Content-Security-Policy: default-src 'none'; script-src 'self'", head)
            self.assertIn("X-Content-Type-Options: nosniff", head)
            self.assertIn("X-Frame-Options: DENY", head)
            self.assertIn("Cache-Control: no-store", head)
        self.assertEqual(curl(["-s", "-k", "-o", "/dev/null", "-w", "%{http_code}",
                               self.url + "/console/nope.js"]).stdout, "404")
        self.assertEqual(curl(["-s", "-k", "-o", "/dev/null", "-w", "%{http_code}",
                               self.url + "/v1/certificates"]).stdout, "401")
        # The same page on the Unix socket.
        res = curl(["-s", "--unix-socket", os.path.join(self.state, "admin.sock"),
                    "http://tlsedge/console/app.js"])
        self.assertIn("'/v1/sites'", res.stdout)


if __name__ == "__main__":
    unittest.main()
