"""The plain HTTP listener: redirects to HTTPS, ACME HTTP-01 challenges,
sites served plainly (redirect_https: false)."""

import base64
import http.client
import os
import secrets
import unittest

from common import make_tempdir
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import header_values, pattern_bytes, start_origin
from clients import curl, http_request, https_request


def new_token():
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


class HttpListenerTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("all", ["shop.test", "www.shop.test", "old.test",
                                          "plain.test", "*.wild.test"])
        cls.origin = start_origin(cls, "origin")
        state = os.path.join(cls.tmp, "state")
        challenges = os.path.join(state, "acme", "challenges")
        os.makedirs(challenges)
        thumb = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        cls.tokens = {}
        for _ in range(3):
            t = new_token()
            cls.tokens[t] = f"{t}.{thumb}"
            with open(os.path.join(challenges, t), "w") as f:
                f.write(cls.tokens[t])
        # Something outside the challenge directory that must never be served.
        with open(os.path.join(state, "acme", "secret"), "w") as f:
            f.write("do-not-serve")
        cfg = base_config(
            state, certificates={"all": cls.leaf}, default_certificate="all",
            sites=[
                site("shop", ["shop.test", "www.shop.test"],
                     [upstream_route("/", "o")]),
                site("old", ["old.test"], [upstream_route("/", "o")],
                     redirect_status=301),
                site("plain", ["plain.test"], [
                    upstream_route("/", "o"),
                    respond_route("/static", 200, "plain static\n", "text/plain"),
                ], redirect_https=False, hsts={"max_age": 600}),
                site("wild", ["*.wild.test"], [upstream_route("/", "o")]),
            ],
            upstreams={"o": [cls.origin.address]})
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.http_port = cls.daemon.http_port
        cls.https_port = cls.daemon.https_port

    def get(self, path, host, method="GET", body=None):
        return http_request(self.http_port, path, method=method, body=body,
                            headers={"Host": host})

    def assert_not_proxied(self, before):
        self.assertEqual(self.origin.request_count(), before, "request reached the origin")

    # --- redirects ---

    def test_redirect_308_keeps_path_and_query(self):
        before = self.origin.request_count()
        r = self.get("/a/b%20c/?x=1&y=two&z", "shop.test")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers.get("Location"),
                         f"https://shop.test:{self.https_port}/a/b%20c/?x=1&y=two&z")
        self.assert_not_proxied(before)

    def test_redirect_drops_http_port_from_host(self):
        r = self.get("/p?q=1", f"www.shop.test:{self.http_port}")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers.get("Location"), f"https://www.shop.test:{self.https_port}/p?q=1")

    def test_redirect_post_is_308(self):
        r = self.get("/form", "shop.test", method="POST", body=b"a=1")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers.get("Location"), f"https://shop.test:{self.https_port}/form")

    def test_redirect_301_when_configured(self):
        r = self.get("/old/page?id=7", "old.test")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.headers.get("Location"), f"https://old.test:{self.https_port}/old/page?id=7")

    def test_redirect_wildcard_keeps_host(self):
        r = self.get("/w", "x.wild.test")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers.get("Location"), f"https://x.wild.test:{self.https_port}/w")

    def test_redirect_target_is_served(self):
        r = self.get("/follow?me=1", "shop.test")
        loc = r.headers.get("Location")
        self.assertEqual(loc, f"https://shop.test:{self.https_port}/follow?me=1")
        r2 = https_request(self.https_port, "shop.test", "/follow?me=1",
                           ca=self.certs.ca_cert)
        self.assertEqual(r2.status, 200)
        self.assertEqual(r2.json()["path"], "/follow?me=1")
        self.assertEqual(header_values(r2.json(), "X-Forwarded-Proto"), ["https"])

    def test_redirect_with_curl(self):
        res = curl(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                    "-H", "Host: shop.test", f"http://127.0.0.1:{self.http_port}/c?d=e"])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, f"308 https://shop.test:{self.https_port}/c?d=e")

    # --- ACME HTTP-01 challenges ---

    def test_challenge_answered(self):
        before = self.origin.request_count()
        for token, keyauth in self.tokens.items():
            r = self.get(f"/.well-known/acme-challenge/{token}", "shop.test")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, keyauth.encode())
            self.assertTrue((r.headers.get("Content-Type") or "").startswith("text/plain"),
                            r.headers.get("Content-Type"))
        self.assert_not_proxied(before)

    def test_challenge_with_curl(self):
        token, keyauth = next(iter(self.tokens.items()))
        res = curl(["-H", "Host: www.shop.test",
                    f"http://127.0.0.1:{self.http_port}/.well-known/acme-challenge/{token}"])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, keyauth)

    def test_unknown_token_404(self):
        before = self.origin.request_count()
        for host in ("shop.test", "plain.test"):
            r = self.get(f"/.well-known/acme-challenge/{new_token()}", host)
            self.assertEqual(r.status, 404, host)
            self.assertNotIn(b"do-not-serve", r.body)
        self.assert_not_proxied(before)

    def test_challenge_not_proxied_without_redirect(self):
        before = self.origin.request_count()
        token, keyauth = next(iter(self.tokens.items()))
        r = self.get(f"/.well-known/acme-challenge/{token}", "plain.test")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, keyauth.encode())
        self.assert_not_proxied(before)

    def test_challenge_path_traversal_refused(self):
        before = self.origin.request_count()
        for path in ("/.well-known/acme-challenge/..%2Fsecret",
                     "/.well-known/acme-challenge/../secret",
                     "/.well-known/acme-challenge/%2E%2E%2Fsecret"):
            r = self.get(path, "plain.test")
            self.assertNotEqual(r.status, 200, path)
            self.assertNotIn(b"do-not-serve", r.body, path)
        self.assert_not_proxied(before)

    # --- redirect_https: false ---

    def test_plain_site_proxied_with_proto_http(self):
        r = self.get("/x/y?z=1", "plain.test")
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual(echo["origin"], "origin")
        self.assertEqual(echo["path"], "/x/y?z=1")
        self.assertEqual(header_values(echo, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(header_values(echo, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(header_values(echo, "X-Forwarded-Host"), ["plain.test"])
        self.assertIsNone(r.headers.get("Strict-Transport-Security"))

    def test_plain_site_post_body(self):
        body = pattern_bytes(200_000, 5)
        r = self.get("/post", "plain.test", method="POST", body=body)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_len"], len(body))

    def test_plain_site_static_route(self):
        r = self.get("/static", "plain.test")
        self.assertEqual((r.status, r.body), (200, b"plain static\n"))
        self.assertIsNone(r.headers.get("Strict-Transport-Security"))

    def test_plain_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=20)
        self.addCleanup(conn.close)
        sock = None
        for i in range(5):
            conn.request("GET", f"/k/{i}", headers={"Host": "plain.test"})
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            self.assertIsNotNone(conn.sock, f"request {i}: connection closed")
            sock = sock or conn.sock
            self.assertIs(conn.sock, sock)
        # Redirects keep the connection open too.
        conn.request("GET", "/r", headers={"Host": "shop.test"})
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 308)
        self.assertIs(conn.sock, sock)


if __name__ == "__main__":
    unittest.main()
