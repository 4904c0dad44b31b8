"""Upgrade tunnels and interim responses through tlsedge over TLS: WebSocket
echo (RFC 6455), bytes sent right after either head, half-close both ways,
backpressure both ways, refused upgrades, CONNECT, upgrade requests answered
by tlsedge itself, Expect: 100-continue, 103 Early Hints, HTTP/1.0 clients,
and a drain that ends a tunnel."""

import hashlib
import json
import os
import select
import signal
import socket
import struct
import threading
import time
import unittest
import uuid

from common import CLIENT_TIMEOUT, Head, SockReader, make_tempdir
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import header_values, pattern_bytes, start_origin, start_raw_origin
from clients import TlsStream
from websocket import (OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT, accept_for, encode_frame, new_key,
                       read_message, serve_echo)

KIB = 1 << 10
MIB = 1 << 20
STALL_SECONDS = 1.5  # a send blocked this long counts as held back


def sha(data):
    return hashlib.sha256(data).hexdigest()


def tag():
    return uuid.uuid4().hex[:12]


def upgrade_head(path, *, host="ws.test", protocol="websocket", key=None, version="HTTP/1.1",
                 extra=()):
    lines = [f"GET {path} {version}", f"Host: {host}", "Connection: Upgrade",
             f"Upgrade: {protocol}"]
    if key is not None:
        lines += [f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def switching(conn, protocol, after=b""):
    """An origin's 101 head (plus bytes in the same send)."""
    conn.sendall(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: {protocol}\r\n"
                 "Connection: Upgrade\r\n\r\n".encode() + after)


def kernel_buffer_bound():
    """Bytes that TCP buffers and tlsedge's write queue may hold in one
    direction of a tunnel whose far end reads nothing: the reading socket of
    tlsedge may autotune up to tcp_rmem's max, its sending socket up to
    tcp_wmem's max; the test's own sockets are kept small; tlsedge's queue
    stops at 1 MiB (+ one read). Generous on purpose: without backpressure
    tlsedge would take everything offered."""
    def maximum(name, default):
        try:
            with open(f"/proc/sys/net/ipv4/{name}") as f:
                return int(f.read().split()[2])
        except (OSError, ValueError, IndexError):
            return default
    return maximum("tcp_rmem", 6 * MIB) + 2 * maximum("tcp_wmem", 4 * MIB) + 8 * MIB


# --------------------------------------------------------------------------
# Origin behaviour (RawOrigin handlers), keyed by path. `?t=TAG` names the
# test's own connection in results and events.

EVENTS = {}  # tag -> threading.Event the test sets to let a handler go on
EVENTS_LOCK = threading.Lock()


def event_for(t):
    with EVENTS_LOCK:
        return EVENTS.setdefault(t, threading.Event())


def query_tag(head):
    return head.target.partition("?t=")[2]


def h_ws_echo(conn, reader, head):
    serve_echo(conn, reader, head)


def make_handlers(origin_ref):
    def results():
        return origin_ref[0]

    def h_early(conn, reader, head):
        t = query_tag(head)
        # Nothing of the tunnel may reach the origin before its 101.
        ready, _, _ = select.select([conn], [], [], 0.3)
        seen = bytes(reader.buffer) + (conn.recv(4096, socket.MSG_PEEK) if ready else b"")
        results().set_result(f"{t}:before-101", seen)
        switching(conn, "x-early", b"ORIGIN-FIRST")
        got = reader.recv_exact(len(b"CLIENT-EARLY"))
        conn.sendall(b"echo:" + got)
        reader.read_to_eof(limit=KIB)

    def h_halfclose_client(conn, reader, head):
        switching(conn, "x-half")
        data = reader.read_to_eof(limit=8 * MIB)
        # The client's EOF arrived; this direction still works.
        conn.sendall(f"got {len(data)} {sha(data)}".encode())
        conn.shutdown(socket.SHUT_WR)
        reader.read_to_eof(limit=KIB)

    def h_halfclose_origin(conn, reader, head):
        t = query_tag(head)
        switching(conn, "x-half", b"origin-done")
        conn.shutdown(socket.SHUT_WR)
        results().set_result(t, reader.read_to_eof(limit=8 * MIB))

    def h_sink(conn, reader, head):
        # Reads nothing after its 101 until the test says go, then all to EOF.
        t = query_tag(head)
        switching(conn, "x-sink")
        if not event_for(t).wait(timeout=120):
            raise AssertionError("sink: never released")
        h = hashlib.sha256(reader.buffer)
        n = len(reader.buffer)
        for _ in range(1 << 20):
            data = conn.recv(1 << 16)
            if not data:
                break
            h.update(data)
            n += len(data)
        results().set_result(t, (n, h.hexdigest()))

    def h_source(conn, reader, head):
        # Writes until held back, reports how much, then (on go) the rest.
        t = query_tag(head)
        limit = int(head.header("X-Push-Limit"))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * KIB)
        switching(conn, "x-source")
        chunk = pattern_bytes(64 * KIB, 21)
        h = hashlib.sha256()
        sent, pending, stalled = 0, b"", None
        conn.settimeout(STALL_SECONDS)
        while sent < limit:
            if not pending:
                pending = chunk
                h.update(chunk)
                sent += len(chunk)
            try:
                n = conn.send(pending)
            except TimeoutError:
                stalled = sent
                break
            pending = pending[n:]
        results().set_result(f"{t}:stalled", stalled)
        if not event_for(t).wait(timeout=120):
            raise AssertionError("source: never released")
        conn.settimeout(CLIENT_TIMEOUT)
        conn.sendall(pending)
        conn.shutdown(socket.SHUT_WR)
        results().set_result(f"{t}:total", (sent, h.hexdigest()))
        reader.read_to_eof(limit=KIB)

    def h_reject_expect(conn, reader, head):
        # Answers at once, without 100 and without reading the body.
        t = query_tag(head)
        conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 10\r\n\r\ntoo large\n")
        results().set_result(t, len(reader.read_to_eof(limit=4 * MIB)))

    def h_early_hints(conn, reader, head):
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                     b"Connection: close\r\n\r\nok")

    def h_switch_unasked(conn, reader, head):
        switching(conn, "websocket", b"\x81\x02hi")
        reader.read_to_eof(limit=KIB)

    return {
        "/ws/echo": h_ws_echo,
        "/raw/early": h_early,
        "/raw/halfclose-client": h_halfclose_client,
        "/raw/halfclose-origin": h_halfclose_origin,
        "/raw/sink": h_sink,
        "/raw/source": h_source,
        "/raw/reject-expect": h_reject_expect,
        "/raw/early-hints": h_early_hints,
        "/raw/switch-unasked": h_switch_unasked,
    }


