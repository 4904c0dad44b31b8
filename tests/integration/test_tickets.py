"""Session tickets: the same keys on every worker (resumption works whichever
worker a connection lands on), rotation with previous keys still accepted,
expiry after tls.ticket_keys_kept rotations, a ticket lifetime that matches,
keys kept across a reload, and TLS 1.3 tickets sent when the handshake
completes rather than with the first response.
Python's ssl module as the client (session= / session_reused)."""

import os
import select
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
TICKET_WAIT = 2.0  # for a ticket that must come without a request (it takes ~1 ms)
REQUEST = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"


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
            s.sendall(REQUEST)
            read_response(s)
            return s.session_reused, s.session


def read_response(s):
    """The response to REQUEST on the TLS socket `s`, read to the end; fails
    unless it is the route's 200."""
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        pass
    if not (data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\na\n")):
        raise AssertionError(f"unexpected response: {data[:200]!r}")
    return data


def wait_for_new_ticket(s, timeout):
    """With no request sent on the TLS socket `s`: True once a session ticket
    the handshake did not bring has been read (Python handles post-handshake
    messages inside a read, which then finds no application data: a
    nonblocking recv ends in SSLWantReadError), False if none came within
    `timeout` seconds. OpenSSL's client names a TLS 1.3 session by a hash of
    its ticket, so a new ticket shows as a new session id."""
    before = s.session.id
    deadline = time.monotonic() + timeout
    s.setblocking(False)
    try:
        while s.session.id == before or not s.session.has_ticket:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                return False
            try:
                data = s.recv(65536)
            except ssl.SSLWantReadError:
                continue
            raise AssertionError(f"the server sent {data!r} before any request")
        return True
    finally:
        s.settimeout(CLIENT_TIMEOUT)


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


class TicketAtHandshakeTest(unittest.TestCase):
    """TLS 1.3 tickets leave when the handshake completes (issue 15). A client
    that keeps Nagle's algorithm on (Python's ssl, many libraries) holds its
    request back until its Finished is acknowledged; a server that sent
    nothing until it had a response let that ACK wait for the delayed-ACK
    timer (~40 ms on Linux) on every new connection. Here the client sends
    no request at all and must still get its ticket; then the request."""

    @classmethod
    def setUpClass(cls):
        make_daemon(cls)

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=CLIENT_TIMEOUT)
        self.assertEqual(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 0,
                         "the client must leave Nagle on")
        return raw

    def test_tls13_ticket_without_a_request(self):
        ctx = client_context(self.certs.ca_cert, tls_version=TLS13)
        session = None
        for attempt in ("full handshake", "resumption"):
            with self.connect() as raw:
                with ctx.wrap_socket(raw, server_hostname="a.test", session=session) as s:
                    self.assertEqual(s.session_reused, session is not None, attempt)
                    self.assertTrue(wait_for_new_ticket(s, TICKET_WAIT),
                                    f"{attempt}: no ticket within {TICKET_WAIT} s of the "
                                    "handshake without a request")
                    session = s.session
                    # The first request on the same Nagle-on connection.
                    s.sendall(REQUEST)
                    read_response(s)

    def test_tls12_ticket_in_the_handshake_and_nothing_after(self):
        # TLS 1.2 sends its ticket inside the handshake, before the server's
        # Finished (RFC 5077 section 3.3): there is nothing to send after it.
        ctx = client_context(self.certs.ca_cert, tls_version=TLS12)
        with self.connect() as raw:
            with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                self.assertTrue(s.session.has_ticket)
                self.assertEqual(select.select([s], [], [], 0.5)[0], [],
                                 "the server sent something after a TLS 1.2 handshake")
                s.sendall(REQUEST)
                read_response(s)


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
