"""Hostile clients against `limits`: slowloris heads, oversized heads and
bodies, stalled bodies, clients that never read, idle keep-alive, request
smuggling, TLS handshake stalls and garbage, and accept pausing at
max_connections / max_handshakes. After each, the daemon still serves a
normal request, and it exits 0 on SIGTERM (under ASan a leak fails that).

Raw sockets (plain and TLS through ssl.MemoryBIO) so that the test decides
every byte and its timing. Timeouts are short (under 2 s) to keep it fast;
the bounds asserted leave room for sanitizer builds."""

import json
import os
import select
import socket
import ssl
import struct
import time
import unittest

from common import CLIENT_TIMEOUT, make_tempdir
from pki import Certs
from config import base_config, respond_route, site, upstream, upstream_route
from daemon import start_daemon
from h2client import H2Client
from origin import Sink, header_values, pattern_bytes, start_helper, start_origin
from clients import client_context, http_request, https_request

HOST = "limits.test"
# Slack for timers measured from the client's side, and for slow builds.
EARLY = 0.1
LATE = 2.5

# Durations in the main config (seconds, as in the YAML below).
HEADER_TIMEOUT = 0.8
BODY_TIMEOUT = 0.8
SEND_TIMEOUT = 1.0
KEEPALIVE_TIMEOUT = 1.2
HANDSHAKE_TIMEOUT = 1.2
MAX_HEADER_SIZE = 2048
MAX_HEADERS = 20
MAX_BODY_SIZE = 65536


def ms(seconds):
    return f"{int(seconds * 1000)}ms"


def limits_config(tmp, leaf, origin, workers=1, **limits):
    cfg = base_config(
        os.path.join(tmp, "state"), workers=workers,
        certificates={"l": leaf}, default_certificate="l",
        sites=[site("l", [HOST], [
            upstream_route("/", "o"),
            respond_route("/static", 200, "static\n"),
        ], "l", redirect_https=False)],
        upstreams={"o": [origin.address]})
    cfg["limits"] = dict(limits)
    return cfg


# ---------------------------------------------------------------------------
# Raw clients


class Conn:
    """A raw client connection, plain or TLS. TLS runs over ssl.MemoryBIO,
    so the test sees the exact bytes and can half-close the TCP connection
    or stop in the middle of a handshake."""

    def __init__(self, port, tls=False, ca=None, handshake=True, timeout=CLIENT_TIMEOUT,
                 source=None):
        """`source`: the loopback address to connect from (127.0.0.0/8: each
        is another client to the daemon)."""
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls = None
        self._plain = b""  # decrypted, not yet returned
        self.eof = False
        if tls:
            ctx = client_context(ca)
            self._in = ssl.MemoryBIO()
            self._out = ssl.MemoryBIO()
            self.tls = ctx.wrap_bio(self._in, self._out, server_side=False, server_hostname=HOST)
            if handshake:
                self.handshake()

    def close(self):
        self.sock.close()

    # -- TLS --

    def client_hello(self):
        """The ClientHello bytes (not sent)."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self._out.read()

    def handshake(self, timeout=CLIENT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
            data = self._recv_raw(deadline - time.monotonic())
            if not data:
                raise ConnectionError("closed during the TLS handshake")
            self._in.write(data)

    def _flush(self):
        data = self._out.read()
        if data:
            self.sock.sendall(data)

    def _recv_raw(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        return self.sock.recv(1 << 16)

    # -- data --

    def send(self, data):
        if self.tls is None:
            self.sock.sendall(data)
        else:
            self.tls.write(data)
            self._flush()

    def half_close(self):
        """TCP FIN (no TLS close_notify): the client has nothing more to send."""
        self.sock.shutdown(socket.SHUT_WR)

    def recv(self, timeout):
        """Some plaintext, or b"" at EOF. Raises TimeoutError if nothing came."""
        if self._plain:
            data, self._plain = self._plain, b""
            return data
        deadline = time.monotonic() + timeout
        while True:
            if self.tls is not None:
                try:
                    data = self.tls.read(1 << 16)
                    if data:
                        return data
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:  # close_notify
                    self.eof = True
                    return b""
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("nothing received")
            try:
                raw = self._recv_raw(left)
            except socket.timeout:
                raise TimeoutError("nothing received")
            if not raw:
                self.eof = True
                return b""
            if self.tls is None:
                return raw
            self._in.write(raw)

    def read_all(self, timeout=CLIENT_TIMEOUT):
        """Everything until EOF (bounded by `timeout`). A reset counts as EOF
        only if `self.reset` is checked by the caller."""
        out = b""
        self.reset = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.recv(deadline - time.monotonic())
            except ConnectionResetError:
                self.reset = True
                return out
            if not data:
                return out
            out += data
        raise AssertionError(f"no EOF within {timeout}s; got {out[:200]!r}")

    def closed_within(self, timeout):
        """True if the server closed (EOF or reset) within `timeout`, reading
        and dropping whatever came first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.recv(deadline - time.monotonic())
            except TimeoutError:
                return False
            except (ConnectionResetError, ssl.SSLError):
                return True
            if not data:
                return True
        return False


