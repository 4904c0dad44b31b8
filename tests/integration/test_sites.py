"""Sites managed at runtime (admin API /v1/sites, `tlsedge site`), with the
real daemon: a site created through the API is served to a real TLS client
(its certificate, its route to an existing upstream, its HTTP->HTTPS
redirect and HSTS) without a reload; a change is served; a removed site's
host is no longer served; invalid bodies get the YAML's messages at the
body's positions; sites of the YAML are read-only and their names and
hosts are refused; API sites survive a SIGHUP and a restart; an API site
with `tls: {acme: true}` gets its certificate (from the local CA) and is
served with it."""

import json
import os
import ssl
import time
import unittest

from clients import curl, curl_https, s_client, s_client_leaf, tls_handshake
from common import make_tempdir, run, tlsedge_bin
from config import base_config, respond_route, site
from daemon import start_daemon
from origin import start_origin
from pki import Certs


class SitesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.cdn = cls.certs.leaf("cdn", ["cdn.test"])
        cls.news = cls.certs.leaf("news", ["news.test", "www.news.test"])
        cls.origin = start_origin(cls, "news-origin")

    def setUp(self):
        self.dir = make_tempdir(self)
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state)
        self.sock = os.path.join(self.state, "admin.sock")
        self.cfg = base_config(
            self.state,
            certificates={"cdn": self.cdn, "news-cert": self.news},
            default_certificate="cdn",
            upstreams={"origin": [self.origin.address]},
            sites=[site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")])])

    def api(self, method, name="", body=None):
        """curl --unix-socket: (status, parsed JSON body)."""
        args = ["--unix-socket", self.sock, "-w", "\n%{http_code}", "-X", method]
        if body is not None:
            args += ["--data-binary", body if isinstance(body, str) else json.dumps(body)]
        res = curl([*args, "http://tlsedge/v1/sites" + (f"/{name}" if name else "")])
        text, _, code = res.stdout.rpartition("\n")
        return int(code), json.loads(text) if text else None

    def site_cli(self, *args, ok=True):
        res = run([tlsedge_bin(), "site", *args, "--socket", self.sock], timeout=60)
        self.assertEqual(res.returncode, 0 if ok else 1, f"site {args}: {res.stdout}{res.stderr}")
        return res

    def get(self, port, host, path="/"):
        res, status, body = curl_https(port, host, path, ca=self.certs.ca_cert,
                                       extra=["-D", "-"], verbose=False)
        return status, body

    def assert_not_served(self, port, host):
        """No site for `host`: the default certificate (cdn's, which a client
        checking `host` refuses) and no route (404)."""
        self.assertEqual(self.served(port, host), (self.cdn.serial, self.cdn.subject_cn))
        res, status, _ = curl_https(port, host, "/hello", ca=self.certs.ca_cert, verbose=False)
        self.assertEqual(status, 0, res.stdout)
        _, status, _ = curl_https(port, host, "/hello", ca=self.certs.ca_cert, extra=["-k"],
                                  verbose=False)
        self.assertEqual(status, 404)

    def served(self, port, host):
        """(serial, CN) of the certificate a handshake for `host` gets."""
        return tuple(s_client_leaf(s_client(port, host, ca=self.certs.ca_cert)))

    def news_site(self, **extra):
        body = {"hosts": ["news.test"], "tls": {"certificate": "news-cert"},
                "hsts": {"max_age": 600},
                "routes": [{"path": "/", "upstream": "origin"},
                           {"path": "/hello", "respond": {"status": 200, "body": "hello\n"}}]}
        body.update(extra)
        return body

    def test_create_change_remove_restart(self):
        daemon = start_daemon(self, self.dir, self.cfg)
        port, plain = daemon.https_port, daemon.http_port
        self.assert_not_served(port, "news.test")

        status, created = self.api("PUT", "news", self.news_site())
        self.assertEqual(status, 201, created)
        self.assertEqual(created["source"], "api")
        # Served at once to a new connection: certificate, routes, HSTS.
        self.assertEqual(self.served(port, "news.test"), (self.news.serial, self.news.subject_cn))
        res, status, body = curl_https(port, "news.test", "/x", ca=self.certs.ca_cert,
                                       extra=["-D", "-"], verbose=False)
        self.assertEqual(status, 200, res.stdout + res.stderr)
        self.assertIn('"origin": "news-origin"', body.replace('":"', '": "'))
        self.assertIn("strict-transport-security: max-age=600", body.lower())
        self.assertEqual(self.get(port, "news.test", "/hello")[0], 200)
        # Plain HTTP is redirected (redirect_https defaults to on).
        out = curl(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H",
                    "Host: news.test", f"http://127.0.0.1:{plain}/a"])
        self.assertEqual(out.stdout, f"308 https://news.test:{port}/a")

        # Listed with its source; shown; the CLI agrees.
        status, sites = self.api("GET")
        self.assertEqual([(s["name"], s["source"]) for s in sites],
                         [("shop", "config"), ("news", "api")])
        self.assertIn("news  api     news.test", self.site_cli("list").stdout)
        shown = self.site_cli("show", "news").stdout
        self.assertEqual(json.loads(shown)["tls"], {"certificate": "news-cert"})

        # Changed (through the CLI, from the `show` output): a new host, no
        # redirect; the old host stays.
        changed = json.loads(shown)
        changed["hosts"].append("www.news.test")
        changed["redirect_https"] = False
        path = os.path.join(self.dir, "news.json")
        with open(path, "w") as f:
            json.dump(changed, f)
        self.site_cli("put", "news", "--file", path)
        self.assertEqual(self.get(port, "www.news.test", "/hello")[0], 200)
        out = curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: news.test",
                    f"http://127.0.0.1:{plain}/"])
        self.assertEqual(out.stdout, "200")

        # SIGHUP keeps API sites.
        daemon.reload()
        self.assertEqual(self.get(port, "www.news.test", "/hello")[0], 200)
        # A restart keeps them (read from the state directory).
        self.assertTrue(os.path.exists(os.path.join(self.state, "sites", "news", "site.json")))
        daemon.stop()
        daemon = start_daemon(self, self.dir, self.cfg, name="again")
        port = daemon.https_port
        self.assertEqual(self.get(port, "www.news.test", "/hello")[0], 200)

        # Removed: the host is no longer served.
        self.site_cli("rm", "news")
        self.assert_not_served(port, "news.test")
        self.assert_not_served(port, "www.news.test")
        self.assertFalse(os.path.exists(os.path.join(self.state, "sites", "news", "site.json")))
        self.assertEqual(self.api("DELETE", "news")[0], 404)

    def test_refusals(self):
        daemon = start_daemon(self, self.dir, self.cfg)
        port = daemon.https_port
        # YAML sites are read-only.
        status, err = self.api("PUT", "shop", self.news_site())
        self.assertEqual(status, 409)
        self.assertIn("read-only through the API", err["error"])
        self.assertEqual(self.api("DELETE", "shop")[0], 409)
        # A YAML site's host.
        status, err = self.api("PUT", "n2", {"hosts": ["shop.test"],
                                             "routes": [{"path": "/", "respond": {}}]})
        self.assertEqual(status, 422)
        self.assertIn("request body:1:12: hosts[0]: host `shop.test` is already listed by site "
                      "`shop` at " + daemon.config_path + " sites[0].hosts[0]", err["error"])
        # The YAML's messages, at the body's lines and columns.
        body = '{"hosts": ["news.test"],\n "routes": [{"path": "x", "upstream": "nowhere"}]}'
        status, err = self.api("PUT", "news", body)
        self.assertEqual(status, 422)
        self.assertIn("request body:2:22: routes[0].path: must start with `/`", err["error"])
        self.assertIn("routes[0].upstream: no upstream named `nowhere` (defined: origin)",
                      err["error"])
        status, err = self.api("PUT", "news", '{"hosts": [')
        self.assertEqual(status, 422)
        self.assertIn("request body:", err["error"])
        # A certificate that does not exist: the load-time check.
        status, err = self.api("PUT", "news", self.news_site(tls={"certificate": "nope"}))
        self.assertEqual(status, 422)
        self.assertIn("nope", err["error"])
        # Nothing of it is served or kept.
        self.assert_not_served(port, "news.test")
        self.assertFalse(os.path.exists(os.path.join(self.state, "sites", "news", "site.json")))
        _, status, body = curl_https(port, "shop.test", ca=self.certs.ca_cert, extra=["-k"],
                                     verbose=False)
        self.assertEqual((status, body), (200, "shop\n"))
        # A YAML reload that adds a host an API site has is refused.
        self.assertEqual(self.api("PUT", "news", self.news_site())[0], 201)
        self.cfg["sites"].append(site("news2", ["news.test"], [respond_route("/", 200, "x\n")]))
        daemon.reload(self.cfg, expect="refused")
        self.assertEqual(self.get(port, "news.test", "/hello")[0], 200)

    def test_store_certificate_bound_by_an_api_site(self):
        """A store certificate an API site binds is in use, through the daemon
        and offline (the CLI loads the stored sites as the daemon does)."""
        daemon = start_daemon(self, self.dir, self.cfg)
        cfg_path = daemon.config_path
        cert = lambda *a: run([tlsedge_bin(), "cert", *a, "-c", cfg_path], timeout=60)
        res = cert("add", "news-store", "--cert", self.news.cert, "--key", self.news.key)
        self.assertEqual(res.returncode, 0, res.stderr)
        status, created = self.api("PUT", "news", self.news_site(tls={"certificate": "news-store"}))
        self.assertEqual(status, 201, created)
        self.assertEqual(self.served(daemon.https_port, "news.test"),
                         (self.news.serial, self.news.subject_cn))
        res = cert("rm", "news-store")
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn("certificate `news-store` is in use by site `news` of the admin API; "
                      "change the API's sites (`tlsedge site put` or `tlsedge site rm`", res.stderr)
        daemon.stop()
        res = cert("rm", "news-store", "--offline")
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn("certificate `news-store` is in use by site `news`", res.stderr)
        res = cert("list", "--offline", "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        entry = [c for c in json.loads(res.stdout) if c["name"] == "news-store"][0]
        self.assertEqual(entry["sites"], ["news"], entry)

    def test_acme_site(self):
        """`tls: {acme: true}` through the API: ordered (here from the local
        CA) and served for the site's hosts without a reload."""
        self.cfg["acme"] = {"directory": "internal"}
        daemon = start_daemon(self, self.dir, self.cfg)
        status, created = self.api("PUT", "blog", {
            "hosts": ["blog.test", "www.blog.test"], "tls": {"acme": True},
            "routes": [{"path": "/", "respond": {"body": "blog\n"}}]})
        self.assertEqual(status, 201, created)
        local_ca = os.path.join(self.state, "acme", "local-ca", "ca.pem")

        def wait_served(host):
            deadline = time.monotonic() + 15
            while True:
                try:
                    # The local CA the only anchor, the host name checked.
                    tls_handshake(daemon.https_port, host, ca=local_ca, check_hostname=True)
                    return
                except (ssl.SSLError, ConnectionError, FileNotFoundError):
                    if time.monotonic() > deadline:
                        self.fail(f"the API site's ACME certificate is not served for {host}\n"
                                  + daemon.log())
                    time.sleep(0.1)
        wait_served("www.blog.test")
        _, status, body = curl_https(daemon.https_port, "blog.test", ca=local_ca, verbose=False)
        self.assertEqual((status, body), (200, "blog\n"))

        # Its hosts changed through the API: ordered again, for the new host.
        status, _ = self.api("PUT", "blog", {
            "hosts": ["blog.test", "www.blog.test", "new.blog.test"], "tls": {"acme": True},
            "routes": [{"path": "/", "respond": {"body": "blog\n"}}]})
        self.assertEqual(status, 200)
        wait_served("new.blog.test")


if __name__ == "__main__":
    unittest.main()
