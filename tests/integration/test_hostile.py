"""Hostile input through the real daemon: raw request bytes over TLS to an
origin that records every request it reads, and origins that answer with
broken responses. Each test asserts what the origin got and what the client
got (issue 15, and the siblings of each class):

- a Connection option never drops a field that frames or routes a message
  (Content-Length, Transfer-Encoding, Host, X-Forwarded-*), on requests and
  on responses;
- one Host field; an absolute-form target's authority routes and becomes
  Host, in origin-form; userinfo, other schemes, "*" outside OPTIONS and
  bad authorities are refused with 400;
- only the protocols a site lists are offered upstream, never h2c, and a
  101 to anything not offered is a 502, never a tunnel;
- a 1xx, 204, 304 or an answer to HEAD has no body whatever its head says:
  bytes after it are never relayed, the origin connection is closed;
- an origin's response head over the upstream's limits is a 502, counted.
"""

import os
import unittest
import uuid

from common import Head, SockReader, make_tempdir, read_body
from config import base_config, site, upstream, upstream_route
from daemon import start_daemon
from origin import start_raw_origin
from pki import Certs
from clients import TlsStream
from scrape import scrape, value

INVALID = "tlsedge_upstream_invalid_responses_total"


def tag():
    return uuid.uuid4().hex[:12]


def query_tag(head):
    return head.target.partition("?t=")[2]


def request(start, *fields, body=b""):
    """A raw request: start line, fields, blank line, body."""
    return ("\r\n".join([start, *fields]) + "\r\n\r\n").encode() + body


# --------------------------------------------------------------------------
# Origins. Every connection is served in a keep-alive loop: each request's
# head and body are recorded under its tag (?t=TAG) and answered by the
# responder for its path; after the last answer the origin records whether
# tlsedge sent another request on that connection or closed it ("TAG:after").