def split_response(data):
    """The first HTTP/1.1 response in `data`: (status, headers, body, rest),
    headers a dict with lower-case names; None while incomplete. Bodies are
    framed by Content-Length or chunked (without trailers)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    pos = end + 4
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(data) < pos + n:
            return None
        return status, headers, data[pos:pos + n], data[pos + n:]
    if headers.get("transfer-encoding", "").lower() != "chunked":
        raise AssertionError(f"response without a length: {data[:300]!r}")
    body = b""
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(data[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if len(data) < pos + size + 2:
            return None
        if size == 0:
            return status, headers, body, data[pos + 2:]
        body += data[pos:pos + size]
        pos += size + 2


def parse_responses(data):
    """Every response in `data`, in order: [(status, headers, body)]."""
    out = []
    while data:
        r = split_response(data)
        if r is None:
            raise AssertionError(f"incomplete response: {data[:300]!r}")
        out.append(r[:3])
        data = r[3]
    return out


def recv_response(c, timeout=10):
    """Reads one whole response from `c`: (status, headers, body)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        r = split_response(data) if data else None
        if r is not None:
            if r[3]:
                raise AssertionError(f"more than one response: {data[:300]!r}")
            return r[:3]
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no whole response within {timeout}s: {data[:300]!r}")
        chunk = c.recv(left)
        if not chunk:
            raise AssertionError(f"EOF before a whole response: {data[:300]!r}")
        data += chunk


def status_of(data):
    line = data.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise AssertionError(f"not an HTTP response: {data[:200]!r}")
    return int(parts[1])


def get(path, extra=b""):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n" + extra + b"\r\n"


# ---------------------------------------------------------------------------


