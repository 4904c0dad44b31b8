"""ACME CA options against real Pebble: External Account Binding (Pebble
requiring it: without `acme.eab` the status names the requirement, with a
wrong MAC key it shows Pebble's problem, with the right one the site is
issued); the preferred chain among Pebble's alternate roots
(PEBBLE_ALTERNATE_ROOTS=2, PEBBLE_CHAIN_LENGTH=3, default stress: the
served chain has every intermediate and ends at the default root, then,
with `acme.preferred_chain` and a renewal, at the chosen root); and
`acme.key_type: rsa2048` (the served certificate has an RSA 2048 key)."""

import base64
import os
import re
import time
import unittest

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from acme_cli import AcmeCli
from clients import s_client
from common import run, tlsedge_bin
from config import base_config, respond_route, site
from daemon import start_daemon
from pebble import Pebble

HOSTS = ["shop.test", "www.shop.test"]
ISSUED = r"acme: certificate `acme-shop` for site `shop` \(shop.test, www.shop.test\) issued"
NO_STRESS = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def common_name(name):
    return name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value


class AcmeCaTest(AcmeCli, unittest.TestCase):

    def setUp(self):
        self.make_acme_state()

    def config(self, pebble, **acme):
        cfg = base_config(
            self.state, http=(f"127.0.0.1:{self.http_port}",),
            certificates={"fallback": self.fallback}, default_certificate="fallback",
            sites=[site("shop", HOSTS, [respond_route("/", 200, "shop\n")],
                        tls={"acme": True})])
        cfg["acme"] = {"directory": pebble.directory, "email": "ops@shop.test",
                       "trusted_roots": [pebble.ca_cert],
                       # the pre-flight's resolver: the system's knows no *.test
                       "preflight_resolve": {h: "127.0.0.1" for h in HOSTS},
                       **acme}
        return cfg

    def write_pem(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def served_chain(self, d, root_file, host="shop.test", timeout=5.0):
        """The chain the HTTPS listener serves once openssl verifies it
        against root_file (the store watcher picks a new certificate up
        shortly after it is issued): cryptography certificates, leaf first."""
        deadline = time.monotonic() + timeout
        while True:
            res = s_client(d.https_port, host, ca=root_file)
            if "Verify return code: 0 (ok)" in res.stdout:
                return [x509.load_pem_x509_certificate(m.encode())
                        for m in _PEM.findall(res.stdout)]
            if time.monotonic() > deadline:
                self.fail(f"{host}: no chain verifying against {root_file} after {timeout}s\n"
                          f"{res.stdout}{res.stderr}\nlog:\n{d.log()}")
            time.sleep(0.1)

    # --- External Account Binding ---------------------------------------------

    def test_external_account_binding(self):
        key = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        wrong = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        pebble = Pebble(self, self.tmp, self.http_port, env=NO_STRESS,
                        eab_keys={"kid-shop": key})
        failed = r"<3>acme: certificate `acme-shop` for site `shop`: {}.*retrying in 60 s"
        # Without acme.eab: no newAccount is sent; the status says why.
        d = start_daemon(self, self.tmp, self.config(pebble))
        self.wait_lines(d, failed.format("the CA requires External Account Binding"))
        st = self.status()
        self.assertIn("meta.externalAccountRequired", st["last_error"])
        self.assertIn("acme.eab", st["last_error"])
        d.stop()
        # A wrong MAC key: Pebble refuses the binding; its problem is shown.
        d = start_daemon(self, self.tmp,
                         self.config(pebble, eab={"kid": "kid-shop", "hmac_key": wrong}),
                         name="tlsedge-wrong-key")
        self.wait_lines(d, failed.format("POST https://127.0.0.1:\\d+/sign-me-up: "))
        st = self.status()
        self.assertIn("unauthorized: external account binding JWS verification error",
                      st["last_error"])
        self.assertNotIn(wrong, d.log())
        d.stop()
        # The right key: the account is bound and the site issued.
        d = start_daemon(self, self.tmp,
                         self.config(pebble, eab={"kid": "kid-shop", "hmac_key": key}),
                         name="tlsedge-right-key")
        self.wait_lines(d, ISSUED)
        root = self.write_pem("root.pem", pebble.root_pem())
        self.assertEqual(len(self.served_chain(d, root, "www.shop.test")), 2)
        self.assertNotIn(key, d.log())

    # --- chains -----------------------------------------------------------------

    def test_chain_length_and_preferred_chain(self):
        # Default stress (5 % badNonce, validation delays, authorization
        # reuse) with 3 intermediates and 2 alternate roots.
        pebble = Pebble(self, self.tmp, self.http_port,
                        env={"PEBBLE_CHAIN_LENGTH": "3", "PEBBLE_ALTERNATE_ROOTS": "2"})
        roots = [pebble.root_pem(i) for i in range(3)]
        names = [common_name(x509.load_pem_x509_certificate(r.encode()).subject) for r in roots]
        self.assertEqual(len(set(names)), 3, names)
        files = [self.write_pem(f"root{i}.pem", r) for i, r in enumerate(roots)]
        d = start_daemon(self, self.tmp, self.config(pebble))
        self.wait_lines(d, ISSUED)
        # Without preferred_chain: the default chain, every intermediate, up to root 0.
        chain = self.served_chain(d, files[0])
        self.assertEqual(len(chain), 4, [c.subject for c in chain])  # leaf + 3 intermediates
        for child, parent in zip(chain, chain[1:]):
            self.assertEqual(child.issuer, parent.subject)
        self.assertEqual(common_name(chain[-1].issuer), names[0])
        self.assertNotIn(names[0], {common_name(c.subject) for c in chain})  # no root sent
        first_serial = chain[0].serial_number
        # With preferred_chain naming root 2, a renewal downloads the
        # alternates and serves the one ending at root 2.
        d.reload(self.config(pebble, preferred_chain=names[2]))
        res = run([tlsedge_bin(), "acme", "renew", "shop", "--socket", self.socket], timeout=60)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.wait_lines(d, ISSUED, count=2)
        self.wait_lines(d, r"acme: certificate `acme-shop`: the alternate chain https://\S+ "
                           r"\(topmost issuer `" + re.escape(names[2]) + "`")
        chain = self.served_chain(d, files[2])
        self.assertNotEqual(chain[0].serial_number, first_serial)
        self.assertEqual(len(chain), 4, [c.subject for c in chain])
        self.assertEqual(common_name(chain[-1].issuer), names[2])
        for child, parent in zip(chain, chain[1:]):
            self.assertEqual(child.issuer, parent.subject)
        # Root 0 no longer verifies what is served.
        res = s_client(d.https_port, "shop.test", ca=files[0])
        self.assertNotIn("Verify return code: 0 (ok)", res.stdout)

    # --- key type -----------------------------------------------------------------

    def test_rsa_key_type(self):
        pebble = Pebble(self, self.tmp, self.http_port, env=NO_STRESS)
        d = start_daemon(self, self.tmp, self.config(pebble, key_type="rsa2048"))
        self.wait_lines(d, ISSUED)
        root = self.write_pem("root.pem", pebble.root_pem())
        leaf = self.served_chain(d, root)[0]
        self.assertIsInstance(leaf.public_key(), rsa.RSAPublicKey)
        self.assertEqual(leaf.public_key().key_size, 2048)
        with open(os.path.join(self.state, "certs", "acme-shop", "privkey.pem")) as f:
            self.assertIn("BEGIN PRIVATE KEY", f.read())


if __name__ == "__main__":
    unittest.main()
