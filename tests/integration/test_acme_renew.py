"""ACME renewal against real Pebble (plus a mock ARI endpoint): `tlsedge acme
renew` while a client holds a keep-alive connection (it keeps working with
the old certificate, new handshakes get the new serial); a renewal whose
HTTP-01 challenge fails (nothing answers on Pebble's httpPort) keeps the old
certificate serving while the retry delay grows 60 s -> 120 s in the log and
in `tlsedge acme status`; short-lived certificates (Pebble's
certificateValidityPeriod) renewed by the schedule alone; ARI: a directory
proxied to add `renewalInfo`, a window that has passed triggers a renewal
whose order says `replaces` with the RFC 9773 certId, the next window is
shown in the status; and a site pending its first certificate (no default)
refuses handshakes until it arrives, then serves it."""

import base64
import http.client
import http.server
import json
import os
import re
import ssl
import threading
import time
import unittest
import urllib.request

from cryptography import x509

from acme_cli import AcmeCli
from clients import SniHTTPSConnection, client_context, peer_serial, tls_handshake
from common import closed_port, run, tlsedge_bin, add_cleanup
from config import base_config, respond_route, site, to_yaml
from daemon import start_daemon
from pebble import Pebble
from scrape import scrape, value

HOSTS = ["shop.test", "www.shop.test"]
ISSUED = r"acme: certificate `acme-shop` for site `shop` \(shop.test, www.shop.test\) issued"
NO_STRESS = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_id(pem):
    """RFC 9773 certId of the first certificate of `pem`, computed independently."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    serial = cert.serial_number
    octets = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # DER: room for a sign bit
    return b64url(aki.key_identifier) + "." + b64url(octets)


class AriMock:
    """Plain HTTP on loopback: /dir is Pebble's directory plus `renewalInfo`
    pointing here; /renewalInfo/<certId> answers a passed window for the
    first certificate asked about (renew now; held until `release` is set,
    so the test can read that certificate first) and a window a day ahead,
    Retry-After 120, for later ones. Records the ids asked for."""

    def __init__(self, testcase, pebble):
        self.asked = []
        self.release = threading.Event()
        self.window = None  # the future window served
        mock = self
        ctx = ssl.create_default_context(cafile=pebble.ca_cert)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/dir":
                    with urllib.request.urlopen(pebble.directory, context=ctx, timeout=10) as r:
                        directory = json.loads(r.read())
                    directory["renewalInfo"] = f"http://127.0.0.1:{mock.port}/renewalInfo"
                    return self.answer(200, directory)
                if self.path.startswith("/renewalInfo/"):
                    cid = self.path[len("/renewalInfo/"):]
                    first = not mock.asked or mock.asked[0] == cid
                    mock.asked.append(cid)
                    now = int(time.time())
                    if first:
                        mock.release.wait(timeout=20)
                        start, end, after = now - 600, now - 300, 3600
                    else:
                        start, end, after = now + 86400, now + 2 * 86400, 120
                        mock.window = (start, end)
                    fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
                    return self.answer(200, {"suggestedWindow": {"start": fmt(start),
                                                                 "end": fmt(end)}},
                                       [("Retry-After", str(after))])
                self.answer(404, {"error": "no such path"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        add_cleanup(testcase, self.stop)
        add_cleanup(testcase, self.release.set)  # runs first: nothing waits at shutdown
        self.directory = f"http://127.0.0.1:{self.port}/dir"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class AcmeRenewTest(AcmeCli, unittest.TestCase):

    def setUp(self):
        self.make_acme_state()

    def config(self, directory, trusted_roots, http_port=None, default=True):
        cfg = base_config(
            self.state, http=(f"127.0.0.1:{http_port or self.http_port}",),
            certificates={"fallback": self.fallback},
            default_certificate="fallback" if default else None,
            sites=[site("shop", HOSTS, [respond_route("/", 200, "shop\n")],
                        tls={"acme": True})])
        cfg["acme"] = {"directory": directory, "email": "ops@shop.test",
                       "trusted_roots": list(trusted_roots),
                       # the pre-flight's resolver: the system's knows no *.test
                       "preflight_resolve": {h: "127.0.0.1" for h in HOSTS}}
        return cfg

    def root(self, pebble):
        path = os.path.join(self.tmp, "pebble-root.pem")
        with open(path, "w") as f:
            f.write(pebble.root_pem())
        return path

    def served_serial(self, d, root, host="shop.test"):
        return peer_serial(tls_handshake(d.https_port, host, ca=root, check_hostname=True)[3])

    def wait_serial(self, d, root, serial, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.served_serial(d, root) == serial:
                    return
            except ssl.SSLError:
                pass
            if time.monotonic() > deadline:
                self.fail(f"serial {serial:x} not served after {timeout}s\n{d.log()}")
            time.sleep(0.05)

    def test_forced_renewal_keeps_a_keep_alive_connection(self):
        pebble = Pebble(self, self.tmp, self.http_port, env=NO_STRESS)
        d = start_daemon(self, self.tmp, self.config(pebble.directory, [pebble.ca_cert]))
        self.wait_lines(d, ISSUED)
        root = self.root(pebble)
        first = self.settled_status()
        self.assertTrue(first["stored"], first)
        self.assertTrue(first["schedule_known"], first)
        self.assertIsNotNone(first["next_renewal"], first)
        old = int(first["serial"], 16)
        self.wait_serial(d, root, old)
        conn = SniHTTPSConnection("shop.test", d.https_port, client_context(root))
        conn.request("GET", "/")
        self.assertEqual(conn.getresponse().read(), b"shop\n")

        res = self.acme_cli("renew", "shop")
        self.assertIn("renewal of site `shop` started", res.stdout)
        self.wait_lines(d, ISSUED, count=2)
        new = int(self.settled_status(serial_not=old)["serial"], 16)
        self.assertNotEqual(new, old)
        self.wait_serial(d, root, new)
        # The established connection carries on, on its old certificate.
        for _ in range(3):
            conn.request("GET", "/")
            self.assertEqual(conn.getresponse().read(), b"shop\n")
        self.assertEqual(peer_serial(conn.sock.getpeercert()), old)
        conn.close()
        self.assertEqual(self.served_serial(d, root, "www.shop.test"), new)
        text = self.acme_cli("status").stdout
        self.assertIn("site shop", text)
        self.assertIn(f"(serial {self.status()['serial']})", text)
        self.assertIn("next renewal: ", text)
        # Unknown site: 404 through the CLI, exit 1.
        res = self.acme_cli("renew", "nope", expect=1)
        self.assertIn("no site `nope` with tls: { acme: true }", res.stderr)

    def test_failed_challenge_keeps_the_certificate_and_backs_off(self):
        pebble = Pebble(self, self.tmp, self.http_port, env=NO_STRESS)
        cfg = self.config(pebble.directory, [pebble.ca_cert])
        d = start_daemon(self, self.tmp, cfg)
        self.wait_lines(d, ISSUED)
        root = self.root(pebble)
        serial = int(self.settled_status()["serial"], 16)
        # The HTTP listener moves: Pebble's HTTP-01 validation finds nothing.
        d.reload(self.config(pebble.directory, [pebble.ca_cert], http_port=closed_port()))
        failed = r"<3>acme: certificate `acme-shop` for site `shop`: .*retrying in {} s \(failure {} in a row"
        self.acme_cli("renew", "shop")
        self.wait_lines(d, failed.format(60, 1))
        self.assertEqual(self.served_serial(d, root), serial)
        st = self.status()
        self.assertEqual(st["consecutive_failures"], 1, st)
        self.assertEqual(st["retry_delay_seconds"], 60, st)
        self.assertIn("http-01", st["last_error"])
        self.assertIsNotNone(st["last_error_at"])
        self.acme_cli("renew", "shop")
        self.wait_lines(d, failed.format(120, 2))
        st = self.status()
        self.assertEqual(st["consecutive_failures"], 2, st)
        self.assertEqual(st["retry_delay_seconds"], 120, st)
        self.assertEqual(int(st["serial"], 16), serial)
        self.assertEqual(self.served_serial(d, root), serial)
        self.assertIn("failures:     2 in a row, retry delay 120 s", self.acme_cli("status").stdout)
        # The same in the metrics: two failed orders after the first
        # issuance, the site failing renewal, its certificate counted so and
        # given a not-after series although it has months left.
        m = scrape(d.metrics_address)
        self.assertEqual(value(m, "tlsedge_acme_orders_total", result="success"), 1)
        self.assertEqual(value(m, "tlsedge_acme_orders_total", result="failure"), 2)
        kinds = {dict(l)["type"]: v for (n, l), v in m.items()
                 if n == "tlsedge_acme_order_failures_total"}
        # Pebble's problem for an unreachable HTTP-01 (RFC 8555 6.7), taken
        # from the invalid authorization's challenge.
        self.assertEqual(kinds, {"connection": 2})
        self.assertEqual(value(m, "tlsedge_acme_renewal_failures", site="shop"), 2)
        self.assertEqual(value(m, "tlsedge_certificates_renewal_failing"), 1)
        self.assertGreater(value(m, "tlsedge_certificate_not_after_seconds", name="acme-shop"),
                           time.time() + 14 * 86400)

    def test_short_lived_certificates_renew_on_schedule(self):
        # 15 s certificates: renewed with a third (5 s) left, without any command.
        pebble = Pebble(self, self.tmp, self.http_port, env=NO_STRESS, validity=15)
        d = start_daemon(self, self.tmp, self.config(pebble.directory, [pebble.ca_cert]))
        self.wait_lines(d, ISSUED)
        root = self.root(pebble)
        first = int(self.settled_status()["serial"], 16)
        self.wait_lines(d, r"acme: site `shop`: ordering now \(a third of the lifetime left",
                        timeout=20)
        self.wait_lines(d, ISSUED, count=2, timeout=30)
        second = int(self.settled_status(serial_not=first)["serial"], 16)
        self.assertNotEqual(second, first)
        self.wait_serial(d, root, second)
        self.assertEqual(d.count_lines(r"acme: renewal of site .* requested"), 0)

    def test_ari_window_and_replaces_and_pending_first_certificate(self):
        pebble = Pebble(self, self.tmp, self.http_port, env=NO_STRESS)
        mock = AriMock(self, pebble)
        # No default certificate: shop.test is pending issuance at first.
        cfg = self.config(mock.directory, [pebble.ca_cert], default=False)
        cfg["certificates"] = {}
        d = start_daemon(self, self.tmp, cfg)
        self.assertGreater(d.count_lines(r"`shop.test` is pending issuance of its ACME "
                                         r"certificate"), 0, d.log())
        self.wait_lines(d, ISSUED)
        root = self.root(pebble)
        with open(os.path.join(self.state, "certs", "acme-shop", "fullchain.pem")) as f:
            first_id = cert_id(f.read())
        mock.release.set()
        # The passed window: renewed at once, the order replacing the first.
        self.wait_lines(d, r"acme: site `shop`: the new order replaces " + re.escape(first_id))
        self.wait_lines(d, ISSUED, count=2)
        self.assertEqual(mock.asked[0], first_id)
        # The second certificate's window is a day ahead: scheduled in it.
        self.wait_lines(d, r"acme: renewalInfo for `acme-shop`: window .*next check in 3600 s")
        self.wait_lines(d, r"acme: renewalInfo for `acme-shop`: window .*next check in 120 s")
        st = self.status()
        start, end = mock.window
        fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        self.assertEqual(st["ari_window"], {"start": fmt(start), "end": fmt(end)}, st)
        self.assertTrue(fmt(start) <= st["next_renewal"] < fmt(end), st)
        self.assertEqual(st["next_reason"], "in the CA's renewalInfo window")
        self.wait_serial(d, root, int(st["serial"], 16))
        self.assertEqual(d.count_lines(r"ordering certificate"), 2, d.log())

    def test_without_a_daemon_status_reads_the_store_and_renew_fails(self):
        cfg = self.config("https://127.0.0.1:1/dir", [])
        path = os.path.join(self.tmp, "tlsedge.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        cli = lambda *args: run([tlsedge_bin(), "acme", *args, "-c", path], timeout=60)
        res = cli("status")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("site shop\n  certificate:  acme-shop (not issued yet)\n"
                      "  next renewal: unknown (no daemon answers on the admin socket)", res.stdout)
        leaf = self.certs.leaf("shop", HOSTS)
        run([tlsedge_bin(), "cert", "add", "acme-shop", "--cert", leaf.cert, "--key", leaf.key,
             "-c", path], check=True, timeout=60)
        st = json.loads(cli("status", "--json").stdout)["sites"][0]
        self.assertEqual(int(st["serial"], 16), leaf.serial)
        self.assertFalse(st["schedule_known"])
        self.assertNotIn("next_renewal", st)
        res = cli("renew", "shop")
        self.assertEqual(res.returncode, 1)
        self.assertIn("renew needs the running daemon: no daemon answers on the admin socket "
                      + self.socket, res.stderr)
        self.assertEqual(cli("renew").returncode, 2)


if __name__ == "__main__":
    unittest.main()
