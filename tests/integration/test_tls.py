"""TLS termination: certificate selection by SNI, protocol versions, ALPN,
IPv6 listeners. Real clients: curl, openssl s_client, Python ssl."""

import os
import re
import ssl
import unittest

from common import have_ipv6_loopback, make_tempdir
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import header_values, start_origin
from clients import (Response, curl_https, http_request, https_request, peer_serial, s_client,
                     s_client_leaf, tls_handshake)


def curl_tls_version(stderr):
    m = re.search(r"SSL connection using (TLSv1\.[0-3])", stderr)
    return m.group(1) if m else None


def curl_subject_cn(stderr):
    m = re.search(r"^\*\s+subject:.*?CN\s*=\s*([^,;\n]+)", stderr, re.M)
    return m.group(1).strip() if m else None


class SniTest(unittest.TestCase):
    """Two sites with their own certificates and origins, a wildcard site, an
    exact host inside the wildcard's domain, and a default certificate."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        c = cls.certs
        cls.leaf_a = c.leaf("a", ["a.test", "www.a.test"])
        cls.leaf_b = c.leaf("b", ["b.test"])
        cls.leaf_wild = c.leaf("wild", ["*.wild.test"])
        cls.leaf_special = c.leaf("special", ["special.wild.test"])
        cls.leaf_default = c.leaf("default", ["default.test"])
        cls.origin_a = start_origin(cls, "origin-a")
        cls.origin_b = start_origin(cls, "origin-b")
        cls.origin_wild = start_origin(cls, "origin-wild")
        cls.origin_special = start_origin(cls, "origin-special")
        cfg = base_config(
            os.path.join(cls.tmp, "state"),
            certificates={"a": cls.leaf_a, "b": cls.leaf_b, "wild": cls.leaf_wild,
                          "special": cls.leaf_special, "default": cls.leaf_default},
            default_certificate="default",
            sites=[
                site("a", ["a.test", "www.a.test"], [upstream_route("/", "a")], "a"),
                site("b", ["b.test"], [upstream_route("/", "b")], "b"),
                site("wild", ["*.wild.test"], [upstream_route("/", "wild")], "wild"),
                site("special", ["special.wild.test"],
                     [upstream_route("/", "special")], "special"),
            ],
            upstreams={"a": [cls.origin_a.address], "b": [cls.origin_b.address],
                       "wild": [cls.origin_wild.address],
                       "special": [cls.origin_special.address]})
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.port = cls.daemon.https_port

    def s_client_leaf(self, servername, **kw):
        res = s_client(self.port, servername, **kw)
        return s_client_leaf(res), res

    def assert_served(self, sni, leaf):
        (serial, cn), res = self.s_client_leaf(sni, ca=self.certs.ca_cert)
        self.assertEqual(serial, leaf.serial,
                         f"SNI {sni!r}: got serial {serial:#x} CN {cn!r}, expected {leaf}\n"
                         f"{res.stdout[-2000:]}")
        self.assertEqual(cn, leaf.subject_cn)
        self.assertIn("Verify return code: 0 (ok)", res.stdout)

    def test_s_client_two_sites_two_certificates(self):
        self.assert_served("a.test", self.leaf_a)
        self.assert_served("www.a.test", self.leaf_a)
        self.assert_served("b.test", self.leaf_b)

    def test_curl_two_sites_two_origins(self):
        for host, leaf, origin in (("a.test", self.leaf_a, self.origin_a),
                                   ("b.test", self.leaf_b, self.origin_b)):
            res, status, body = curl_https(self.port, host, f"/hello/{host}",
                                           ca=self.certs.ca_cert)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(status, 200, body)
            self.assertEqual(curl_subject_cn(res.stderr), leaf.subject_cn, res.stderr)
            echo = Response(status, "", {}, body.encode()).json()
            self.assertEqual(echo["origin"], origin.name)
            self.assertEqual(echo["path"], f"/hello/{host}")

    def test_python_ssl_verifies_hostname(self):
        # check_hostname=True: the served certificate must match the SNI name.
        r = https_request(self.port, "b.test", "/py", ca=self.certs.ca_cert)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["origin"], "origin-b")

    def test_sni_is_case_insensitive(self):
        self.assert_served("B.Test", self.leaf_b)

    def test_wildcard_site(self):
        self.assert_served("x.wild.test", self.leaf_wild)
        self.assert_served("another-one.wild.test", self.leaf_wild)
        r = https_request(self.port, "x.wild.test", "/w", ca=self.certs.ca_cert)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["origin"], "origin-wild")

    def test_exact_host_beats_wildcard(self):
        self.assert_served("special.wild.test", self.leaf_special)
        r = https_request(self.port, "special.wild.test", "/s", ca=self.certs.ca_cert)
        self.assertEqual(r.json()["origin"], "origin-special")

    def test_wildcard_covers_one_label_only(self):
        # "*.wild.test" matches neither "wild.test" nor "a.b.wild.test".
        self.assert_served_default("a.b.wild.test")
        self.assert_served_default("wild.test")

    def assert_served_default(self, sni):
        (serial, cn), res = self.s_client_leaf(sni)
        self.assertEqual(serial, self.leaf_default.serial,
                         f"SNI {sni!r}: got CN {cn!r}, expected the default certificate")
        self.assertEqual(cn, "default.test")

    def test_unknown_sni_gets_default_certificate(self):
        self.assert_served_default("unknown.example")

    def test_no_sni_gets_default_certificate(self):
        (serial, cn), res = self.s_client_leaf(None)
        self.assertEqual(serial, self.leaf_default.serial, f"no SNI: got CN {cn!r}")

    def test_unknown_host_is_404(self):
        # TLS with the default certificate, then no site for the Host.
        origins = (self.origin_a, self.origin_b, self.origin_wild, self.origin_special)
        before = [o.request_count() for o in origins]
        r = https_request(self.port, "default.test", "/", ca=self.certs.ca_cert,
                          headers={"Host": "nowhere.test"})
        self.assertEqual(r.status, 404)
        self.assertEqual([o.request_count() for o in origins], before, "404 must not be proxied")

    def test_tls12_and_tls13_with_curl(self):
        for flags, want in ((["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"),
                            (["--tlsv1.3"], "TLSv1.3")):
            res, status, body = curl_https(self.port, "a.test", "/v",
                                           ca=self.certs.ca_cert, extra=flags)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(status, 200)
            self.assertEqual(curl_tls_version(res.stderr), want, res.stderr)

    def test_tls12_and_tls13_with_python(self):
        for v, want in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            version, alpn, cipher, cert = tls_handshake(
                self.port, "a.test", ca=self.certs.ca_cert, tls_version=v, check_hostname=True)
            self.assertEqual(version, want)
            self.assertEqual(alpn, "http/1.1")
            self.assertEqual(peer_serial(cert), self.leaf_a.serial)

    def test_tls12_and_tls13_with_s_client(self):
        for flag, want in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            res = s_client(self.port, "a.test", ca=self.certs.ca_cert,
                           extra=[flag, "-alpn", "http/1.1"])
            m = re.search(r"^New, (TLSv1\.\d), Cipher is", res.stdout, re.M)
            self.assertIsNotNone(m, res.stdout + res.stderr)
            self.assertEqual(m.group(1), want)
            self.assertIn("ALPN protocol: http/1.1", res.stdout)

    def test_alpn_prefers_h2(self):
        # The server's preference: h2, then http/1.1 (test_http2.py has the rest).
        version, alpn, cipher, cert = tls_handshake(
            self.port, "a.test", ca=self.certs.ca_cert, alpn=("http/1.1", "h2"))
        self.assertEqual(alpn, "h2")


class RejectUnknownSniTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf_a = cls.certs.leaf("a", ["a.test"])
        cls.leaf_default = cls.certs.leaf("default", ["default.test"])
        cfg = base_config(
            os.path.join(cls.tmp, "state"),
            certificates={"a": cls.leaf_a, "default": cls.leaf_default},
            default_certificate="default", unknown_sni="reject",
            sites=[site("a", ["a.test"], [respond_route("/", 200, "a\n")], "a")])
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.port = cls.daemon.https_port

    def test_known_sni_still_served(self):
        res = s_client(self.port, "a.test", ca=self.certs.ca_cert)
        serial, cn = s_client_leaf(res)
        self.assertEqual(serial, self.leaf_a.serial)
        r = https_request(self.port, "a.test", "/", ca=self.certs.ca_cert)
        self.assertEqual((r.status, r.body), (200, b"a\n"))

    def test_unknown_sni_rejected_s_client(self):
        res = s_client(self.port, "unknown.example")
        out = res.stdout + res.stderr
        self.assertNotEqual(res.returncode, 0, out)
        self.assertRegex(out, r"unrecognized name|alert number 112", out)
        self.assertNotIn("BEGIN CERTIFICATE", res.stdout)

    def test_unknown_sni_rejected_python(self):
        with self.assertRaises(ssl.SSLError) as cm:
            tls_handshake(self.port, "unknown.example", ca=self.certs.ca_cert)
        self.assertIn("UNRECOGNIZED_NAME", str(cm.exception).upper())


class MinVersionTest(unittest.TestCase):
    """tls.min_version: "1.3" refuses TLS 1.2."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("a", ["a.test"])
        cfg = base_config(
            os.path.join(cls.tmp, "state"), certificates={"a": cls.leaf},
            default_certificate="a", min_version="1.3",
            sites=[site("a", ["a.test"], [respond_route("/", 200, "a\n")], "a")])
        cls.daemon = start_daemon(cls, cls.tmp, cfg)

    def test_tls12_refused_tls13_accepted(self):
        port = self.daemon.https_port
        with self.assertRaises(ssl.SSLError):
            tls_handshake(port, "a.test", ca=self.certs.ca_cert,
                          tls_version=ssl.TLSVersion.TLSv1_2)
        version, *_ = tls_handshake(port, "a.test", ca=self.certs.ca_cert,
                                    tls_version=ssl.TLSVersion.TLSv1_3)
        self.assertEqual(version, "TLSv1.3")


