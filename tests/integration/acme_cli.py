"""A mixin for ACME tests: the usual per-test state (a state directory, a
test PKI with a fallback certificate, a free http port, the admin socket's
path), `tlsedge acme ...` through the daemon's admin socket (`self.socket`),
the sites' status as JSON, and waiting for log lines."""

import json
import os
import time

from common import closed_port, make_tempdir, run, tlsedge_bin
import pki


class AcmeCli:
    socket = None  # set by the test: the daemon's admin socket

    def make_acme_state(self):
        """self.tmp, self.state, self.certs, self.fallback (a certificate for
        fallback.test), self.http_port (free), self.socket."""
        self.tmp = make_tempdir(self)
        self.state = os.path.join(self.tmp, "state")
        self.certs = pki.Certs(os.path.join(self.tmp, "pki"))
        self.fallback = self.certs.leaf("fallback", ["fallback.test"])
        self.http_port = closed_port()
        self.socket = os.path.join(self.state, "admin.sock")

    def acme_cli(self, *args, expect=0):
        res = run([tlsedge_bin(), "acme", *args, "--socket", self.socket], timeout=60)
        self.assertEqual(res.returncode, expect, res.stdout + res.stderr)
        return res

    def statuses(self):
        """Every ACME site's status, by site name."""
        return {s["site"]: s for s in json.loads(self.acme_cli("status", "--json").stdout)["sites"]}

    def status(self):
        return json.loads(self.acme_cli("status", "--json").stdout)["sites"][0]

    def settled_status(self, serial_not=None, timeout=40.0):
        """The first site's status once its certificate is stored and no
        order is in flight (and, with `serial_not`, once its serial is
        another): the "issued" log line comes before the manager has
        stored the certificate and read it back."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if (st["stored"] and not st["in_flight"] and st["serial"]
                    and (serial_not is None or int(st["serial"], 16) != serial_not)):
                return st
            if time.monotonic() > deadline:
                self.fail(f"status not settled after {timeout}s: {st}")
            time.sleep(0.05)

    def wait_lines(self, d, pattern, count=1, timeout=40.0):
        deadline = time.monotonic() + timeout
        while d.count_lines(pattern) < count:
            if time.monotonic() > deadline:
                self.fail(f"`{pattern}` not logged {count} time(s) after {timeout}s\n{d.log()}")
            time.sleep(0.05)
