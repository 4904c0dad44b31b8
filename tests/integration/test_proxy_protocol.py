"""PROXY protocol behind a real L4 balancer and towards origins (issue 19).

Listeners (ProxyProtocolTest): HAProxy in `mode tcp`
in front of tlsedge's listeners with `proxy_protocol: true`, sending v2
(`send-proxy-v2`) to the https one and v1 (`send-proxy`) to the http one;
`proxy_protocol.trusted` is 127.0.0.1/32, HAProxy's source.

Clients connect from other loopback addresses (curl --interface, bound
sockets), so the address a PROXY header carries differs from the socket's:

- through HAProxy, the client's own address is the one the origin gets in
  X-Forwarded-For, the access log's and the metrics' client;
- from the trusted source without a header, and with a malformed one: the
  connection is closed and counted (`malformed`), and others are served;
- from an untrusted source: served as itself without a header; a header
  from it is refused and counted (`untrusted`): no spoofing either way.

Per-client limits (ClientLimitsBehindTheBalancerTest): with
`limits.per_client.max_connections: 1`, a client behind HAProxy holding a
connection is refused a second one, while other clients behind the same
balancer are served: the header's address is the client.

Upstreams (SendProxyProtocolTest), `send_proxy_protocol: true`: HAProxy in
`mode http` with `accept-proxy` in front of the echoing origin puts the
header's source and authority TLV into request fields; a Python origin that
parses the v2 header itself reports the SSL TLVs (HAProxy 2.6 cannot). Each
client connection gets its own origin connections: a second request on it
reuses one, another client never does."""

import json
import os
import socket
import struct
import threading
import time
import unittest

from clients import curl
from common import make_tempdir
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from haproxy import start_haproxy
from origin import header_values, start_origin
from pki import Certs
from scrape import scrape, value
from test_limits import HOST, Conn, get, recv_response

CLIENT = "127.0.0.5"  # a client behind the balancer
STRANGER = "127.0.0.9"  # a client not in proxy_protocol.trusted, reaching tlsedge directly


class ProxyProtocolTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("shop", ["shop.test"])
        cls.origin = start_origin(cls, "pp-origin")
        cfg = base_config(
            os.path.join(cls.tmp, "state"), workers=1, certificates={"shop": cls.leaf},
            https=[{"address": "127.0.0.1:0", "proxy_protocol": True}],
            http=[{"address": "127.0.0.1:0", "proxy_protocol": True}],
            sites=[site("shop", ["shop.test"], [upstream_route("/", "o")], "shop",
                        redirect_https=False)],
            upstreams={"o": [cls.origin.address]})
        cfg["proxy_protocol"] = {"trusted": ["127.0.0.1/32"]}
        cfg["access_log"] = {"path": os.path.join(cls.tmp, "access.log")}
        cls.access_log = cfg["access_log"]["path"]
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.haproxy = start_haproxy(cls, cls.tmp, [
            (f"127.0.0.1:{cls.daemon.https_port}", "send-proxy-v2"),
            (f"127.0.0.1:{cls.daemon.http_port}", "send-proxy"),
        ])

    def proxy_headers(self, result):
        return value(scrape(self.daemon.metrics_address), "tlsedge_proxy_protocol_headers_total",
                     result=result)

    def fetch(self, url_port, path, *, scheme="https", source=CLIENT):
        """curl from `source` to 127.0.0.1:url_port; (exit code, status, echo)."""
        extra = ["--cacert", self.certs.ca_cert] if scheme == "https" else []
        res = curl([*extra, "--interface", source, "--resolve", f"shop.test:{url_port}:127.0.0.1",
                    "-w", "\n%{http_code}", f"{scheme}://shop.test:{url_port}{path}"])
        body, _, code = res.stdout.rpartition("\n")
        echo = json.loads(body) if code == "200" else None
        return res.returncode, code, echo

    def test_v2_over_tls_the_client_is_the_one_behind_the_balancer(self):
        before = self.proxy_headers("accepted")
        rc, code, echo = self.fetch(self.haproxy.ports[0], "/v2")
        self.assertEqual((rc, code), (0, "200"))
        self.assertEqual(header_values(echo, "X-Forwarded-For"), [CLIENT])
        self.assertEqual(self.proxy_headers("accepted"), before + 1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(self.access_log) as f:
                lines = [json.loads(line) for line in f if '"/v2"' in line]
            if lines:
                break
            time.sleep(0.05)
        self.assertEqual(lines[-1]["client"], CLIENT, lines)

    def test_v1_over_plain_http(self):
        rc, code, echo = self.fetch(self.haproxy.ports[1], "/v1", scheme="http")
        self.assertEqual((rc, code), (0, "200"))
        self.assertEqual(header_values(echo, "X-Forwarded-For"), [CLIENT])

    def test_the_trusted_source_without_a_header_is_refused(self):
        before = self.proxy_headers("malformed")
        rc, code, _ = self.fetch(self.daemon.https_port, "/direct", source="127.0.0.1")
        self.assertNotEqual(rc, 0)
        self.assertEqual(self.proxy_headers("malformed"), before + 1)
        rc, code, echo = self.fetch(self.haproxy.ports[0], "/after")  # others are served
        self.assertEqual(code, "200")

    def test_a_malformed_header_closes_the_connection(self):
        before = self.proxy_headers("malformed")
        for header in (b"PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n",
                       b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04abcd",
                       b"PROXY TCP4 " + b"1" * 200):
            with socket.create_connection(("127.0.0.1", self.daemon.http_port), timeout=10) as s:
                s.sendall(header + b"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
                self.assertEqual(s.recv(100), b"", header)  # closed without an answer
        self.assertEqual(self.proxy_headers("malformed"), before + 3)
        rc, code, _ = self.fetch(self.haproxy.ports[1], "/after", scheme="http")
        self.assertEqual(code, "200")

    def test_an_untrusted_source_is_itself_and_may_not_send_a_header(self):
        rc, code, echo = self.fetch(self.daemon.https_port, "/stranger", source=STRANGER)
        self.assertEqual((rc, code), (0, "200"))
        self.assertEqual(header_values(echo, "X-Forwarded-For"), [STRANGER])
        before = self.proxy_headers("untrusted")
        requests = len(self.origin.requests)
        for port in (self.daemon.http_port, self.daemon.https_port):
            with socket.socket() as s:
                s.settimeout(10)
                s.bind((STRANGER, 0))
                s.connect(("127.0.0.1", port))
                s.sendall(b"PROXY TCP4 203.0.113.1 127.0.0.1 1 2\r\n"
                          b"GET /spoofed HTTP/1.1\r\nHost: shop.test\r\n\r\n")
                self.assertEqual(s.recv(100), b"")
        self.assertEqual(self.proxy_headers("untrusted"), before + 2)
        self.assertEqual(len(self.origin.requests), requests)


class ClientLimitsBehindTheBalancerTest(unittest.TestCase):
    """limits.per_client counts the client a PROXY header names, not the
    balancer every connection comes from."""

    def setUp(self):
        self.tmp = make_tempdir(self)
        certs = Certs(os.path.join(self.tmp, "pki"))
        self.ca = certs.ca_cert
        cfg = base_config(
            os.path.join(self.tmp, "state"), workers=1,
            certificates={"l": certs.leaf("l", [HOST])},
            https=[{"address": "127.0.0.1:0", "proxy_protocol": True}],
            sites=[site("l", [HOST], [respond_route("/", 200, "ok\n")], "l",
                        redirect_https=False)])
        cfg["proxy_protocol"] = {"trusted": ["127.0.0.1/32"]}
        cfg["limits"] = {"per_client": {"max_connections": 1}}
        self.daemon = start_daemon(self, self.tmp, cfg)
        self.haproxy = start_haproxy(self, self.tmp, [
            (f"127.0.0.1:{self.daemon.https_port}", "send-proxy-v2")])

    def test_each_client_behind_the_balancer_has_its_own_limit(self):
        port = self.haproxy.ports[0]
        held = Conn(port, tls=True, ca=self.ca, source=CLIENT)
        self.addCleanup(held.close)
        held.send(get("/"))
        self.assertEqual(recv_response(held)[0], 200)
        # The same client again: refused (HAProxy passes the close on).
        again = Conn(port, tls=False, source=CLIENT)
        self.addCleanup(again.close)
        self.assertTrue(again.closed_within(10))
        # Others behind the same balancer are served, one after another.
        for i in range(3):
            other = Conn(port, tls=True, ca=self.ca, source=f"127.0.0.{20 + i}")
            other.send(get("/"))
            self.assertEqual(recv_response(other)[0], 200)
            other.close()
        self.assertEqual(value(scrape(self.daemon.metrics_address),
                               "tlsedge_client_limited_total", limit="connections"), 1)


def outbound_connections(port):
    """Established TCP connections on this machine to 127.0.0.1:`port`
    (their connecting side), from /proc/net/tcp."""
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and remote == f"0100007F:{port:04X}":
                count += 1
    return count


class ProxyV2Origin:
    """An origin on 127.0.0.1:<port 0> that reads a PROXY v2 header, then one
    HTTP/1.1 request head, and answers 200 with what the header said as JSON
    (source, authority, alpn, ssl version and cipher); stopped by the test."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def read(conn, n):
        data = b""
        while len(data) < n:
            piece = conn.recv(n - len(data))
            if not piece:
                raise EOFError
            data += piece
        return data

    @staticmethod
    def tlvs(data, out):
        while data:
            kind, length = data[0], struct.unpack(">H", data[1:3])[0]
            value, data = data[3:3 + length], data[3 + length:]
            names = {0x01: "alpn", 0x02: "authority", 0x21: "ssl_version", 0x23: "ssl_cipher"}
            if kind == 0x20:
                out["ssl_client"] = value[0]
                ProxyV2Origin.tlvs(value[5:], out)
            elif kind in names:
                out[names[kind]] = value.decode()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    head = self.read(conn, 16)
                    body = self.read(conn, struct.unpack(">H", head[14:16])[0])
                    seen = {"signature": head[:12] == b"\r\n\r\n\x00\r\nQUIT\n",
                            "command": head[12], "family": head[13]}
                    if head[13] == 0x11:
                        seen["source"] = socket.inet_ntoa(body[:4])
                        seen["source_port"] = struct.unpack(">H", body[8:10])[0]
                        self.tlvs(body[12:], seen)
                    request = b""
                    while b"\r\n\r\n" not in request:
                        request += self.read(conn, 1)
                    answer = json.dumps(seen).encode()
                    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " +
                                 str(len(answer)).encode() + b"\r\n\r\n" + answer)
                except (EOFError, OSError):
                    pass

    def stop(self):
        self.sock.close()


class SendProxyProtocolTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("shop", ["shop.test"])
        cls.origin = start_origin(cls, "behind-haproxy")
        cls.v2origin = ProxyV2Origin()
        cls.addClassCleanup(cls.v2origin.stop)
        cls.haproxy = start_haproxy(cls, cls.tmp, [
            (cls.origin.address, "", {"mode": "http", "bind": "accept-proxy", "lines": [
                "http-request set-header X-PP-Src %[src]",
                "http-request set-header X-PP-Authority %[fc_pp_authority]"]}),
        ])
        cfg = base_config(
            os.path.join(cls.tmp, "state"), workers=1, certificates={"shop": cls.leaf},
            sites=[site("shop", ["shop.test"], [upstream_route("/tlv", "raw"),
                                                upstream_route("/", "front")], "shop")],
            upstreams={
                "front": {"servers": [f"127.0.0.1:{cls.haproxy.ports[0]}"],
                          "send_proxy_protocol": True},
                "raw": {"servers": [cls.v2origin.address], "send_proxy_protocol": True}})
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        cls.port = cls.daemon.https_port

    def connections(self, how):
        return value(scrape(self.daemon.metrics_address), "tlsedge_upstream_connections_total",
                     how=how)

    def curl(self, source, paths, *extra):
        res = curl(["--cacert", self.certs.ca_cert, "--interface", source, *extra,
                    "--resolve", f"shop.test:{self.port}:127.0.0.1",
                    *(f"https://shop.test:{self.port}{p}" for p in paths)])
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout

    def test_the_origin_learns_each_client_and_connections_stay_theirs(self):
        opened, reused = self.connections("opened"), self.connections("reused")
        # Two requests on one client connection (curl reuses it), then another client.
        self.curl(CLIENT, ["/a1", "/a2"], "--http1.1")
        self.curl("127.0.0.6", ["/b1"], "--http1.1")
        seen = {r["path"]: r for r in self.origin.requests}
        for path, source in (("/a1", CLIENT), ("/a2", CLIENT), ("/b1", "127.0.0.6")):
            self.assertEqual(header_values(seen[path], "X-PP-Src"), [source], path)
            self.assertEqual(header_values(seen[path], "X-PP-Authority"), ["shop.test"], path)
        self.assertEqual(self.connections("opened") - opened, 2)
        self.assertEqual(self.connections("reused") - reused, 1)

    def test_a_clients_origin_connections_close_with_it(self):
        # Private connections serve nobody else: when the client leaves they
        # close at once, not at the upstream's idle_timeout (60 s here).
        self.curl(CLIENT, ["/c1"], "--http1.1")
        self.curl(CLIENT, ["/c2"], "--http2")
        deadline = time.monotonic() + 10
        while outbound_connections(self.haproxy.ports[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(outbound_connections(self.haproxy.ports[0]), 0)

    def test_the_ssl_tlvs_say_how_the_client_connected(self):
        for protocol, alpn in (("--http2", "h2"), ("--http1.1", "http/1.1")):
            seen = json.loads(self.curl(CLIENT, ["/tlv"], protocol, "--tlsv1.3"))
            self.assertTrue(seen["signature"], seen)
            self.assertEqual((seen["command"], seen["family"]), (0x21, 0x11))
            self.assertEqual(seen["source"], CLIENT)
            self.assertEqual(seen["authority"], "shop.test")
            self.assertEqual(seen["alpn"], alpn)
            self.assertEqual(seen["ssl_client"], 1)
            self.assertEqual(seen["ssl_version"], "TLSv1.3")
            self.assertTrue(seen["ssl_cipher"].startswith("TLS_"), seen)


if __name__ == "__main__":
    unittest.main()