def make_config(tmp, leaf, raw, json_origin, **extra):
    return base_config(
        os.path.join(tmp, "state"), workers=2,
        certificates={"ws": leaf}, default_certificate="ws",
        sites=[site("ws", ["ws.test"], [
            upstream_route("/ws", "raw"),
            upstream_route("/raw", "raw"),
            upstream_route("/json", "json"),
            respond_route("/static", 203, "static body\n", "text/x-static"),
        ], "ws", upgrades=["websocket", "x-early", "x-half", "x-sink", "x-source"])],
        upstreams={"raw": [raw.address], "json": [json_origin.address]}, **extra)


class TunnelTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("ws", ["ws.test"])
        ref = [None]
        cls.raw = start_raw_origin(cls, "raw", make_handlers(ref))
        ref[0] = cls.raw
        cls.json = start_origin(cls, "json")
        cls.daemon = start_daemon(cls, cls.tmp, make_config(cls.tmp, cls.leaf, cls.raw, cls.json))
        cls.port = cls.daemon.https_port
        cls.ca = cls.certs.ca_cert

    def setUp(self):
        self.addCleanup(self.raw.check)

    def connect(self, *, rcvbuf=None, sndbuf=None):
        s = TlsStream(self.port, "ws.test", ca=self.ca)
        self.addCleanup(s.close)
        for opt, size in ((socket.SO_RCVBUF, rcvbuf), (socket.SO_SNDBUF, sndbuf)):
            if size:
                s.sock.setsockopt(socket.SOL_SOCKET, opt, size)
        return s, SockReader(s.recv)

    def head(self, reader):
        return Head(reader.read_until(b"\r\n\r\n"))

    def assert_closed_after(self, reader, what):
        rest = reader.read_to_eof(limit=64 * KIB)
        self.assertEqual(rest, b"", f"bytes after {what}; the connection should have closed")

    def raw_request(self, t):
        for _ in range(50):
            for h in self.raw.requests:
                if query_tag(h) == t:
                    return h
            time.sleep(0.1)
        raise AssertionError(f"origin never got the request tagged {t}")

    def upgrade(self, path, protocol, **kw):
        s, r = self.connect(**kw)
        s.sendall(upgrade_head(path, protocol=protocol))
        head = self.head(r)
        self.assertEqual(head.status, 101, head)
        self.assertEqual(head.header("Upgrade"), protocol, head)
        return s, r, head

    # --- WebSocket through the tunnel ---

    def test_websocket_echo(self):
        s, r = self.connect()
        key = new_key()
        s.sendall(upgrade_head("/ws/echo", key=key))
        head = self.head(r)
        self.assertEqual(head.status, 101, head)
        self.assertEqual(head.header("Sec-WebSocket-Accept"), accept_for(key), head)
        self.assertEqual(head.header("Upgrade").lower(), "websocket", head)
        self.assertIn("upgrade", head.header("Connection").lower(), head)
        self.assertEqual(head.header("X-Origin-Ws"), "echo", head)

        text = "héllo through the tunnel ✓"
        s.sendall(encode_frame(OP_TEXT, text.encode(), mask=True))
        self.assertEqual(read_message(r, expect_masked=False), (OP_TEXT, text.encode()))

        big = pattern_bytes(MIB, 7)
        s.sendall(encode_frame(OP_BINARY, big, mask=True))
        op, payload = read_message(r, expect_masked=False)
        self.assertEqual(op, OP_BINARY)
        self.assertEqual((len(payload), sha(payload)), (MIB, sha(big)))

        s.sendall(encode_frame(OP_TEXT, b"frag-", mask=True, fin=False) +
                  encode_frame(OP_CONT, b"ment", mask=True))
        self.assertEqual(read_message(r, expect_masked=False), (OP_TEXT, b"frag-ment"))

        s.sendall(encode_frame(OP_CLOSE, struct.pack("!H", 1000), mask=True))
        op, payload = read_message(r, expect_masked=False)
        self.assertEqual((op, payload), (OP_CLOSE, struct.pack("!H", 1000)))
        # The origin closed after its close frame: tlsedge ends the client side
        # with close_notify.
        self.assert_closed_after(r, "the close frame")
        self.assertTrue(s.peer_closed, "no close_notify after the origin closed")

        sent = next(h for h in self.raw.requests if h.header("Sec-WebSocket-Key") == key)
        self.assertEqual(sent.header("Upgrade"), "websocket")
        self.assertIn("upgrade", sent.header("Connection").lower())
        self.assertEqual(sent.header("Sec-WebSocket-Version"), "13")
        self.assertEqual(sent.header("X-Forwarded-Proto"), "https")
        self.assertEqual(sent.header("X-Forwarded-For"), "127.0.0.1")

    def test_bytes_right_after_either_head(self):
        t = tag()
        s, r = self.connect()
        # Head and first tunnel bytes in one TLS record, one segment.
        s.sendall(upgrade_head(f"/raw/early?t={t}", protocol="x-early") + b"CLIENT-EARLY")
        head = self.head(r)
        self.assertEqual(head.status, 101, head)
        self.assertEqual(r.recv_exact(len(b"ORIGIN-FIRST")), b"ORIGIN-FIRST")
        self.assertEqual(r.recv_exact(len(b"echo:CLIENT-EARLY")), b"echo:CLIENT-EARLY")
        self.assertEqual(self.raw.wait_result(f"{t}:before-101"), b"",
                         "tunnel bytes reached the origin before its 101")
        s.close_write()
        self.assert_closed_after(r, "the origin's echo")

    # --- half-close ---

    def test_half_close_client_first(self):
        t = tag()
        s, r, _ = self.upgrade(f"/raw/halfclose-client?t={t}", "x-half")
        payload = pattern_bytes(300 * KIB, 3)
        s.sendall(payload)
        s.close_write()  # close_notify + FIN; the origin must see EOF
        reply = r.read_to_eof(limit=KIB)
        self.assertEqual(reply, f"got {len(payload)} {sha(payload)}".encode())
        self.assertTrue(s.peer_closed, "no close_notify after the origin's FIN")

    def test_half_close_origin_first(self):
        t = tag()
        s, r, _ = self.upgrade(f"/raw/halfclose-origin?t={t}", "x-half")
        self.assertEqual(r.read_to_eof(limit=KIB), b"origin-done")
        self.assertTrue(s.peer_closed, "the origin's FIN did not become a close_notify")
        # The client -> origin direction still works after the origin's EOF.
        after = b"client-after-origin-eof\n" * 4000
        s.sendall(after)
        s.close_write()
        self.assertEqual(self.raw.wait_result(t), after)
        s.sock.settimeout(CLIENT_TIMEOUT)
        self.assertEqual(s.sock.recv(100), b"", "tlsedge kept the connection after both EOFs")

    # --- backpressure ---

    def test_backpressure_client_to_origin(self):
        t = tag()
        bound = kernel_buffer_bound()
        s, r, _ = self.upgrade(f"/raw/sink?t={t}", "x-sink", sndbuf=64 * KIB)
        chunk = pattern_bytes(64 * KIB, 11)
        h = hashlib.sha256()
        sent, cipher, stalled = 0, b"", None
        s.sock.settimeout(STALL_SECONDS)
        try:
            while sent < bound + 32 * MIB:
                if not cipher:
                    cipher = s.encrypt(chunk)
                    h.update(chunk)
                    sent += len(chunk)
                try:
                    n = s.sock.send(cipher)
                except TimeoutError:
                    stalled = sent
                    break
                cipher = cipher[n:]
        finally:
            event_for(t).set()
        self.assertIsNotNone(stalled, f"sent {sent} bytes into a tunnel whose origin reads "
                                      "nothing and was never held back")
        self.assertLess(stalled, bound, "held back only after tlsedge buffered a lot")
        s.sock.settimeout(CLIENT_TIMEOUT)
        s.sock.sendall(cipher)
        s.close_write()
        self.assertEqual(self.raw.wait_result(t, timeout=120), (sent, h.hexdigest()),
                         "the origin did not get exactly what was sent")

    def test_backpressure_origin_to_client(self):
        t = tag()
        bound = kernel_buffer_bound()
        s, r = self.connect(rcvbuf=64 * KIB)
        s.sendall(upgrade_head(f"/raw/source?t={t}", protocol="x-source",
                               extra=[f"X-Push-Limit: {bound + 32 * MIB}"]))
        head = self.head(r)
        self.assertEqual(head.status, 101, head)
        try:
            stalled = self.raw.wait_result(f"{t}:stalled", timeout=120)
        finally:
            event_for(t).set()
        self.assertIsNotNone(stalled, "the origin pushed everything into a tunnel whose client "
                                      "reads nothing and was never held back")
        self.assertLess(stalled, bound, "held back only after tlsedge buffered a lot")
        data = r.read_to_eof(limit=bound + 64 * MIB)
        total, digest = self.raw.wait_result(f"{t}:total")
        self.assertEqual((len(data), sha(data)), (total, digest))
        self.assertTrue(s.peer_closed)

    # --- not tunnelled ---

    def test_origin_refusing_upgrade_is_a_normal_response(self):
        s, r = self.connect()
        key = new_key()
        s.sendall(upgrade_head("/json/refused?status=400", key=key) + b"NOT-HTTP-TUNNEL-BYTES")
        head = self.head(r)
        self.assertEqual(head.status, 400, head)
        self.assertIn("close", (head.header("Connection") or "").lower(), head)
        self.assertIsNone(head.header("Upgrade"), head)
        echo = json.loads(r.recv_exact(int(head.header("Content-Length"))))
        self.assertEqual(echo["path"], "/json/refused?status=400")
        self.assertEqual(header_values(echo, "Upgrade"), ["websocket"])
        self.assertEqual([v.lower() for v in header_values(echo, "Connection")], ["upgrade"])
        self.assertEqual(header_values(echo, "Sec-WebSocket-Key"), [key])
        self.assert_closed_after(r, "a refused upgrade")
        time.sleep(0.2)
        paths = [q["path"] for q in self.json.requests]
        self.assertEqual(paths.count("/json/refused?status=400"), 1, paths)
        self.assertFalse(any("NOT-HTTP" in p for p in paths), paths)

    def test_origin_switching_unasked_is_502(self):
        s, r = self.connect()
        s.sendall(b"GET /raw/switch-unasked HTTP/1.1\r\nHost: ws.test\r\n\r\n")
        head = self.head(r)
        self.assertEqual(head.status, 502, head)

    def test_connect_refused(self):
        before = self.json.request_count() + self.raw.request_count()
        s, r = self.connect()
        s.sendall(b"CONNECT ws.test:443 HTTP/1.1\r\nHost: ws.test:443\r\n\r\n\x16\x03\x01")
        head = self.head(r)
        self.assertEqual(head.status, 501, head)
        self.assertIn("close", head.header("Connection").lower(), head)
        body = r.recv_exact(int(head.header("Content-Length")))
        self.assertIn(b"CONNECT", body)
        self.assert_closed_after(r, "the CONNECT answer")
        self.assertEqual(self.json.request_count() + self.raw.request_count(), before)

    def test_upgrade_to_static_route_closes(self):
        s, r = self.connect()
        s.sendall(upgrade_head("/static", key=new_key()))
        head = self.head(r)
        self.assertEqual(head.status, 203, head)
        self.assertIn("close", head.header("Connection").lower(), head)
        self.assertEqual(r.recv_exact(int(head.header("Content-Length"))), b"static body\n")
        self.assert_closed_after(r, "a static answer to an upgrade request")

    def test_upgrade_for_unknown_host_closes(self):
        s, r = self.connect()
        s.sendall(upgrade_head("/ws/echo", host="nosuch.test", key=new_key()))
        head = self.head(r)
        self.assertEqual(head.status, 404, head)
        self.assertIn("close", head.header("Connection").lower(), head)
        r.recv_exact(int(head.header("Content-Length")))
        self.assert_closed_after(r, "a 404 to an upgrade request")

    def test_upgrade_redirected_on_plain_http_closes(self):
        with socket.create_connection(("127.0.0.1", self.daemon.http_port),
                                      timeout=CLIENT_TIMEOUT) as c:
            c.sendall(upgrade_head("/ws/echo?x=1", key=new_key()))
            r = SockReader(c.recv)
            head = self.head(r)
            self.assertEqual(head.status, 308, head)
            self.assertTrue(head.header("Location").startswith("https://ws.test"), head)
            self.assertIn("close", head.header("Connection").lower(), head)
            r.recv_exact(int(head.header("Content-Length")))
            self.assert_closed_after(r, "a redirect of an upgrade request")

    def test_http10_upgrade_is_ignored(self):
        s, r = self.connect()
        s.sendall(upgrade_head("/json/ten", version="HTTP/1.0", key=new_key()))
        head = self.head(r)
        self.assertEqual(head.status, 200, head)
        echo = json.loads(r.recv_exact(int(head.header("Content-Length"))))
        self.assertEqual(echo["path"], "/json/ten")
        self.assertEqual(header_values(echo, "Upgrade"), [])
        self.assertNotIn("upgrade", " ".join(header_values(echo, "Connection")).lower())

    # --- interim responses ---

    def test_expect_100_continue_relayed(self):
        s, r = self.connect()
        body = pattern_bytes(200 * KIB, 5)
        s.sendall(f"POST /json/expect HTTP/1.1\r\nHost: ws.test\r\nContent-Length: {len(body)}\r\n"
                  "Expect: 100-continue\r\n\r\n".encode())
        s.sock.settimeout(10)  # the bounded wait for the 100; no body sent yet
        try:
            first = self.head(r)
        except TimeoutError:
            self.fail("no 100 Continue within 10 s: the client would wait for nothing")
        self.assertEqual(first.status, 100, f"expected the origin's 100 Continue first: {first}")
        s.sock.settimeout(CLIENT_TIMEOUT)
        s.sendall(body)
        final = self.head(r)
        self.assertEqual(final.status, 200, final)
        self.assertNotIn("close", (final.header("Connection") or "").lower(), final)
        echo = json.loads(r.recv_exact(int(final.header("Content-Length"))))
        self.assertEqual((echo["body_len"], echo["body_sha256"]), (len(body), sha(body)))
        self.assertEqual(header_values(echo, "Expect"), ["100-continue"])
        # The body was read whole: the connection carries the next request.
        s.sendall(b"GET /json/after-expect HTTP/1.1\r\nHost: ws.test\r\n\r\n")
        nxt = self.head(r)
        self.assertEqual(nxt.status, 200, nxt)
        self.assertEqual(json.loads(r.recv_exact(int(nxt.header("Content-Length"))))["path"],
                         "/json/after-expect")

    def test_expect_final_answer_without_100_is_relayed_and_closes(self):
        t = tag()
        s, r = self.connect()
        s.sendall(f"PUT /raw/reject-expect?t={t} HTTP/1.1\r\nHost: ws.test\r\n"
                  f"Content-Length: {MIB}\r\nExpect: 100-continue\r\n\r\n".encode())
        head = self.head(r)  # the body is never sent
        self.assertEqual(head.status, 413, head)
        self.assertIn("close", (head.header("Connection") or "").lower(), head)
        self.assertEqual(r.recv_exact(int(head.header("Content-Length"))), b"too large\n")
        self.assert_closed_after(r, "a final answer to an unsent body")
        self.assertEqual(self.raw.wait_result(t), 0, "body bytes reached the origin")

    def test_expect_answered_by_tlsedge_sends_no_100_and_closes(self):
        s, r = self.connect()
        s.sendall(b"POST /static HTTP/1.1\r\nHost: ws.test\r\nContent-Length: 1000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        head = self.head(r)
        self.assertEqual(head.status, 203, head)
        self.assertIn("close", head.header("Connection").lower(), head)
        self.assertEqual(r.recv_exact(int(head.header("Content-Length"))), b"static body\n")
        self.assert_closed_after(r, "a static answer to an unsent body")

    def test_http10_client_gets_no_100(self):
        s, r = self.connect()
        body = b"x" * 5000
        s.sendall(f"POST /json/ten-expect HTTP/1.0\r\nHost: ws.test\r\nContent-Length: {len(body)}\r\n"
                  "Expect: 100-continue\r\n\r\n".encode() + body)
        head = self.head(r)
        self.assertEqual(head.status, 200, head)
        echo = json.loads(r.recv_exact(int(head.header("Content-Length"))))
        self.assertEqual(echo["body_sha256"], sha(body))
        self.assertEqual(header_values(echo, "Expect"), [])  # RFC 9110 10.1.1: ignored

    def test_early_hints_forwarded_to_http11_only(self):
        s, r = self.connect()
        s.sendall(b"GET /raw/early-hints HTTP/1.1\r\nHost: ws.test\r\n\r\n")
        first = self.head(r)
        self.assertEqual(first.status, 103, first)
        self.assertEqual(first.header("Link"), "</style.css>; rel=preload", first)
        final = self.head(r)
        self.assertEqual(final.status, 200, final)
        self.assertEqual(r.recv_exact(int(final.header("Content-Length"))), b"ok")

        s10, r10 = self.connect()
        s10.sendall(b"GET /raw/early-hints HTTP/1.0\r\nHost: ws.test\r\n\r\n")
        only = self.head(r10)
        self.assertEqual(only.status, 200, f"an HTTP/1.0 client got a 1xx: {only}")
        self.assertEqual(r10.recv_exact(int(only.header("Content-Length"))), b"ok")


class TunnelDrainTest(unittest.TestCase):
    """SIGTERM while a tunnel is open: the daemon keeps it until
    shutdown_timeout, then closes it and exits 0."""

    def test_drain_ends_tunnel(self):
        tmp = make_tempdir(self)
        certs = Certs(os.path.join(tmp, "pki"))
        leaf = certs.leaf("ws", ["ws.test"])
        ref = [None]
        raw = start_raw_origin(self, "raw", make_handlers(ref))
        ref[0] = raw
        json_origin = start_origin(self, "json")
        d = start_daemon(self, tmp, make_config(tmp, leaf, raw, json_origin,
                                                shutdown_timeout="2s"))
        s = TlsStream(d.https_port, "ws.test", ca=certs.ca_cert)
        self.addCleanup(s.close)
        r = SockReader(s.recv)
        s.sendall(upgrade_head("/ws/echo", key=new_key()))
        self.assertEqual(Head(r.read_until(b"\r\n\r\n")).status, 101)
        s.sendall(encode_frame(OP_TEXT, b"before", mask=True))
        self.assertEqual(read_message(r, expect_masked=False), (OP_TEXT, b"before"))

        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        s.sendall(encode_frame(OP_TEXT, b"draining", mask=True))
        self.assertEqual(read_message(r, expect_masked=False), (OP_TEXT, b"draining"))
        try:
            rest = r.read_to_eof(limit=KIB)
        except ConnectionResetError:
            rest = b""
        self.assertEqual(rest, b"")
        self.assertEqual(d.wait_exit(timeout=15), 0, d.log())
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 1.5, "the tunnel was cut before shutdown_timeout")
        self.assertIn("shutdown timeout: closing 1 connection(s)", d.log())


