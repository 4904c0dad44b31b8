"""How tlsedge writes proxied responses to a TLS client: a small response
whose head and body come from the origin in one read goes out as one TLS
record (one write), also when re-framed as chunked; a head whose body comes
later is not held back waiting for it. And how it ends a connection: a client
that asked to close gets the response and the close_notify and is closed at
once; one that pipelined more is lingered on, reading its EOF."""

import os
import ssl
import socket
import threading
import time
import unittest

from common import CLIENT_TIMEOUT, make_tempdir
from pki import Certs
from config import base_config, site, upstream_route
from clients import client_context
from daemon import start_daemon
from origin import start_raw_origin
from scrape import scrape, value

BODY = b"hello from the origin\n"
LATE = threading.Event()  # lets the /late handler send its body


def one_send(conn, reader, head):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                 + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


def chunked_one_send(conn, reader, head):
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + f"{len(BODY):x}\r\n".encode() + BODY + b"\r\n0\r\n\r\n")


def late_body(conn, reader, head):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
    if LATE.wait(timeout=CLIENT_TIMEOUT):
        conn.sendall(b"late")


class RecordClient:
    """TLS over a plain socket through ssl.MemoryBIO, counting the TLS
    records (5-byte headers) that arrive."""

    def __init__(self, port, ca):
        self.sock = socket.create_connection(("127.0.0.1", port), CLIENT_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = client_context(ca).wrap_bio(self.inc, self.out, server_hostname="w.test")
        self.raw = b""  # received ciphertext not yet cut into records
        self.records = 0
        for _ in range(100):
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.out.read())
                self.fill()
        self.sock.sendall(self.out.read())

    def fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise AssertionError("tlsedge closed the connection")
        self.raw += data
        while len(self.raw) >= 5 and len(self.raw) >= 5 + int.from_bytes(self.raw[3:5], "big"):
            self.records += 1
            self.raw = self.raw[5 + int.from_bytes(self.raw[3:5], "big"):]
        self.inc.write(data)

    def send(self, data):
        self.tls.write(data)
        self.sock.sendall(self.out.read())

    def read_until(self, done):
        """Plaintext until done(plaintext) is true."""
        got = b""
        while not done(got):
            try:
                got += self.tls.read(1 << 16)
            except ssl.SSLWantReadError:
                self.fill()
        return got

    def close(self):
        self.sock.close()


def request(path, close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: w.test\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


class ResponseWritesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(tmp, "pki"))
        leaf = cls.certs.leaf("w", ["w.test"])
        cls.origin = start_raw_origin(cls, "raw", {"/one": one_send, "/chunked": chunked_one_send,
                                                   "/late": late_body})
        cfg = base_config(os.path.join(tmp, "state"), workers=1, certificates={"w": leaf},
                          default_certificate="w",
                          sites=[site("w", ["w.test"], [upstream_route("/", "raw")], "w")],
                          upstreams={"raw": [cls.origin.address]})
        cls.daemon = start_daemon(cls, tmp, cfg)

    def setUp(self):
        self.addCleanup(self.origin.check)
        self.client = RecordClient(self.daemon.https_port, self.certs.ca_cert)
        self.addCleanup(self.client.close)
        # A first exchange: the session tickets sent after the handshake are
        # read (and counted) before the records that matter.
        self.client.send(request("/one"))
        self.client.read_until(lambda got: got.endswith(BODY))

    def records_of(self, path, done):
        before = self.client.records
        self.client.send(request(path))
        got = self.client.read_until(done)
        return got, self.client.records - before

    def test_head_and_body_in_one_record(self):
        got, records = self.records_of("/one", lambda got: got.endswith(BODY))
        self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"), got)
        self.assertEqual(records, 1, got)

    def test_chunked_head_chunk_and_last_chunk_in_one_record(self):
        got, records = self.records_of("/chunked", lambda got: got.endswith(b"0\r\n\r\n"))
        self.assertIn(b"Transfer-Encoding: chunked\r\n", got)
        self.assertIn(BODY, got)
        self.assertEqual(records, 1, got)

    def test_head_is_not_held_for_a_late_body(self):
        LATE.clear()
        self.addCleanup(LATE.set)
        self.client.send(request("/late"))
        # The origin sends the body only once the head reached the client.
        head = self.client.read_until(lambda got: b"\r\n\r\n" in got)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        self.assertNotIn(b"late", head)
        LATE.set()
        rest = self.client.read_until(lambda got: (head + got).endswith(b"late"))
        self.assertEqual((head + rest).split(b"\r\n\r\n", 1)[1], b"late")

    def active(self):
        return value(scrape(self.daemon.metrics_address), "tlsedge_connections_active")

    def wait_active(self, count, within=CLIENT_TIMEOUT):
        deadline = time.monotonic() + within
        while self.active() != count and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.active(), count)

    def read_to_close_notify(self):
        got = b""
        while True:
            try:
                data = self.client.tls.read(1 << 16)
            except ssl.SSLWantReadError:
                self.client.fill()
                continue
            if not data:  # the close_notify
                return got
            got += data

    def test_connection_close_is_closed_at_once(self):
        self.wait_active(1)
        self.client.send(request("/one", close=True))
        got = self.read_to_close_notify()
        self.assertTrue(got.endswith(BODY), got)
        self.assertIn(b"Connection: close\r\n", got)
        # The client has not closed; tlsedge does not wait for it (a linger
        # would hold the connection until the client's EOF, or for 5 s).
        self.wait_active(0, within=2.0)

    def test_pipelined_after_connection_close_lingers_until_eof(self):
        self.wait_active(1)
        # A second request after the one that closes: it is not answered, and
        # tlsedge reads on until the client's EOF so that no reset can destroy
        # the first answer.
        self.client.send(request("/one", close=True) + request("/one"))
        got = self.read_to_close_notify()
        self.assertEqual(got.count(b"HTTP/1.1 200 OK"), 1, got)
        time.sleep(0.5)
        self.assertEqual(self.active(), 1)
        self.client.sock.shutdown(socket.SHUT_WR)
        self.wait_active(0)


if __name__ == "__main__":
    unittest.main()
