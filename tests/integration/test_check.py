"""`tlsedge check -c FILE`: valid configs pass, bad ones are reported as
FILE:LINE:COLUMN: KEY: message (line and column 1-based), one per line.

Configs are written as YAML text with a marker "@@" right before the node an
error must point at; the marker is removed and its line/column become the
expected position. So a test states the position by where it puts the
marker, not by a hard-coded number.
"""

import os
import re
import unittest

from common import make_tempdir, run, tlsedge_bin
from pki import Certs

MARK = "@@"


def place(text):
    """Removes the markers from `text`; returns (text, [(line, col), ...])."""
    positions = []
    out_lines = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        for _ in range(10):
            i = line.find(MARK)
            if i < 0:
                break
            positions.append((lineno, i + 1))
            line = line[:i] + line[i + len(MARK):]
        out_lines.append(line)
    return "\n".join(out_lines), positions


LABEL63 = "a" * 63
LABEL64 = "b" * 64
# 3 labels of 63 + one of 61 + 3 dots = 253 characters: the longest legal name.
NAME253 = ".".join(["c" * 63, "d" * 63, "e" * 63, "f" * 61])
# 4 labels of 63 + 3 dots = 255 characters: every label legal, the name not.
NAME255 = ".".join(["g" * 63, "h" * 63, "i" * 63, "j" * 63])


class CheckTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = certs.leaf("shop", ["shop.test"])

    def config_text(self, sites=None, top_extra="", listen_https='["127.0.0.1:0"]',
                    certificates=None):
        """A complete config; the parts a test changes are parameters."""
        if certificates is None:
            certificates = (f"  shop-cert:\n"
                            f"    cert: {self.leaf.cert}\n"
                            f"    key: {self.leaf.key}\n")
        if sites is None:
            sites = ("  - name: shop\n"
                     "    hosts: [shop.test, www.shop.test]\n"
                     "    tls: { certificate: shop-cert }\n"
                     "    routes:\n"
                     "      - { path: /, upstream: shop-origin }\n")
        return ("workers: 1\n"
                f"{top_extra}"
                "listen:\n"
                f"  https: {listen_https}\n"
                "  http: [\"127.0.0.1:0\"]\n"
                f"state_dir: {os.path.join(self.tmp, 'state')}\n"
                "tls:\n"
                "  default_certificate: shop-cert\n"
                "certificates:\n"
                f"{certificates}"
                "sites:\n"
                f"{sites}"
                "upstreams:\n"
                "  shop-origin: { servers: [\"127.0.0.1:9\"] }\n")

    def write(self, text, name):
        path = os.path.join(self.tmp, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, path):
        return run([tlsedge_bin(), "check", "-c", path], timeout=30)

    def assert_ok(self, text, name):
        path = self.write(text, name)
        res = self.check(path)
        self.assertEqual(res.returncode, 0, f"check failed on a valid config\n{text}\n"
                                            f"stderr:\n{res.stderr}")
        self.assertEqual(res.stdout.strip(), f"{path}: ok")
        return res

    def assert_errors(self, marked_text, name, keys):
        """Expects exactly len(keys) error lines, the i-th marker at keys[i]."""
        text, positions = place(marked_text)
        self.assertEqual(len(positions), len(keys), "test bug: markers vs keys")
        path = self.write(text, name)
        res = self.check(path)
        self.assertEqual(res.returncode, 1, f"check should fail with status 1\nconfig:\n{text}\n"
                                            f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}")
        self.assertNotIn(": ok", res.stdout)
        lines = [l for l in res.stderr.splitlines() if l.strip()]
        fmt = re.compile(re.escape(path) + r":(\d+):(\d+): (\S+): \S.*$")
        for line in lines:
            self.assertRegex(line, fmt, f"error line not FILE:LINE:COLUMN: KEY: message\n"
                                        f"stderr:\n{res.stderr}")
        for (line_no, col), key in zip(positions, keys):
            prefix = f"{path}:{line_no}:{col}: {key}: "
            self.assertTrue(any(l.startswith(prefix) for l in lines),
                            f"expected an error starting with {prefix!r}\nconfig:\n"
                            + "\n".join(f"{i:3}| {l}" for i, l in enumerate(text.split("\n"), 1))
                            + f"\nstderr:\n{res.stderr}")
        self.assertEqual(len(lines), len(keys), f"one line per error expected\nstderr:\n{res.stderr}")
        return lines

    # --- valid ---

    def test_valid_config_is_ok(self):
        self.assert_ok(self.config_text(), "valid")

    def test_valid_boundaries_are_ok(self):
        # A 63-character label, a 253-character name, a wildcard, mixed case
        # and a trailing dot are all legal host names.
        sites = ("  - name: edge\n"
                 f"    hosts: [{LABEL63}.example.com, {NAME253}, \"*.wild.test\", Mixed.Case.Test.]\n"
                 "    tls: { certificate: shop-cert }\n"
                 "    redirect_status: 301\n"
                 "    hsts: { max_age: 31536000, include_subdomains: true }\n"
                 "    routes:\n"
                 "      - { path: /, upstream: shop-origin }\n"
                 "      - { path: /healthz, respond: { status: 200, body: \"ok\\n\", content_type: text/plain } }\n")
        self.assertEqual(len(NAME253), 253)
        self.assert_ok(self.config_text(sites=sites), "valid-boundaries")

    # --- invalid ---

    def test_unknown_top_level_key(self):
        text = self.config_text(top_extra="@@worker: 2\n")
        self.assert_errors(text, "unknown-top", ["worker"])

    def test_unknown_site_key(self):
        sites = ("  - name: shop\n"
                 "    hosts: [shop.test]\n"
                 "    @@redirect_http: false\n"
                 "    routes:\n"
                 "      - { path: /, upstream: shop-origin }\n")
        self.assert_errors(self.config_text(sites=sites), "unknown-site", ["sites[0].redirect_http"])

    def test_bad_port(self):
        text = self.config_text(listen_https="\n    - 127.0.0.1:0\n    - @@127.0.0.1:70000")
        self.assert_errors(text, "bad-port", ["listen.https[1]"])

    def test_label_of_64_characters(self):
        self.assertEqual(len(LABEL64), 64)
        sites = ("  - name: shop\n"
                 "    hosts:\n"
                 "      - shop.test\n"
                 f"      - @@{LABEL64}.example.com\n"
                 "    routes:\n"
                 "      - { path: /, upstream: shop-origin }\n")
        self.assert_errors(self.config_text(sites=sites), "label64", ["sites[0].hosts[1]"])

    def test_name_over_253_characters(self):
        self.assertEqual(len(NAME255), 255)
        sites = ("  - name: shop\n"
                 "    hosts:\n"
                 f"      - @@{NAME255}\n"
                 "    routes:\n"
                 "      - { path: /, upstream: shop-origin }\n")
        self.assert_errors(self.config_text(sites=sites), "name255", ["sites[0].hosts[0]"])

    def test_duplicate_host_across_sites(self):
        sites = ("  - name: shop\n"
                 "    hosts: [shop.test, www.shop.test]\n"
                 "    routes:\n"
                 "      - { path: /, upstream: shop-origin }\n"
                 "  - name: other\n"
                 "    hosts: [other.test, @@www.shop.test]\n"
                 "    routes:\n"
                 "      - { path: /, upstream: shop-origin }\n")
        self.assert_errors(self.config_text(sites=sites), "dup-host", ["sites[1].hosts[1]"])

    def test_duplicate_host_differs_only_in_case_and_trailing_dot(self):
        # Hosts are case-insensitive and a trailing dot is dropped: still a duplicate.
        sites = ("  - name: shop\n"
                 "    hosts: [shop.test]\n"
                 "    routes:\n"
                 "      - { path: /, upstream: shop-origin }\n"
                 "  - name: other\n"
                 "    hosts:\n"
                 "      - @@SHOP.Test.\n"
                 "    routes:\n"
                 "      - { path: /, upstream: shop-origin }\n")
        self.assert_errors(self.config_text(sites=sites), "dup-host-case", ["sites[1].hosts[0]"])

    def test_missing_upstream(self):
        sites = ("  - name: shop\n"
                 "    hosts: [shop.test]\n"
                 "    routes:\n"
                 "      - path: /\n"
                 "        upstream: @@nowhere\n")
        self.assert_errors(self.config_text(sites=sites), "no-upstream",
                           ["sites[0].routes[0].upstream"])

    def test_missing_certificate(self):
        sites = ("  - name: shop\n"
                 "    hosts: [shop.test]\n"
                 "    tls:\n"
                 "      certificate: no-such-cert\n"
                 "    routes:\n"
                 "      - { path: /, upstream: shop-origin }\n")
        # The name may be in `certificates:` or in the state directory's
        # store: resolved when the certificates load, so no line and column.
        path = self.write(self.config_text(sites=sites), "no-cert")
        res = self.check(path)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertEqual(res.stderr.strip(),
                         "site `shop`: no certificate named `no-such-cert` in `certificates:` "
                         f"or in {os.path.join(self.tmp, 'state', 'certs')}")

    def test_all_errors_reported_at_once(self):
        sites = ("  - name: shop\n"
                 "    hosts:\n"
                 f"      - @@{LABEL64}.test\n"
                 "    routes:\n"
                 "      - path: /\n"
                 "        upstream: @@nowhere\n")
        text = self.config_text(sites=sites, top_extra="@@colour: blue\n")
        self.assert_errors(text, "three-errors",
                           ["colour", "sites[0].hosts[0]", "sites[0].routes[0].upstream"])

    def test_run_refuses_bad_config(self):
        # `run` validates like `check` and exits non-zero without starting.
        text, [(line_no, col)] = place(self.config_text(top_extra="@@wrokers: 2\n"))
        path = self.write(text, "run-bad")
        res = run([tlsedge_bin(), "run", "-c", path], timeout=30)
        self.assertNotEqual(res.returncode, 0, res.stderr)
        self.assertIn(f"{path}:{line_no}:{col}: wrokers: ", res.stderr)
        self.assertNotIn("<6>ready", res.stderr + res.stdout)

    def test_version_is_the_builds(self):
        # The version CMake's project() declares, not a copy in the code.
        expected = os.environ["TLSEDGE_EXPECTED_VERSION"]
        res = run([tlsedge_bin(), "version"], timeout=30)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, f"tlsedge {expected}\n")

    def test_missing_file(self):
        path = os.path.join(self.tmp, "does-not-exist.yaml")
        res = self.check(path)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn(path, res.stderr)
        self.assertNotIn(": ok", res.stdout)


if __name__ == "__main__":
    unittest.main()
