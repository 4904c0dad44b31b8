"""The HTTPS management API (`admin.listen`, issue 20) with the real daemon
and real clients: curl with API tokens and with client certificates (mTLS),
401 without credentials or with a removed token, 403 out of scope, the
failed-attempt limit per address (429 with Retry-After, while another
address is served), the refusals counted in /metrics, the audit log (who,
what, result; on the Unix socket too), tokens stored only as hashes, and a
config without TLS files refused."""

import json
import os
import stat
import unittest

from clients import curl
from common import make_tempdir, run, tlsedge_bin
from config import base_config, respond_route, site, to_yaml
from daemon import start_daemon
from pki import Certs
from scrape import scrape, value


class ManagementApiTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        c = cls.certs
        cls.server = c.leaf("admin", ["admin.test"])
        cls.site_leaf = c.leaf("shop", ["shop.test"])
        cls.upload = c.leaf("upload", ["upload.test"])
        cls.panel = c.leaf("panel", ["panel.test"], eku="clientAuth")
        cls.stranger = c.leaf("stranger", ["stranger.test"], eku="clientAuth")
        rogue_ca = Certs(os.path.join(cls.tmp, "rogue"))
        cls.rogue = rogue_ca.leaf("rogue", ["panel.test"], eku="clientAuth")  # a CN we trust, a CA we don't
        cls.state = os.path.join(cls.tmp, "state")
        cfg = base_config(cls.state, certificates={"shop": cls.site_leaf},
                          sites=[site("shop", ["shop.test"], [respond_route("/", 200, "shop")],
                                      certificate="shop")])
        cfg["admin"] = {
            "socket": os.path.join(cls.tmp, "admin.sock"),
            "listen": "127.0.0.1:0",
            "tls": {"certificate": cls.server.cert, "key": cls.server.key,
                    "client_ca": c.ca_cert},
            "clients": {"panel.test": ["read", "certificates"]},
        }
        cls.config_path = os.path.join(cls.tmp, "tlsedge.yaml")
        with open(cls.config_path, "w") as f:
            f.write(to_yaml(cfg))
        cls.reader = cls.token("add", "reader", "--scopes", "read")
        cls.writer = cls.token("add", "writer", "--scopes", "read,certificates")
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.port = cls.daemon.management_address[1]

    @classmethod
    def token(cls, *args):
        res = run([tlsedge_bin(), "token", *args, "-c", cls.config_path], check=True)
        return res.stdout.strip()

    def request(self, method, path, *, token=None, cert=None, body=None, source="127.0.0.1"):
        """curl to the management listener; returns (status, headers text, body)."""
        args = ["-i", "--cacert", self.certs.ca_cert, "--interface", source,
                "--resolve", f"admin.test:{self.port}:127.0.0.1", "-X", method]
        if token is not None:
            args += ["-H", f"Authorization: Bearer {token}"]
        if cert is not None:
            args += ["--cert", cert.cert, "--key", cert.key]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", body]
        res = curl(args + [f"https://admin.test:{self.port}{path}"])
        self.assertEqual(res.returncode, 0, res.stderr)
        head, _, text = res.stdout.replace("\r\n", "\n").partition("\n\n")
        return int(head.split()[1]), head, text

    def upload_body(self, leaf):
        with open(leaf.cert) as f, open(leaf.key) as k:
            return json.dumps({"chain": f.read(), "key": k.read(), "replace": True})

    def audit_lines(self):
        with open(os.path.join(self.state, "audit.log")) as f:
            return [json.loads(line) for line in f]

    def refused(self, reason):
        return value(scrape(self.daemon.metrics_address), "tlsedge_admin_refused_total",
                     reason=reason)

    def test_without_credentials_401_and_counted(self):
        before = self.refused("unauthenticated")
        status, head, body = self.request("GET", "/v1/certificates", source="127.0.0.4")
        self.assertEqual(status, 401, body)
        self.assertIn("WWW-Authenticate: Bearer", head)
        self.assertIn("authentication required", json.loads(body)["error"])
        self.assertEqual(self.refused("unauthenticated"), before + 1)

    def test_token_scopes(self):
        status, _, body = self.request("GET", "/v1/certificates", token=self.reader)
        self.assertEqual(status, 200, body)
        self.assertIsInstance(json.loads(body), list)
        before = self.refused("forbidden")
        status, _, body = self.request("PUT", "/v1/certificates/up1", token=self.reader,
                                       body=self.upload_body(self.upload), source="127.0.0.5")
        self.assertEqual(status, 403, body)
        self.assertIn('lacks the scope "certificates"', json.loads(body)["error"])
        self.assertEqual(self.refused("forbidden"), before + 1)
        put, _, body = self.request("PUT", "/v1/certificates/up1", token=self.writer,
                                    body=self.upload_body(self.upload))
        self.assertIn(put, (200, 201), body)
        with open(self.upload.key) as k:
            self.assertNotIn(k.read().splitlines()[1], body)
        status, _, body = self.request("GET", "/v1/certificates", token=self.reader)
        self.assertIn("up1", [c["name"] for c in json.loads(body)])
        entries = [e for e in self.audit_lines() if e["target"] == "/v1/certificates/up1"]
        self.assertEqual([(e["who"], e["method"], e["status"]) for e in entries],
                         [("token:reader", "PUT", 403), ("token:writer", "PUT", put)])
        self.assertEqual(entries[0]["from"], "127.0.0.5")

    def test_client_certificates(self):
        status, _, body = self.request("GET", "/v1/which?host=shop.test", cert=self.panel)
        self.assertEqual(status, 200, body)
        status, _, body = self.request("DELETE", "/v1/certificates/nonexistent", cert=self.panel)
        self.assertEqual(status, 404, body)
        self.assertEqual(self.audit_lines()[-1]["who"], "certificate:panel.test")
        # Verified, but not in admin.clients; and one from a CA not trusted.
        status, _, body = self.request("GET", "/v1/certificates", cert=self.stranger,
                                       source="127.0.0.6")
        self.assertEqual(status, 401, body)
        self.assertIn("stranger.test is not in admin.clients", body)
        status, _, body = self.request("GET", "/v1/certificates", cert=self.rogue,
                                       source="127.0.0.6")
        self.assertEqual(status, 401, body)

    def test_removed_token_stops_working(self):
        temp = self.token("add", "temporary", "--scopes", "read")
        self.assertEqual(self.request("GET", "/v1/acme", token=temp, source="127.0.0.7")[0], 200)
        self.token("rm", "temporary")
        status, _, body = self.request("GET", "/v1/acme", token=temp, source="127.0.0.7")
        self.assertEqual(status, 401, body)
        self.assertIn("unknown or removed API token", body)

    def test_tokens_stored_as_hashes_only(self):
        path = os.path.join(self.state, "admin-tokens.json")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            text = f.read()
        for secret in (self.reader, self.writer):
            self.assertTrue(secret.startswith("tle_"))
            self.assertNotIn(secret, text)
            self.assertNotIn(secret[4:], text)
        listed = json.loads(self.token("list", "--json"))
        self.assertIn({"name": "reader", "scopes": ["read"]},
                      [{k: t[k] for k in ("name", "scopes")} for t in listed])
        self.assertNotIn(self.reader, json.dumps(listed))

    def test_failed_attempts_limited_per_address(self):
        before = self.refused("rate_limited")
        statuses = [self.request("GET", "/v1/certificates", token="tle_guess" + str(i),
                                 source="127.0.0.9")[0] for i in range(12)]
        self.assertEqual(statuses[:10], [401] * 10)
        self.assertEqual(statuses[10:], [429, 429])
        status, head, _ = self.request("GET", "/v1/certificates", token=self.reader,
                                       source="127.0.0.9")
        self.assertEqual(status, 429)  # even with a good token, until the wait is over
        self.assertRegex(head, r"Retry-After: [1-9]")
        self.assertEqual(self.request("GET", "/v1/certificates", token=self.reader,
                                      source="127.0.0.10")[0], 200)
        self.assertEqual(self.refused("rate_limited"), before + 3)

    def test_unix_socket_needs_no_token_and_is_audited(self):
        res = curl(["--unix-socket", os.path.join(self.tmp, "admin.sock"), "-X", "DELETE",
                    "-w", "\n%{http_code}", "http://localhost/v1/certificates/missing"])
        self.assertTrue(res.stdout.endswith("404"), res.stdout)
        last = self.audit_lines()[-1]
        self.assertEqual((last["who"], last["from"], last["method"], last["status"]),
                         ("admin-socket", "unix", "DELETE", 404))


class ManagementConfigTest(unittest.TestCase):

    def test_listen_without_tls_is_refused(self):
        tmp = make_tempdir(self)
        cfg = base_config(os.path.join(tmp, "state"))
        cfg["admin"] = {"listen": "127.0.0.1:0"}
        path = os.path.join(tmp, "tlsedge.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        res = run([tlsedge_bin(), "check", "-c", path])
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("admin.listen", res.stdout + res.stderr)
        self.assertIn("HTTPS only", res.stdout + res.stderr)


if __name__ == "__main__":
    unittest.main()