class Ipv6Test(unittest.TestCase):
    """An https listener on [::1] next to one on 127.0.0.1."""

    @classmethod
    def setUpClass(cls):
        if not have_ipv6_loopback():
            raise unittest.SkipTest("no usable IPv6 loopback (::1) on this machine")
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("a", ["a.test"])
        cls.origin = start_origin(cls, "origin-v6")
        cfg = base_config(
            os.path.join(cls.tmp, "state"), certificates={"a": cls.leaf},
            https=["127.0.0.1:0", "[::1]:0"], http=["127.0.0.1:0", "[::1]:0"],
            sites=[site("a", ["a.test"], [upstream_route("/", "o")], "a")],
            upstreams={"o": [cls.origin.address]})
        cls.daemon = start_daemon(cls, cls.tmp, cfg)

    def test_https_over_ipv6_curl(self):
        port = self.daemon.port("https", "::1")
        res, status, body = curl_https(port, "a.test", "/six", ca=self.certs.ca_cert,
                                       connect_host="::1")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(status, 200)
        echo = Response(status, "", {}, body.encode()).json()
        self.assertEqual(echo["origin"], "origin-v6")
        self.assertEqual(header_values(echo, "X-Forwarded-For"), ["::1"])

    def test_https_over_ipv6_s_client(self):
        port = self.daemon.port("https", "::1")
        res = s_client(port, "a.test", ca=self.certs.ca_cert, connect_host="::1")
        serial, cn = s_client_leaf(res)
        self.assertEqual(serial, self.leaf.serial)

    def test_ipv4_listener_still_works(self):
        r = https_request(self.daemon.port("https", "127.0.0.1"), "a.test", "/four",
                          ca=self.certs.ca_cert)
        self.assertEqual(r.json()["origin"], "origin-v6")
        self.assertEqual(header_values(r.json(), "X-Forwarded-For"), ["127.0.0.1"])

    def test_http_redirect_over_ipv6(self):
        port = self.daemon.port("http", "::1")
        r = http_request(port, "/p?q=1", host="::1", headers={"Host": "a.test"})
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers.get("Location"),
                         f"https://a.test:{self.daemon.port('https', '127.0.0.1')}/p?q=1")


if __name__ == "__main__":
    unittest.main()