def answer(status, body=b"", *fields):
    return (f"HTTP/1.1 {status}\r\n" + "".join(f + "\r\n" for f in fields) +
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def raw(data):
    """A responder that sends `data` as it is, in one send."""
    return lambda origin, conn, head, body: conn.sendall(data)


def ok(origin, conn, head, body):
    conn.sendall(answer("200 OK", f"ok {origin.name}".encode()))


def big_head(n_fields, field_size):
    fields = "".join(f"X-Pad-{i}: {'p' * field_size}\r\n" for i in range(n_fields))
    return f"HTTP/1.1 200 OK\r\n{fields}Content-Length: 2\r\n\r\nok".encode()


RESPONDERS = {
    "/rec": ok,
    # 3 and its sibling: Connection names the response's own framing.
    "/conn-cl": raw(b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\n"
                    b"Content-Length: 5\r\n\r\nhello"),
    "/conn-te": raw(b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    # 8, 9, 10 and siblings: bytes after a head that has no body.
    "/204-cl": raw(b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\nGLUED!!"),
    "/204-chunked": raw(b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"7\r\nGLUED!!\r\n0\r\n\r\n"),
    "/304-cl": raw(b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 7\r\n\r\n"
                   b"GLUED!!"),
    "/304-bare": raw(b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\nGLUED!!"),
    "/head-body": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nGLUED!!"),
    "/1xx-cl": raw(b"HTTP/1.1 150 Unknown Interim\r\nContent-Length: 5\r\n\r\n" +
                   answer("200 OK", b"final")),
    # 7 and siblings: switching to what nobody offered.
    "/switch-h2c": raw(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                       b"Upgrade: h2c\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    "/switch-other": raw(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                         b"Upgrade: x-other\r\n\r\nTUNNELLED"),
    # 11 and its sibling: heads over the upstream's limits (64 KiB, 200 fields).
    "/big-head": raw(big_head(80, 1024)),
    "/many-fields": raw(big_head(240, 4)),
    "/limited": raw(big_head(30, 4)),  # over the "limited" upstream's 20 fields
}


def serve_recording(origin):
    def serve(conn, reader, head):
        for _ in range(1000):
            t = query_tag(head) or head.target
            body = read_body(reader, head)
            origin.set_result(t, (head, body))
            responder = RESPONDERS.get(head.target.split("?", 1)[0])
            if responder is None:
                conn.sendall(answer("404 Not Found"))
            else:
                responder(origin, conn, head, body)
            try:
                head = Head(reader.read_until(b"\r\n\r\n"))
            except (AssertionError, OSError):
                origin.set_result(f"{t}:after", "closed")
                return
            origin.set_result(f"{t}:after", "reused")
            origin.record(head)
    return serve


def start_recording_origin(cls, name):
    handlers = {}
    origin = start_raw_origin(cls, name, handlers)
    serve = serve_recording(origin)
    origin.handlers.update({path: serve for path in [*RESPONDERS, "/SMUGGLED"]})
    return origin


class HostileInputTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        leaf = cls.certs.leaf("ab", ["a.test", "b.test"])
        cls.a = start_recording_origin(cls, "a")
        cls.b = start_recording_origin(cls, "b")
        cfg = base_config(
            os.path.join(cls.tmp, "state"), workers=1,
            certificates={"ab": leaf}, default_certificate="ab",
            sites=[site("a", ["a.test"], [upstream_route("/limited", "limited"),
                                          upstream_route("/", "a")], "ab"),
                   site("b", ["b.test"], [upstream_route("/", "b")], "ab", upgrades=[])],
            upstreams={"a": [cls.a.address], "b": [cls.b.address],
                       "limited": upstream([cls.a.address], max_response_headers=20,
                                           max_response_header_size="2k")})
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.port = cls.daemon.https_port
        cls.ca = cls.certs.ca_cert

    def setUp(self):
        self.addCleanup(self.a.check)
        self.addCleanup(self.b.check)

    def connect(self, sni="a.test"):
        s = TlsStream(self.port, sni, ca=self.ca)
        self.addCleanup(s.close)
        return s, SockReader(s.recv)

    def response(self, reader, method="GET"):
        """The next final response on a client connection: (Head, body),
        interim responses skipped."""
        for _ in range(10):
            head = Head(reader.read_until(b"\r\n\r\n"))
            if head.status >= 200 or head.status == 101:
                break
        bodyless = method == "HEAD" or head.status in (101, 204, 304)
        if not bodyless and not head.header("Content-Length") and not head.all(
                "Transfer-Encoding"):
            self.fail(f"a kept-alive response without framing: {head.raw!r}")
        return head, read_body(reader, head, bodyless=bodyless)

    def send(self, data, sni="a.test", method="GET"):
        """`data` on a new connection; the first response and the reader."""
        s, r = self.connect(sni)
        s.sendall(data)
        head, body = self.response(r, method)
        return head, body, s, r

    def assert_refused(self, data, reason):
        """A 400 naming `reason`, then the connection is closed; the origins
        saw nothing of it."""
        before = self.a.request_count() + self.b.request_count()
        head, body, _, r = self.send(data)
        self.assertEqual(head.status, 400, (head, body))
        self.assertIn(reason, body.decode())
        self.assertEqual(r.read_to_eof(), b"", "the connection should close after a 400")
        self.assertEqual(self.a.request_count() + self.b.request_count(), before)

    def assert_next_request_clean(self, s, r):
        """A second request on the same client connection gets its own
        answer: nothing of the previous response was left over."""
        t = tag()
        s.sendall(request(f"GET /rec?t={t} HTTP/1.1", "Host: a.test"))
        head, body = self.response(r)
        self.assertEqual((head.start, body), ("HTTP/1.1 200 OK", b"ok a"))
        self.a.wait_result(t)

    def invalid_count(self, reason):
        return value(scrape(self.daemon.metrics_address), INVALID, reason=reason)

    # -- Connection options naming fields that frame or route (1, 2, 3) ----

    def test_connection_content_length_does_not_smuggle_a_request(self):
        t = tag()
        smuggled = request(f"GET /SMUGGLED?t={t}-smuggled HTTP/1.1", "Host: a.test")
        head, _, s, r = self.send(request(
            f"POST /rec?t={t} HTTP/1.1", "Host: a.test", "Connection: Content-Length",
            f"Content-Length: {len(smuggled)}", body=smuggled))
        self.assertEqual(head.status, 200)
        got, body = self.a.wait_result(t)
        self.assertEqual(got.all("Content-Length"), [str(len(smuggled))], got)
        self.assertEqual(body, smuggled)
        self.assertEqual(got.all("Connection"), [])
        self.assert_next_request_clean(s, r)
        self.assertNotIn(f"{t}-smuggled", self.a.results)

    def test_connection_transfer_encoding_keeps_the_chunked_framing(self):
        t = tag()
        head, _, s, r = self.send(request(
            f"POST /rec?t={t} HTTP/1.1", "Host: a.test", "Connection: Transfer-Encoding",
            "Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"))
        self.assertEqual(head.status, 200)
        got, body = self.a.wait_result(t)
        self.assertEqual(got.all("Transfer-Encoding"), ["chunked"], got)
        self.assertEqual(body, b"hello")
        self.assert_next_request_clean(s, r)

    def test_connection_host_keeps_host(self):
        t = tag()
        head, _, _, _ = self.send(request(f"GET /rec?t={t} HTTP/1.1", "Host: a.test",
                                          "Connection: Host"))
        self.assertEqual(head.status, 200)
        got, _ = self.a.wait_result(t)
        self.assertEqual(got.all("Host"), ["a.test"], got)

    def test_connection_cannot_drop_or_spoof_forwarded_fields(self):
        t = tag()
        self.send(request(f"GET /rec?t={t} HTTP/1.1", "Host: a.test",
                          "Connection: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host",
                          "X-Forwarded-For: 192.0.2.66", "X-Forwarded-Host: evil.test"))
        got, _ = self.a.wait_result(t)
        self.assertEqual(got.all("X-Forwarded-For"), ["127.0.0.1"], got)
        self.assertEqual(got.all("X-Forwarded-Proto"), ["https"], got)
        self.assertEqual(got.all("X-Forwarded-Host"), ["a.test"], got)

    def test_response_connection_content_length_keeps_the_framing(self):
        head, body, s, r = self.send(request("GET /conn-cl HTTP/1.1", "Host: a.test"))
        self.assertEqual(head.all("Content-Length"), ["5"], head)
        self.assertEqual(head.all("Connection"), [])
        self.assertEqual(body, b"hello")
        self.assert_next_request_clean(s, r)

    def test_response_connection_transfer_encoding_keeps_the_framing(self):
        head, body, s, r = self.send(request("GET /conn-te HTTP/1.1", "Host: a.test"))
        self.assertEqual(head.all("Transfer-Encoding"), ["chunked"], head)
        self.assertEqual(body, b"hello")
        self.assert_next_request_clean(s, r)

    # -- Host and the request target (4, 5, 6) -----------------------------

    def test_two_host_fields_are_refused(self):
        self.assert_refused(request(f"GET /rec?t={tag()} HTTP/1.1", "Host: a.test",
                                    "Host: b.test"), "more than one Host field")

    def test_invalid_host_is_refused(self):
        for host in ("a.test@b.test", "a.test/x", "a.test:80x", "a.test\tb"):
            with self.subTest(host=host):
                self.assert_refused(request(f"GET /rec?t={tag()} HTTP/1.1", f"Host: {host}"),
                                    "invalid Host header")

    def test_absolute_form_authority_routes_and_becomes_host(self):
        t = tag()
        head, body, _, _ = self.send(request(f"GET http://b.test/rec?t={t} HTTP/1.1",
                                             "Host: a.test"))
        self.assertEqual((head.status, body), (200, b"ok b"))
        got, _ = self.b.wait_result(t)
        self.assertEqual(got.start, f"GET /rec?t={t} HTTP/1.1")
        self.assertEqual(got.all("Host"), ["b.test"], got)
        self.assertEqual(got.all("X-Forwarded-Host"), ["b.test"], got)

    def test_absolute_form_is_forwarded_in_origin_form(self):
        t = tag()
        self.send(request(f"GET https://a.test:443/rec?t={t}#frag HTTP/1.1", "Host: a.test"))
        got, _ = self.a.wait_result(t)
        self.assertEqual(got.start, f"GET /rec?t={t} HTTP/1.1")
        self.assertEqual(got.all("Host"), ["a.test:443"], got)

    def test_absolute_form_with_userinfo_is_refused(self):
        self.assert_refused(request(f"GET http://evil@a.test/rec?t={tag()} HTTP/1.1",
                                    "Host: a.test"), "userinfo")

    def test_other_targets_are_refused(self):
        cases = [
            (f"GET ftp://a.test/rec?t={tag()} HTTP/1.1", "scheme is not http"),
            (f"GET http:///rec?t={tag()} HTTP/1.1", "no host"),
            (f"GET http://a.test%2f@b/rec?t={tag()} HTTP/1.1", "userinfo"),
            (f"GET http://a.te%73t/rec?t={tag()} HTTP/1.1", "invalid host"),
            ("GET * HTTP/1.1", "for OPTIONS only"),
        ]
        for start, reason in cases:
            with self.subTest(start=start):
                self.assert_refused(request(start, "Host: a.test"), reason)

    def test_conflicting_framing_is_refused(self):
        # llhttp's own checks (RFC 9112 6.3): kept, asserted here.
        for fields in (("Content-Length: 3", "Content-Length: 4"),
                       ("Content-Length: 3", "Transfer-Encoding: chunked")):
            with self.subTest(fields=fields):
                before = self.a.request_count()
                head, _, _, r = self.send(request(f"POST /rec?t={tag()} HTTP/1.1",
                                                  "Host: a.test", *fields, body=b"abcd"))
                self.assertEqual(head.status, 400)
                self.assertEqual(r.read_to_eof(), b"")
                self.assertEqual(self.a.request_count(), before)

    # -- Upgrades (7) -------------------------------------------------------

    def test_h2c_is_never_offered_to_the_origin(self):
        t = tag()
        head, body, s, r = self.send(request(
            f"GET /rec?t={t} HTTP/1.1", "Host: a.test", "Connection: Upgrade, HTTP2-Settings",
            "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"))
        self.assertEqual((head.status, body), (200, b"ok a"))
        got, _ = self.a.wait_result(t)
        for name in ("Upgrade", "HTTP2-Settings", "Connection"):
            self.assertEqual(got.all(name), [], got)
        # Nothing after a request that asked to upgrade is read as HTTP.
        self.assertEqual(r.read_to_eof(), b"")

    def test_a_protocol_the_site_does_not_list_is_not_offered(self):
        for sni, protocol in (("a.test", "x-custom"), ("b.test", "websocket")):
            with self.subTest(protocol=protocol, site=sni):
                t = tag()
                origin = self.a if sni == "a.test" else self.b
                head, _, _, _ = self.send(request(
                    f"GET /rec?t={t} HTTP/1.1", f"Host: {sni}", "Connection: Upgrade",
                    f"Upgrade: {protocol}", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Version: 13"), sni=sni)
                self.assertEqual(head.status, 200)
                got, _ = origin.wait_result(t)
                self.assertEqual(got.all("Upgrade"), [], got)

    def test_a_101_to_h2c_is_a_502_not_a_tunnel(self):
        head, body, _, r = self.send(request(
            "GET /switch-h2c HTTP/1.1", "Host: a.test", "Connection: Upgrade, HTTP2-Settings",
            "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"))
        self.assertEqual(head.status, 502, (head, body))
        self.assertEqual(r.read_to_eof(), b"")

    def test_a_101_to_a_protocol_not_offered_is_a_502(self):
        head, body, _, r = self.send(request(
            "GET /switch-other HTTP/1.1", "Host: a.test", "Connection: Upgrade",
            "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13"))
        self.assertEqual(head.status, 502, (head, body))
        self.assertEqual(r.read_to_eof(), b"")

    # -- Responses without a body (8, 9, 10) -------------------------------

    def assert_bodyless(self, path, status, method="GET"):
        """The response to `path` has no body on the client's side, the
        bytes the origin sent after it are never relayed (the next request
        on the connection gets its own answer), and the origin connection
        is closed, never reused."""
        t = tag()
        head, _, s, r = self.send(request(f"{method} {path}?t={t} HTTP/1.1", "Host: a.test"),
                                  method=method)
        self.assertEqual(head.status, status, head)
        if status == 204:
            self.assertEqual(head.all("Content-Length") + head.all("Transfer-Encoding"), [],
                             head)
        self.assert_next_request_clean(s, r)
        self.assertEqual(self.a.wait_result(f"{t}:after"), "closed")

    def test_204_with_content_length_and_bytes(self):
        before = self.invalid_count("bytes_after_response")
        self.assert_bodyless("/204-cl", 204)
        self.assertEqual(self.invalid_count("bytes_after_response"), before + 1)

    def test_204_with_chunked_framing(self):
        self.assert_bodyless("/204-chunked", 204)

    def test_304_with_a_body(self):
        self.assert_bodyless("/304-cl", 304)
        self.assert_bodyless("/304-bare", 304)

    def test_answer_to_head_with_a_body(self):
        self.assert_bodyless("/head-body", 200, method="HEAD")

    def test_interim_response_with_content_length(self):
        t = tag()
        head, body, s, r = self.send(request(f"GET /1xx-cl?t={t} HTTP/1.1", "Host: a.test"))
        self.assertEqual((head.status, body), (200, b"final"))
        self.assert_next_request_clean(s, r)

    # -- Response head limits (11) ----------------------------------------

    def assert_head_refused(self, path):
        before = self.invalid_count("head_too_large")
        head, body, s, r = self.send(request(f"GET {path}?t={tag()} HTTP/1.1", "Host: a.test"))
        self.assertEqual(head.status, 502, (head, body))
        self.assertEqual(self.invalid_count("head_too_large"), before + 1)
        self.assert_next_request_clean(s, r)

    def test_response_head_over_64k_is_a_502(self):
        self.assert_head_refused("/big-head")

    def test_response_with_too_many_fields_is_a_502(self):
        self.assert_head_refused("/many-fields")

    def test_upstream_head_limits_are_configurable(self):
        self.assert_head_refused("/limited")


if __name__ == "__main__":
    unittest.main()
