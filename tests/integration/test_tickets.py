"""Session tickets: the same keys on every worker (resumption works whichever
worker a connection lands on), rotation with previous keys still accepted,
expiry after tls.ticket_keys_kept rotations, a ticket lifetime that matches,
and keys kept across a reload.
Python's ssl module as the client (session= / session_reused)."""

import os
import socket
import ssl
import time
import unittest

from common import CLIENT_TIMEOUT, make_tempdir, require_tool, run
from pki import Certs
from config import base_config, respond_route, site
from daemon import start_daemon
from clients import client_context

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
RECONNECTS = 20  # SO_REUSEPORT spreads them over both workers
ROTATED = r"ticket keys rotated \("


def lifetimes(seconds):
    """The lifetime hints a ticket for `seconds` may carry. BoringSSL counts
    session time in whole seconds from the ClientHello and takes what has
    elapsed off the lifetime when it sends the ticket, so a handshake that
    crosses a second boundary advertises one second less."""
    return (seconds - 1, seconds)


def fetch(port, ctx, session=None):
    """One request on a fresh connection offering `session`; returns
    (session_reused, the session to offer next time). The response is read
    first: TLS 1.3 tickets arrive after the handshake."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test", session=session) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                pass
            if not data.startswith(b"HTTP/1.1 200"):
                raise AssertionError(f"unexpected response: {data[:200]!r}")
            return s.session_reused, s.session


def make_daemon(cls, **tls):
    cls.tmp = make_tempdir(cls)
    cls.certs = Certs(os.path.join(cls.tmp, "pki"))
    leaf = cls.certs.leaf("a", ["a.test"])
    cls.config = base_config(
        os.path.join(cls.tmp, "state"), certificates={"a": leaf}, default_certificate="a",
        workers=2, sites=[site("a", ["a.test"], [respond_route("/", 200, "a\n")], "a")], **tls)
    cls.daemon = start_daemon(cls, cls.tmp, cls.config, args=("--log-level", "debug"))
    cls.port = cls.daemon.https_port


class ResumptionAcrossWorkersTest(unittest.TestCase):
    """workers: 2 and the default rotation (1h): every reconnect resumes the
    first session, whichever worker it lands on."""

    @classmethod
    def setUpClass(cls):
        make_daemon(cls)

    def assert_resumes_everywhere(self, version):
        ctx = client_context(self.certs.ca_cert, tls_version=version)
        reused, session = fetch(self.port, ctx)
        self.assertFalse(reused)
        self.assertTrue(session.has_ticket, "no session ticket issued")
        for i in range(RECONNECTS):
            reused, _ = fetch(self.port, ctx, session)
            self.assertTrue(reused, f"{version.name}: reconnect {i} did not resume")

    def test_tls13_resumption_across_workers(self):
        self.assert_resumes_everywhere(TLS13)

    def test_tls12_resumption_across_workers(self):
        self.assert_resumes_everywhere(TLS12)

    def test_one_tls13_ticket_per_handshake(self):
        # openssl s_client reports each NewSessionTicket it reads; -ign_eof
        # keeps it reading until tlsedge closes after the response.
        res = run([require_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{self.port}",
                   "-servername", "a.test", "-tls1_3", "-ign_eof"],
                  input=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        self.assertIn("HTTP/1.1 200", res.stdout)
        self.assertEqual(res.stdout.count("Post-Handshake New Session Ticket arrived"), 1,
                         res.stdout)

    def test_ticket_lifetime_is_how_long_keys_live(self):
        # Default rotation 1h, 2 kept: no TLS 1.3 ticket outlives 3h. TLS 1.2
        # keeps BoringSSL's 2h session timeout.
        for version, lifetime in ((TLS13, 3 * 3600), (TLS12, 2 * 3600)):
            ctx = client_context(self.certs.ca_cert, tls_version=version)
            _, session = fetch(self.port, ctx)
            self.assertIn(session.ticket_lifetime_hint, lifetimes(lifetime), version.name)

    def test_reload_keeps_ticket_keys(self):
        for version in (TLS13, TLS12):
            ctx = client_context(self.certs.ca_cert, tls_version=version)
            _, session = fetch(self.port, ctx)
            self.daemon.reload(self.config)
            for i in range(4):
                reused, _ = fetch(self.port, ctx, session)
                self.assertTrue(reused, f"{version.name}: no resumption after a reload ({i})")


class RotationTest(unittest.TestCase):
    """A 2s rotation keeping 1 previous key: a session from before one
    rotation resumes (and is renewed), one from before two does not (a full
    handshake, which still succeeds). Steps wait for the daemon's log line,
    written once every worker uses the new keys."""

    ROTATION = 2.0

    @classmethod
    def setUpClass(cls):
        make_daemon(cls, ticket_key_rotation="2s", ticket_keys_kept=1)

    def rotations(self):
        return self.daemon.count_lines(ROTATED)

    def test_ticket_lifetime_follows_rotation(self):
        ctx = client_context(self.certs.ca_cert, tls_version=TLS13)
        _, session = fetch(self.port, ctx)
        # 2s x (1 kept + current)
        self.assertIn(session.ticket_lifetime_hint, lifetimes(4))

    def wait_rotations(self, n):
        deadline = time.monotonic() + 10 * self.ROTATION + 10
        while self.rotations() < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"no rotation {n}\nlog:\n{self.daemon.log()}")
            time.sleep(0.05)

    def test_previous_key_resumes_older_does_not(self):
        ctx = client_context(self.certs.ca_cert, tls_version=TLS13)
        # Each step must finish within one rotation period of its log line;
        # a step that a slow machine lets overrun is tried again.
        for attempt in range(5):
            base = self.rotations()
            self.wait_rotations(base + 1)
            _, session = fetch(self.port, ctx)
            if self.rotations() != base + 1:
                continue
            self.wait_rotations(base + 2)
            reused, _ = fetch(self.port, ctx, session)
            if self.rotations() != base + 2:
                continue
            self.assertTrue(reused, "a session from before one rotation did not resume")
            self.wait_rotations(base + 3)
            reused, _ = fetch(self.port, ctx, session)
            self.assertFalse(reused, "a session from before two rotations (kept: 1) resumed")
            return
        self.fail("every attempt overran a rotation period")

    def test_renewed_ticket_outlives_its_key(self):
        # A resumption under the previous key hands out a ticket under the
        # current one, so a client that keeps reconnecting keeps resuming.
        # TLS 1.2, where the renewal is the callback's doing (a TLS 1.3
        # server sends new tickets after every handshake anyway).
        ctx = client_context(self.certs.ca_cert, tls_version=TLS12)
        base = self.rotations()
        self.wait_rotations(base + 1)
        _, session = fetch(self.port, ctx)
        for step in range(2, 5):
            self.wait_rotations(base + step)
            reused, session = fetch(self.port, ctx, session)
            self.assertTrue(reused, f"rotation {step}: the renewed session did not resume")


if __name__ == "__main__":
    unittest.main()