class TunnelIdleTest(unittest.TestCase):
    """limits.tunnel_idle_timeout: traffic either way keeps a tunnel open;
    silence in both directions for that long closes it."""

    def test_idle_tunnel_is_closed_active_one_is_not(self):
        tmp = make_tempdir(self)
        certs = Certs(os.path.join(tmp, "pki"))
        leaf = certs.leaf("ws", ["ws.test"])
        ref = [None]
        raw = start_raw_origin(self, "raw", make_handlers(ref))
        ref[0] = raw
        json_origin = start_origin(self, "json")
        cfg = make_config(tmp, leaf, raw, json_origin)
        cfg["limits"] = {"tunnel_idle_timeout": "1s"}
        d = start_daemon(self, tmp, cfg)
        s = TlsStream(d.https_port, "ws.test", ca=certs.ca_cert)
        self.addCleanup(s.close)
        r = SockReader(s.recv)
        s.sendall(upgrade_head("/ws/echo", key=new_key()))
        self.assertEqual(Head(r.read_until(b"\r\n\r\n")).status, 101)

        # 2.5 s of traffic every 0.4 s: longer than the timeout, never idle for it.
        for i in range(6):
            msg = b"tick %d" % i
            s.sendall(encode_frame(OP_TEXT, msg, mask=True))
            self.assertEqual(read_message(r, expect_masked=False), (OP_TEXT, msg))
            time.sleep(0.4)

        t0 = time.monotonic()
        try:
            rest = r.read_to_eof(limit=KIB)
        except ConnectionResetError:
            rest = b""
        waited = time.monotonic() - t0
        self.assertEqual(rest, b"")
        self.assertGreaterEqual(waited, 0.5, "closed before it was idle for the timeout")
        self.assertLess(waited, 5, "an idle tunnel was not closed")


if __name__ == "__main__":
    unittest.main()
