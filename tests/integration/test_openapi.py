"""docs/openapi.yaml against the running daemon (issue 20): every operation
the file documents is called over the HTTPS management listener with a
token, and each answer's status is one the file lists for it and its body
matches that response's JSON schema (python3-jsonschema). The calls cover
success and the documented refusals; an operation the file adds without a
call here fails the test, so the file cannot drift from the code."""

import json
import os
import time
import unittest

import jsonschema
import yaml

from clients import curl
from common import make_tempdir, run, tlsedge_bin
from config import base_config, respond_route, site, to_yaml
from daemon import start_daemon
from pki import Certs

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "openapi.yaml")


class OpenApiTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(DOC) as f:
            cls.doc = yaml.safe_load(f)
        cls.tmp = make_tempdir(cls)
        certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.ca = certs.ca_cert
        server = certs.leaf("admin", ["admin.test"])
        cls.upload = certs.leaf("upload", ["upload.test"])
        state = os.path.join(cls.tmp, "state")
        cfg = base_config(state, sites=[
            site("shop", ["shop.test"], [respond_route("/", 200, "shop")], tls={"acme": True})])
        cfg["acme"] = {"directory": "internal"}
        cfg["admin"] = {"listen": "127.0.0.1:0",
                        "tls": {"certificate": server.cert, "key": server.key}}
        path = os.path.join(cls.tmp, "tlsedge.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        cls.token = run([tlsedge_bin(), "token", "add", "panel", "--scopes", "all", "-c", path],
                        check=True).stdout.strip()
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.port = cls.daemon.management_address[1]
        # Served, not only issued: the "issued" line is logged where the
        # certificate is stored, before the control loop reads it back.
        deadline = time.monotonic() + 40
        while cls.status_of("/v1/which?host=shop.test") != "200":
            if time.monotonic() > deadline:
                raise AssertionError(f"no certificate served\n{cls.daemon.log()}")
            time.sleep(0.05)

    @classmethod
    def status_of(cls, path):
        """The status code of a GET with the token."""
        res = curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", cls.ca,
                    "--resolve", f"admin.test:{cls.port}:127.0.0.1",
                    "-H", f"Authorization: Bearer {cls.token}",
                    f"https://admin.test:{cls.port}{path}"])
        return res.stdout

    def call(self, method, path, body=None, token=True):
        args = ["-i", "--cacert", self.ca, "-X", method,
                "--resolve", f"admin.test:{self.port}:127.0.0.1"]
        if token:
            args += ["-H", f"Authorization: Bearer {self.token}"]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        res = curl(args + [f"https://admin.test:{self.port}{path}"])
        self.assertEqual(res.returncode, 0, res.stderr)
        head, _, text = res.stdout.replace("\r\n", "\n").partition("\n\n")
        return int(head.split()[1]), text

    def check(self, template, method, path, body=None, expect=None, token=True):
        """Calls, then checks the answer against the documented response."""
        operation = self.doc["paths"][template][method.lower()]
        status, text = self.call(method, path, body, token)
        if expect is not None:
            self.assertEqual(status, expect, text)
        responses = operation["responses"]
        self.assertIn(str(status), responses, f"{method} {path}: {status} undocumented: {text}")
        response = responses[str(status)]
        if "$ref" in response:
            response = self.doc["components"]["responses"][response["$ref"].split("/")[-1]]
        schema = dict(response["content"]["application/json"]["schema"])
        schema["components"] = self.doc["components"]  # where the $refs point
        jsonschema.validate(json.loads(text), schema,
                            cls=jsonschema.Draft202012Validator)
        self.called.add((template, method.lower()))
        return json.loads(text)

    def test_every_operation_answers_as_documented(self):
        self.called = set()
        with open(self.upload.cert) as f, open(self.upload.key) as k:
            chain, key = f.read(), k.read()
        c = "/v1/certificates/{name}"
        self.check("/v1/certificates", "GET", "/v1/certificates", expect=200)
        self.check("/v1/certificates", "GET", "/v1/certificates", token=False, expect=401)
        self.check(c, "PUT", "/v1/certificates/up1", {"chain": chain, "key": key}, expect=201)
        self.check(c, "PUT", "/v1/certificates/up1", {"chain": chain, "key": key, "replace": True},
                   expect=200)
        self.check(c, "PUT", "/v1/certificates/up2", {"chain": "junk", "key": key}, expect=422)
        self.check(c, "PUT", "/v1/certificates/up2", {"chain": chain, "nope": 1}, expect=400)
        self.check(c, "GET", "/v1/certificates/up1", expect=200)
        self.check(c, "GET", "/v1/certificates/none", expect=404)
        made = self.check(c, "POST", "/v1/certificates/req1", {"hosts": ["a.test"]}, expect=201)
        self.assertNotIn("PRIVATE KEY", json.dumps(made))
        listed = self.check("/v1/certificates", "GET", "/v1/certificates", expect=200)
        self.assertTrue(any(e["name"] == "req1" and e["pending"] for e in listed), listed)
        self.check(c, "DELETE", "/v1/certificates/req1", expect=200)
        self.check(c, "DELETE", "/v1/certificates/up1", expect=200)
        self.check(c, "DELETE", "/v1/certificates/up1", expect=404)
        self.check("/v1/which", "GET", "/v1/which?host=shop.test", expect=200)
        self.check("/v1/which", "GET", "/v1/which?host=none.test", expect=404)
        sites = self.check("/v1/acme", "GET", "/v1/acme", expect=200)["sites"]
        self.assertEqual([s["site"] for s in sites], ["shop"])
        self.check("/v1/acme/{site}/renew", "POST", "/v1/acme/none/renew", expect=404)
        self.check("/v1/acme/{site}/revoke", "POST", "/v1/acme/shop/revoke",
                   {"reason": "keyCompromise"}, expect=202)
        # An order is running, or (the local CA is quick) it is done already.
        self.check("/v1/acme/{site}/renew", "POST", "/v1/acme/shop/renew")
        s = "/v1/sites/{name}"
        news = {"hosts": ["news.test"], "tls": {"acme": True},
                "routes": [{"path": "/", "respond": {"status": 200}}],
                "redirect_https": False}
        self.check(s, "PUT", "/v1/sites/news", news, expect=201)
        self.check(s, "PUT", "/v1/sites/news", {**news, "redirect_https": True}, expect=200)
        self.check(s, "PUT", "/v1/sites/bad", {**news, "hosts": ["shop.test"]}, expect=422)
        self.check(s, "PUT", "/v1/sites/shop", news, expect=409)
        listed = self.check("/v1/sites", "GET", "/v1/sites", expect=200)
        self.assertEqual({(e["name"], e["source"]) for e in listed},
                         {("shop", "config"), ("news", "api")})
        self.check(s, "GET", "/v1/sites/news", expect=200)
        self.check(s, "DELETE", "/v1/sites/news", expect=200)
        self.check(s, "DELETE", "/v1/sites/news", expect=404)
        self.check(s, "GET", "/v1/sites/news", expect=404)
        documented = {(path, method) for path, ops in self.doc["paths"].items()
                      for method in ops if method in ("get", "put", "post", "delete")}
        self.assertEqual(documented - self.called, set(), "documented but never called")


if __name__ == "__main__":
    unittest.main()