class LimitsTest(unittest.TestCase):
    """Per-connection limits, one daemon with one worker."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("l", [HOST])
        cls.ca = cls.certs.ca_cert
        cls.origin = start_origin(cls, "origin")
        cfg = limits_config(
            cls.tmp, cls.leaf, cls.origin,
            header_timeout=ms(HEADER_TIMEOUT), body_timeout=ms(BODY_TIMEOUT),
            send_timeout=ms(SEND_TIMEOUT), keepalive_timeout=ms(KEEPALIVE_TIMEOUT),
            handshake_timeout=ms(HANDSHAKE_TIMEOUT), max_header_size=MAX_HEADER_SIZE,
            max_headers=MAX_HEADERS, max_body_size=MAX_BODY_SIZE)
        cls.daemon = start_daemon(cls, cls.tmp, cfg, args=["--log-level", "debug"])
        cls.https_port = cls.daemon.https_port
        cls.http_port = cls.daemon.http_port

    def tearDown(self):
        self.assert_still_serving()

    # -- helpers --

    def connect(self, tls, **kw):
        c = Conn(self.https_port if tls else self.http_port, tls=tls, ca=self.ca, **kw)
        self.addCleanup(c.close)
        return c

    def assert_still_serving(self):
        r = https_request(self.https_port, HOST, "/static", ca=self.ca)
        self.assertEqual((r.status, r.body), (200, b"static\n"))
        r = http_request(self.http_port, "/after", headers={"Host": HOST})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["path"], "/after")

    def assert_between(self, elapsed, low, high, what):
        self.assertGreaterEqual(elapsed, low - EARLY, f"{what}: after {elapsed:.3f}s, too early")
        self.assertLessEqual(elapsed, high + LATE, f"{what}: after {elapsed:.3f}s, too late")

    def log_count(self, text):
        return sum(1 for line in self.daemon.lines() if text in line)

    def wait_log_count(self, text, n, timeout=5):
        """Waits (bounded) until `text` was logged `n` times; returns the count."""
        deadline = time.monotonic() + timeout
        while self.log_count(text) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.log_count(text)

    def refused(self, c, data, status):
        """Sends `data`, expects `status` and then EOF; returns the response bytes."""
        c.send(data)
        got = c.read_all()
        self.assertFalse(c.reset, f"reset instead of a {status} response: {got[:200]!r}")
        self.assertEqual(status_of(got), status, got[:300])
        responses = parse_responses(got)
        self.assertEqual(len(responses), 1, got[:300])
        self.assertEqual(responses[0][1].get("connection"), "close")
        return got

    # -- slowloris: header_timeout --

    def slowloris(self, tls):
        c = self.connect(tls)
        head = get("/slow") + b"X-Never: ending"  # no end of the head, ever
        got = b""
        t0 = time.monotonic()
        for i in range(200):  # 200 * 50 ms = 10 s at most
            if i < len(head):
                try:
                    c.send(head[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    break
            try:
                data = c.recv(0.05)
            except TimeoutError:
                continue
            if not data:
                break
            got += data
        elapsed = time.monotonic() - t0
        got += c.read_all()
        self.assertEqual(status_of(got), 408, got[:300])
        self.assert_between(elapsed, HEADER_TIMEOUT, HEADER_TIMEOUT, "408 for a slow head")
        self.assertNotIn("/slow", self.origin.paths())

    def test_slowloris_head_gets_408_plain(self):
        before = self.log_count("request head timed out")
        self.slowloris(tls=False)
        self.assertEqual(self.wait_log_count("request head timed out", before + 1), before + 1)

    def test_slowloris_head_gets_408_tls(self):
        self.slowloris(tls=True)

    def test_head_timeout_counts_from_the_first_byte(self):
        # Idle time before the head does not count against header_timeout
        # (that is keepalive_timeout's); a head sent whole, late, is served.
        c = self.connect(True)
        # Past header_timeout, well before keepalive_timeout (1.2 s).
        time.sleep(HEADER_TIMEOUT + 0.05)
        c.send(get("/late"))
        self.assertEqual(recv_response(c)[0], 200)

    # -- max_header_size, max_headers --

    def test_head_over_max_header_size_431(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.connect(tls)
                pad = b"X-Pad: " + b"p" * MAX_HEADER_SIZE + b"\r\n"
                self.refused(c, get("/big", pad), 431)
        self.assertNotIn("/big", self.origin.paths())

    def test_endless_head_431_without_waiting_for_its_end(self):
        c = self.connect(False)
        c.send(b"GET /endless HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX: ")
        got = b""
        for _ in range(64):  # stops at the limit, not at the end of the head
            try:
                c.send(b"a" * 1024)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                data = c.recv(0.05)
            except TimeoutError:
                continue
            got += data
            if not data:
                break
        got += c.read_all()
        self.assertEqual(status_of(got), 431, got[:300])

    def test_head_just_under_max_header_size_served(self):
        base = get("/fits", b"X-Pad: \r\n")
        pad = b"X-Pad: " + b"p" * (MAX_HEADER_SIZE - len(base)) + b"\r\n"
        req = get("/fits", pad)
        self.assertEqual(len(req), MAX_HEADER_SIZE)
        c = self.connect(False)
        c.send(req)
        self.assertEqual(recv_response(c)[0], 200)

    def test_too_many_headers_431(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.connect(tls)
                extra = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS))  # + Host
                self.refused(c, get("/many", extra), 431)
        extra = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS - 1))  # + Host
        c = self.connect(False)
        c.send(get("/enough", extra))
        self.assertEqual(recv_response(c)[0], 200)
        self.assertNotIn("/many", self.origin.paths())

    # -- keepalive_timeout --

    def test_idle_keep_alive_closed(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.connect(tls)
                c.send(get("/ka"))
                self.assertEqual(recv_response(c)[0], 200)
                t0 = time.monotonic()
                rest = c.read_all(KEEPALIVE_TIMEOUT + LATE + 1)
                elapsed = time.monotonic() - t0
                self.assertEqual(rest, b"", "closed silently, without a response")
                self.assert_between(elapsed, KEEPALIVE_TIMEOUT, KEEPALIVE_TIMEOUT, "idle close")

    def test_idle_before_first_request_closed(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.connect(tls)  # TLS: after the handshake
                t0 = time.monotonic()
                rest = c.read_all(KEEPALIVE_TIMEOUT + LATE + 1)
                self.assertEqual(rest, b"")
                self.assert_between(time.monotonic() - t0, KEEPALIVE_TIMEOUT, KEEPALIVE_TIMEOUT,
                                    "idle close before any request")

    # -- body_timeout --

    def test_stalled_body_408(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.connect(tls)
                c.send(b"POST /stalled HTTP/1.1\r\nHost: " + HOST.encode() +
                       b"\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
                t0 = time.monotonic()
                got = c.read_all(BODY_TIMEOUT + LATE + 1)
                self.assertEqual(status_of(got), 408, got[:300])
                self.assert_between(time.monotonic() - t0, BODY_TIMEOUT, BODY_TIMEOUT,
                                    "408 for a stalled body")
        time.sleep(0.2)
        self.assertNotIn("/stalled", self.origin.paths(), "a cut body reached the origin whole")

    def test_slow_body_within_the_gap_is_served(self):
        # body_timeout bounds the gap between reads, not the whole body.
        c = self.connect(False)
        pieces = 5
        c.send(b"POST /trickle HTTP/1.1\r\nHost: " + HOST.encode() +
               b"\r\nContent-Length: %d\r\n\r\n" % (pieces * 10))
        for _ in range(pieces):
            time.sleep(BODY_TIMEOUT / 2)
            c.send(b"y" * 10)
        status, _, echo = recv_response(c)
        self.assertEqual(status, 200, echo)
        self.assertEqual(json.loads(echo)["body_len"], 50)

    def test_stalled_http2_stream_408_while_another_trickles(self):
        # Over HTTP/2 each stream has its own body countdown: one stream's
        # progress does not keep another's stalled body alive, and the
        # connection serves on.
        c = H2Client(self.https_port, HOST, ca=self.ca)
        self.addCleanup(c.close)
        self.assertEqual(c.alpn, "h2")
        stalled = c.request("/stalled-h2", authority=HOST, method="POST",
                            headers=[("content-length", "100")], body=b"x" * 10, end_stream=False)
        trickle = c.request("/trickle-h2", authority=HOST, method="POST",
                            headers=[("content-length", "50")], end_stream=False)
        for _ in range(5):
            c.wait(lambda: False, timeout=BODY_TIMEOUT / 2)  # reading meanwhile
            c.send_body(trickle, b"y" * 10, end_stream=False)
        c.conn.end_stream(trickle)
        c.flush()
        # 2.5 body timeouts of the trickle's progress: the stalled stream
        # was answered meanwhile.
        self.assertEqual(c.responses[stalled].status, 408)
        r = c.wait_stream(trickle)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.body)["body_len"], 50)
        self.assertEqual(c.get("/", authority=HOST).status, 200)  # the same connection
        time.sleep(0.2)
        self.assertNotIn("/stalled-h2", self.origin.paths(), "a cut body reached the origin whole")

    def test_http2_body_held_back_by_our_window_is_not_stalled(self):
        # Streams whose origin takes nothing keep their last DATA
        # unconsumed; enough of them fill the connection's window, and
        # then no stream's body can come. That one is held back by us, not
        # stalled by the client: no 408 however long it lasts. Resetting
        # the held streams hands their bytes back (a stream cut while held
        # must not shrink the window for good), the body comes, and it is
        # served.
        tmp = make_tempdir(self)
        # Its TLS handshake never ends: each held stream's body waits in
        # tlsedge (1 MiB, then the stream is paused), none in the kernel.
        sink = start_helper(self, Sink(backlog=64))
        cfg = limits_config(tmp, self.leaf, self.origin, body_timeout=ms(BODY_TIMEOUT))
        cfg["sites"][0]["routes"].insert(0, upstream_route("/sink", "sink"))
        cfg["upstreams"]["sink"] = upstream([sink.address], connect_timeout="120s",
                                            tls={"verify": False})
        daemon = start_daemon(self, tmp, cfg)
        c = H2Client(daemon.https_port, HOST, ca=self.ca)
        self.addCleanup(c.close)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.wait(lambda: c.conn.outbound_flow_control_window > 65535, timeout=5)
        held = []
        chunk = b"s" * 16384
        deadline = time.monotonic() + 60
        # 1 MiB of connection window, at most 64 KiB unconsumed per stream:
        # 17 streams, each pushed until tlsedge stops taking its bytes.
        while c.conn.outbound_flow_control_window > 0 and len(held) < 40:
            self.assertLess(time.monotonic(), deadline, "the window never filled")
            sid = c.request(f"/sink/{len(held)}", authority=HOST, method="POST", end_stream=False)
            held.append(sid)
            last_window = time.monotonic()
            while time.monotonic() - last_window < 0.3 and time.monotonic() < deadline:
                n = min(len(chunk), c.conn.local_flow_control_window(sid))
                if n > 0:
                    c.conn.send_data(sid, chunk[:n])
                    c.flush()
                    last_window = time.monotonic()
                else:
                    c.receive_once(0.1)  # WINDOW_UPDATEs until the stream is paused
        self.assertEqual(c.conn.outbound_flow_control_window, 0)
        for sid in held:
            self.assertIsNone(c.responses[sid].status, f"held stream {sid} was answered")
        waiting = c.request("/held-back", authority=HOST, method="POST",
                            headers=[("content-length", "10")], end_stream=False)
        c.wait(lambda: False, timeout=2.5 * BODY_TIMEOUT)
        r = c.responses[waiting]
        self.assertIsNone(r.status, "a body our own window held back timed out")
        self.assertIsNone(r.reset)
        self.assertEqual(c.conn.outbound_flow_control_window, 0)
        for sid in held:
            c.conn.reset_stream(sid)
        c.flush()
        c.send_body(waiting, b"w" * 10)
        r = c.wait_stream(waiting)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.body)["body_len"], 10)
        self.assertIsNone(c.goaway)

    def test_http2_header_block_left_unfinished_ends_the_connection(self):
        # HEADERS without END_HEADERS, then nothing: no other frame may come
        # on the connection until the block ends (RFC 9113 6.10), so the
        # stalled stream ends the connection, within header_timeout, even
        # while another stream's body (a far longer body_timeout) is due.
        tmp = make_tempdir(self)
        header_timeout = 0.5
        cfg = limits_config(tmp, self.leaf, self.origin, header_timeout=ms(header_timeout),
                            body_timeout="60s")
        daemon = start_daemon(self, tmp, cfg)
        c = H2Client(daemon.https_port, HOST, ca=self.ca, validate=False)
        self.addCleanup(c.close)
        c.request("/stalled-first", authority=HOST, method="POST",
                  headers=[("content-length", "100")], body=b"x" * 10, end_stream=False)
        # The SETTINGS exchanged first: an ACK from the client after the
        # HEADERS would itself be the protocol error.
        c.wait(lambda: False, timeout=0.3)
        block = c.conn.encoder.encode([(":method", "GET"), (":scheme", "https"),
                                       (":authority", HOST), (":path", "/")])
        c.sock.sendall(struct.pack(">I", len(block))[1:] + bytes([0x1, 0x1]) +
                       struct.pack(">I", 3) + block)  # END_STREAM, no END_HEADERS
        t0 = time.monotonic()
        c.wait(lambda: c.goaway is not None or c.closed, timeout=header_timeout + LATE + 1)
        self.assertTrue(c.goaway is not None or c.closed, "the connection is still open")
        self.assert_between(time.monotonic() - t0, header_timeout, header_timeout,
                            "an unfinished HTTP/2 header block")

    # -- send_timeout --

    def test_client_that_never_reads_is_dropped_and_others_are_served(self):
        size = 32 << 20  # far more than the socket buffers and the 1 MiB watermark
        c = self.connect(True)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        c.send(get(f"/bytes?n={size}&seed=3"))
        # Meanwhile (one worker) other clients are answered at once.
        for i in range(5):
            t = time.monotonic()
            r = https_request(self.https_port, HOST, f"/static?{i}", ca=self.ca)
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t, 2.0, "a stuck client blocked the worker")
            time.sleep(0.2)
        # The stuck connection was closed: what can still be read ends short.
        self.assertEqual(self.wait_log_count("took no response bytes", 1, SEND_TIMEOUT * 2 + 5), 1,
                         self.daemon.log()[-3000:])
        total = 0
        try:
            while True:
                data = c.recv(2)
                if not data:
                    break
                total += len(data)
        except (ConnectionResetError, ssl.SSLError, TimeoutError):
            pass
        self.assertLess(total, size, "the whole response arrived: the client was not dropped")

    # -- max_body_size --

    def test_content_length_over_max_body_size_413_before_the_body(self):
        before = self.origin.request_count()
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.connect(tls)
                # Only the head: the answer must not wait for the body.
                self.refused(c, b"POST /toolarge HTTP/1.1\r\nHost: " + HOST.encode() +
                             b"\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_SIZE + 1), 413)
        self.assertEqual(self.origin.request_count(), before)

    def test_413_is_read_not_reset_while_the_client_keeps_sending(self):
        # Lingering close: the client sends its whole (refused) body before
        # reading; it must still get the 413 rather than a connection reset.
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.connect(tls)
                c.send(b"POST /toolarge HTTP/1.1\r\nHost: " + HOST.encode() +
                       b"\r\nContent-Length: %d\r\n\r\n" % (1 << 20))
                time.sleep(0.2)  # the 413 is sent, the server has closed its side
                for _ in range(16):
                    c.send(b"z" * (64 << 10))
                got = c.read_all()
                self.assertFalse(c.reset, "reset: the 413 was lost")
                self.assertEqual(status_of(got), 413, got[:300])

    def test_chunked_over_max_body_size_413_and_origin_never_gets_it_whole(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.connect(tls)
                c.send(b"POST /chunked-big HTTP/1.1\r\nHost: " + HOST.encode() +
                       b"\r\nTransfer-Encoding: chunked\r\n\r\n")
                got = b""
                for _ in range(MAX_BODY_SIZE // 8192 + 8):
                    try:
                        c.send(b"2000\r\n" + b"c" * 8192 + b"\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    try:
                        got += c.recv(0.05)
                        break
                    except TimeoutError:
                        pass
                got += c.read_all()
                self.assertEqual(status_of(got), 413, got[:300])
        time.sleep(0.2)
        self.assertNotIn("/chunked-big", self.origin.paths())

    def test_body_of_exactly_max_body_size_served(self):
        body = pattern_bytes(MAX_BODY_SIZE, 9)
        for chunked in (False, True):
            with self.subTest(chunked=chunked):
                headers = {"Host": HOST}
                if chunked:
                    headers["Transfer-Encoding"] = "chunked"
                r = https_request(self.https_port, HOST, "/exact", ca=self.ca, method="POST",
                                  body=body, headers=headers, encode_chunked=chunked)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["body_len"], MAX_BODY_SIZE)

    # -- request smuggling: 400, close, nothing smuggled reaches the origin --

    SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"

    def smuggling_cases(self):
        h = b"Host: " + HOST.encode() + b"\r\n"
        s = self.SMUGGLED
        cl = b"%d" % (5 + len(s))
        return {
            "content-length and transfer-encoding":
                b"POST /s1 HTTP/1.1\r\n" + h + b"Content-Length: " + cl +
                b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + s,
            "transfer-encoding and content-length":
                b"POST /s2 HTTP/1.1\r\n" + h + b"Transfer-Encoding: chunked\r\nContent-Length: " +
                cl + b"\r\n\r\n0\r\n\r\n" + s,
            "two differing content-lengths":
                b"POST /s3 HTTP/1.1\r\n" + h + b"Content-Length: 0\r\nContent-Length: " + cl +
                b"\r\n\r\n0\r\n\r\n" + s,
            "transfer-encoding chunked, identity":
                b"POST /s4 HTTP/1.1\r\n" + h +
                b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + s,
            "transfer-encoding xchunked":
                b"POST /s5 HTTP/1.1\r\n" + h + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + s,
            "invalid character in a header name":
                b"GET /s6 HTTP/1.1\r\n" + h + b"X\"Bad: v\r\n\r\n" + s,
            "control character in a header value":
                b"GET /s7 HTTP/1.1\r\n" + h + b"X-Bad: a\x01b\r\n\r\n" + s,
            "bad chunk size":
                b"POST /s8 HTTP/1.1\r\n" + h + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + s,
            "chunk size overflow":
                b"POST /s9 HTTP/1.1\r\n" + h +
                b"Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\n" + s,
            "CR without LF":
                b"GET /s10 HTTP/1.1\r\n" + h + b"X-A: a\rTransfer-Encoding: chunked\r\n\r\n" + s,
            "space before the colon":
                b"POST /s11 HTTP/1.1\r\n" + h + b"Transfer-Encoding : chunked\r\n"
                b"Content-Length: 5\r\n\r\n0\r\n\r\n" + s,
            "bare LF ending a header line":
                b"GET /s12 HTTP/1.1\r\n" + h + b"X-A: a\nTransfer-Encoding: chunked\r\n\r\n" + s,
        }

    def test_smuggling_attempts_get_400_and_close(self):
        before = self.log_count("bad request:")
        cases = self.smuggling_cases()
        for tls in (False, True):
            for name, data in cases.items():
                with self.subTest(case=name, tls=tls):
                    c = self.connect(tls)
                    got = self.refused(c, data, 400)
                    self.assertNotIn(b"/smuggled", got)
        time.sleep(0.2)
        paths = self.origin.paths()
        self.assertNotIn("/smuggled", paths)
        for i in range(1, 13):
            self.assertNotIn(f"/s{i}", paths, "a refused request reached the origin")
        self.assertEqual(self.wait_log_count("bad request:", before + 2 * len(cases)),
                         before + 2 * len(cases))

    def test_obs_fold_does_not_smuggle(self):
        # llhttp accepts obs-fold (RFC 9112 5.2 allows replacing it with SP):
        # the folded line stays inside the previous value, never a header of
        # its own, so it cannot change the framing.
        body = b"0\r\n\r\n" + self.SMUGGLED
        c = self.connect(False)
        c.send(b"POST /fold HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-Fold: a\r\n"
               b" Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        status, _, echo = recv_response(c)
        self.assertEqual(status, 200, echo)
        record = json.loads(echo)
        self.assertEqual(record["body_len"], len(body))
        self.assertEqual(header_values(record, "Transfer-Encoding"), [])
        self.assertEqual(len(header_values(record, "X-Fold")), 1)
        time.sleep(0.2)
        self.assertNotIn("/smuggled", self.origin.paths())

    # -- pipelining and half-close --

    def test_pipelined_then_half_closed_gets_every_response(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.connect(tls)
                tag = "tls" if tls else "plain"
                c.send(get(f"/p/{tag}/1?delay_ms=200") + get(f"/p/{tag}/2") +
                       b"POST /p/" + tag.encode() + b"/3 HTTP/1.1\r\nHost: " + HOST.encode() +
                       b"\r\nContent-Length: 3\r\n\r\nabc" + get("/static") +
                       get(f"/p/{tag}/5"))
                c.half_close()
                got = c.read_all()
                self.assertFalse(c.reset)
                responses = parse_responses(got)
                self.assertEqual([r[0] for r in responses], [200] * 5)
                self.assertEqual(responses[3][2], b"static\n")
                paths = [json.loads(r[2])["path"] for i, r in enumerate(responses) if i != 3]
                self.assertEqual(paths, [f"/p/{tag}/1?delay_ms=200", f"/p/{tag}/2",
                                         f"/p/{tag}/3", f"/p/{tag}/5"])

    def test_half_closed_in_the_middle_of_a_head_is_closed(self):
        c = self.connect(False)
        c.send(get("/whole") + b"GET /part HTTP/1.1\r\nHo")
        c.half_close()
        got = c.read_all()
        responses = parse_responses(got)
        self.assertEqual([r[0] for r in responses], [200])
        self.assertNotIn("/part", self.origin.paths())


class HandshakeLimitsTest(unittest.TestCase):
    """handshake_timeout, TLS garbage."""

    HANDSHAKE = 1.5

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("l", [HOST])
        cls.ca = cls.certs.ca_cert
        cls.origin = start_origin(cls, "origin")
        cfg = limits_config(cls.tmp, cls.leaf, cls.origin, handshake_timeout=ms(cls.HANDSHAKE))
        cls.daemon = start_daemon(cls, cls.tmp, cfg, args=["--log-level", "debug"])
        cls.port = cls.daemon.https_port

    def tearDown(self):
        r = https_request(self.port, HOST, "/static", ca=self.ca)
        self.assertEqual(r.status, 200)

    log_count = LimitsTest.log_count
    wait_log_count = LimitsTest.wait_log_count

    def stalled(self, first_bytes):
        before = self.log_count("TLS handshake timed out")
        c = Conn(self.port, tls=True, ca=self.ca, handshake=False)
        self.addCleanup(c.close)
        hello = c.client_hello()
        t0 = time.monotonic()
        if first_bytes:
            c.sock.sendall(hello[:first_bytes(len(hello))])
        self.assertTrue(c.closed_within(self.HANDSHAKE + LATE + 1), "a stalled handshake stayed open")
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, self.HANDSHAKE - EARLY)
        self.assertLessEqual(elapsed, self.HANDSHAKE + LATE)
        self.assertEqual(self.wait_log_count("TLS handshake timed out", before + 1), before + 1)

    def test_nothing_sent_closed_after_handshake_timeout(self):
        self.stalled(None)

    def test_half_a_client_hello_closed_after_handshake_timeout(self):
        self.stalled(lambda n: n // 2)

    def test_garbage_closed_at_once(self):
        before = self.log_count("TLS handshake failed")
        for garbage in (get("/plain-http-to-tls"), b"\x16\x03\x01\x00\x05hello" + b"\x00" * 64,
                        b"\xff" * 512):
            with self.subTest(garbage=garbage[:16]):
                c = Conn(self.port)
                self.addCleanup(c.close)
                t0 = time.monotonic()
                c.sock.sendall(garbage)
                self.assertTrue(c.closed_within(self.HANDSHAKE + LATE), "garbage kept open")
                self.assertLess(time.monotonic() - t0, self.HANDSHAKE / 2, "not closed at once")
        self.assertEqual(self.wait_log_count("TLS handshake failed", before + 3), before + 3)


class AcceptLimitsTest(unittest.TestCase):
    """max_connections and max_handshakes pause accepting: the kernel backlog
    holds new connections until the worker is below the limit again."""

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        self.leaf = self.certs.leaf("l", [HOST])
        self.ca = self.certs.ca_cert
        self.origin = start_origin(self, "origin")

    def start(self, **limits):
        cfg = limits_config(self.tmp, self.leaf, self.origin, workers=1,
                            keepalive_timeout="30s", handshake_timeout="30s", **limits)
        self.daemon = start_daemon(self, self.tmp, cfg, args=["--log-level", "debug"])
        return self.daemon.https_port

    def conn(self, port, **kw):
        c = Conn(port, ca=self.ca, **kw)
        self.addCleanup(c.close)
        return c

    def assert_no_answer(self, c, seconds):
        r, _, _ = select.select([c.sock], [], [], seconds)
        self.assertEqual(r, [], "the server answered although it should not accept")

    def served_after_wait(self, c):
        """`c` sent its ClientHello while accepting was paused: finish the
        handshake and a request."""
        c.handshake(timeout=10)
        c.send(get("/static"))
        self.assertEqual(recv_response(c)[0], 200)

    def serve_waiting(self, c, tls_conn):
        if c is tls_conn:
            self.served_after_wait(c)
        else:  # plain HTTP: its request was sent while waiting
            self.assertEqual(recv_response(c)[0], 200)

    def test_max_connections(self):
        port = self.start(max_connections=5)
        held = []
        for i in range(5):
            c = self.conn(port, tls=True)
            c.send(get(f"/static?{i}"))
            self.assertEqual(recv_response(c)[0], 200)
            held.append(c)
        # The 6th: TCP connects (the kernel backlog) but TLS gets no answer.
        sixth = self.conn(port, tls=True, handshake=False)
        sixth.sock.sendall(sixth.client_hello())
        self.assert_no_answer(sixth, 0.8)
        # Plain HTTP waits as well (the whole worker stopped accepting).
        plain = self.conn(self.daemon.http_port)
        plain.send(get("/static"))
        self.assert_no_answer(plain, 0.3)
        # A place frees: exactly one of the two waiting clients is accepted
        # (which one is up to the kernel and the loop), the other waits on.
        held.pop().close()
        ready, _, _ = select.select([sixth.sock, plain.sock], [], [], 10)
        self.assertEqual(len(ready), 1, "not exactly one waiting client accepted")
        first, second = (sixth, plain) if ready[0] is sixth.sock else (plain, sixth)
        self.serve_waiting(first, sixth)
        self.assert_no_answer(second, 0.3)
        held.pop().close()
        self.serve_waiting(second, sixth)
        self.assertGreaterEqual(
            sum(1 for l in self.daemon.lines() if "accepting paused" in l), 1)

    def test_max_handshakes(self):
        port = self.start(max_handshakes=2)
        stalled = [self.conn(port) for _ in range(2)]  # TCP only: handshakes in progress
        time.sleep(0.2)
        third = self.conn(port, tls=True, handshake=False)
        third.sock.sendall(third.client_hello())
        self.assert_no_answer(third, 0.8)
        stalled[0].close()  # that handshake fails: below the limit again
        self.served_after_wait(third)
        # Finished handshakes do not count: more clients are served.
        for i in range(3):
            r = https_request(port, HOST, f"/static?{i}", ca=self.ca)
            self.assertEqual(r.status, 200)
        self.assertGreaterEqual(
            sum(1 for l in self.daemon.lines() if "accepting paused" in l), 1)


if __name__ == "__main__":
    unittest.main()
