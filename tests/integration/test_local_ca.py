"""The internal issuer (`acme: { directory: internal }`): a site with
`tls: { acme: true }` is served a certificate that chains to the local CA the
daemon created in its state directory (verified by Python's ssl and curl
--cacert, nothing else trusted), `tlsedge acme renew SITE` swaps in a new
serial while running, `tlsedge acme status` shows the schedule (a third of
the 7-day lifetime), a restart reuses the CA and the certificate, and the
embedded demo configuration (`tlsedge default-config`, with port-0
listeners) starts and serves its page under a certificate from its own
local CA."""

import calendar
import os
import re
import socket
import ssl
import stat
import time
import unittest

from acme_cli import AcmeCli
from clients import curl_https, peer_serial, tls_handshake
from common import make_tempdir, run, tlsedge_bin
from config import base_config, respond_route, site
from daemon import start_daemon

HOSTS = ["shop.test", "www.shop.test"]
ISSUED = r"acme: certificate `acme-shop` for site `shop` \(shop.test, www.shop.test\) issued by the local CA"
LIFETIME = 7 * 86400
TRUST = re.compile(r"local CA \(directory: internal\); its certificate is (\S+); "
                   r"trust it for testing, e\.g\. curl --cacert (\S+)")


class LocalCaTest(AcmeCli, unittest.TestCase):

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.state = os.path.join(self.tmp, "state")
        self.ca = os.path.join(self.state, "acme", "local-ca", "ca.pem")
        self.socket = os.path.join(self.state, "admin.sock")

    def config(self):
        cfg = base_config(self.state, sites=[
            site("shop", HOSTS, [respond_route("/", 200, "shop\n")], tls={"acme": True})])
        cfg["acme"] = {"directory": "internal"}
        return cfg

    def served_serial(self, d, host="shop.test"):
        # check_hostname: the name must be in the certificate, the local CA the only anchor.
        return peer_serial(tls_handshake(d.https_port, host, ca=self.ca, check_hostname=True)[3])

    def wait_serial(self, d, serial, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.served_serial(d) == serial:
                    return
            except (ssl.SSLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                self.fail(f"serial {serial:x} not served after {timeout}s\n{d.log()}")
            time.sleep(0.05)

    def test_issue_renew_and_restart(self):
        d = start_daemon(self, self.tmp, self.config())
        self.wait_lines(d, ISSUED)
        # The log tells the developer which file to trust.
        trust = [m for m in map(TRUST.search, d.lines()) if m]
        self.assertEqual(len(trust), 1, d.log())
        self.assertEqual(trust[0].group(1), self.ca)
        self.assertEqual(trust[0].group(2), self.ca)
        self.assertEqual(stat.S_IMODE(os.stat(self.ca[:-len("ca.pem")] + "ca.key").st_mode), 0o600)
        with open(self.ca) as f:
            ca_pem = f.read()

        first = self.settled_status()
        self.assertTrue(first["stored"], first)
        self.assertEqual(first["certificate"], "acme-shop")
        serial = int(first["serial"], 16)
        self.wait_serial(d, serial)
        self.assertEqual(self.served_serial(d, "www.shop.test"), serial)
        # Renewal with a third of the 7 days left, minus at most a tenth of that as jitter.
        not_after, renew_at = first["not_after"], first["next_renewal"]
        self.assertIsNotNone(renew_at, first)
        window = LIFETIME / 3
        before = time_of(not_after) - time_of(renew_at)
        self.assertGreaterEqual(before, window - 3700, first)  # notBefore is backdated an hour
        self.assertLessEqual(before, window * 1.1 + 3700, first)

        res, code, body = curl_https(d.https_port, "shop.test", ca=self.ca)
        self.assertEqual((code, body), (200, "shop\n"), res.stderr)
        # Without the local CA the certificate is not trusted.
        with self.assertRaises(ssl.SSLCertVerificationError):
            with socket.create_connection(("127.0.0.1", d.https_port), timeout=10) as raw:
                ssl.create_default_context().wrap_socket(raw, server_hostname="shop.test")

        res = self.acme_cli("renew", "shop")
        self.assertIn("renewal of site `shop` started", res.stdout)
        self.wait_lines(d, ISSUED, count=2)
        renewed = int(self.settled_status(serial_not=serial)["serial"], 16)
        self.assertNotEqual(renewed, serial)
        self.wait_serial(d, renewed)
        self.assertIn("site shop", self.acme_cli("status").stdout)

        # A restart: the same CA, the stored certificate kept (not re-issued).
        d.stop()
        d2 = start_daemon(self, self.tmp, self.config(), name="tlsedge2")
        self.wait_lines(d2, r"using the local CA")
        with open(self.ca) as f:
            self.assertEqual(f.read(), ca_pem)
        self.assertEqual(self.served_serial(d2), renewed)
        self.assertEqual(d2.count_lines(ISSUED), 0, d2.log())

    def test_embedded_demo_configuration(self):
        text = run([tlsedge_bin(), "default-config"], check=True).stdout
        self.assertIn("directory: internal", text)
        # The demo's fixed ports would collide with tests running in parallel.
        text = re.sub(r"https: \[.*\]", 'https: ["127.0.0.1:0"]', text)
        text = re.sub(r"http: \[.*\]", 'http: ["127.0.0.1:0"]', text)
        text += 'metrics: { listen: "127.0.0.1:0" }\n'
        d = start_daemon(self, self.tmp, text)
        self.wait_lines(d, r"acme: certificate `acme-demo` for site `demo` \(localhost\) issued")
        ca = os.path.join(self.tmp, "tlsedge-state", "acme", "local-ca", "ca.pem")
        self.assertIn(f"curl --cacert {ca}", d.log())
        deadline = time.monotonic() + 5
        while True:
            res, code, body = curl_https(d.https_port, "localhost", ca=ca)
            if code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual((code, body), (200, "Hello from tlsedge\n"), res.stderr + d.log())
        cert = tls_handshake(d.https_port, "localhost", ca=ca, check_hostname=True)[3]
        self.assertIn(("DNS", "localhost"), cert["subjectAltName"])


def time_of(rfc3339):
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


if __name__ == "__main__":
    unittest.main()
