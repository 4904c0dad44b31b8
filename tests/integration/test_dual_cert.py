"""A site with an ECDSA and an RSA certificate for the same names
(`tls.certificate: [ecdsa, rsa]`): clients that accept ECDSA get the ECDSA
leaf, the others the RSA leaf. Real clients: openssl s_client, curl,
Python ssl."""

import os
import unittest

from common import make_tempdir
from pki import Certs
from config import base_config, respond_route, site
from daemon import start_daemon
from clients import https_request, s_client, s_client_leaf


class DualCertificateTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        c = cls.certs
        cls.leaf_ec = c.leaf("dual-ec", ["dual.test", "*.dual.test"])
        cls.leaf_rsa = c.leaf("dual-rsa", ["dual.test", "*.dual.test"], key_type="rsa")
        cls.leaf_default = c.leaf("default", ["default.test"])
        cfg = base_config(
            os.path.join(cls.tmp, "state"),
            certificates={"dual-ec": cls.leaf_ec, "dual-rsa": cls.leaf_rsa,
                          "default": cls.leaf_default},
            default_certificate="default",
            sites=[site("dual", ["dual.test", "*.dual.test"],
                        [respond_route("/", 200, "dual\n")], ["dual-rsa", "dual-ec"])])
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.port = cls.daemon.https_port

    def assert_served(self, leaf, *extra, sni="dual.test"):
        res = s_client(self.port, sni, ca=self.certs.ca_cert, extra=extra)
        serial, cn = s_client_leaf(res)
        self.assertEqual(serial, leaf.serial,
                         f"{extra}: got serial {serial:#x} CN {cn!r}, expected {leaf}\n"
                         f"{res.stdout[-2000:]}")
        self.assertIn("Verify return code: 0 (ok)", res.stdout)
        return res

    def test_default_client_gets_ecdsa(self):
        self.assert_served(self.leaf_ec)
        self.assert_served(self.leaf_ec, sni="www.dual.test")

    def test_rsa_only_sigalgs_get_rsa_tls13(self):
        self.assert_served(self.leaf_rsa, "-tls1_3", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")
        self.assert_served(self.leaf_rsa, "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256",
                           sni="www.dual.test")

    def test_rsa_only_sigalgs_get_rsa_tls12(self):
        self.assert_served(self.leaf_rsa, "-tls1_2", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")

    def test_ecdhe_rsa_suite_gets_rsa_tls12(self):
        self.assert_served(self.leaf_rsa, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")

    def test_ecdhe_ecdsa_suite_gets_ecdsa_tls12(self):
        self.assert_served(self.leaf_ec, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assert_served(self.leaf_ec, "-tls1_2")

    def test_python_ssl_request(self):
        r = https_request(self.port, "dual.test", "/", ca=self.certs.ca_cert)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"dual\n")


if __name__ == "__main__":
    unittest.main()
