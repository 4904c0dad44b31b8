"""A real HTTP/1.1 keep-alive origin (ThreadingHTTPServer on loopback) that
answers with JSON describing what it received, optionally over TLS."""

import hashlib
import http.server
import json
import random
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

from common import add_cleanup


def pattern_bytes(n, seed):
    """Deterministic pseudo-random bytes: what /bytes?n=N&seed=S answers."""
    return random.Random(seed).randbytes(n)


class _OriginHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is dropped after this
    # Headers and body are separate writes: without TCP_NODELAY, Nagle plus
    # the proxy's delayed ACK would add ~40 ms to every response.
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.conn_id = self.server.origin._new_connection(self.connection)
        self.conn_seq = 0

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.origin._connection_closed(self.connection)

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            for _ in range(1 << 20):
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("EOF in chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    for _ in range(1000):  # trailers
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)  # CRLF after the chunk
            return b"".join(chunks), "chunked"
        cl = self.headers.get("Content-Length")
        if cl is not None:
            n = int(cl)
            return (self.rfile.read(n) if n else b""), "length"
        return b"", "none"

    def _tls_info(self):
        conn = self.connection
        if not isinstance(conn, ssl.SSLSocket):
            return None
        return {"version": conn.version(), "alpn": conn.selected_alpn_protocol(),
                "sni": getattr(conn, "sni_name", None), "resumed": conn.session_reused}

    def _handle(self):
        self.conn_seq += 1
        body, framing = self._read_body()
        if self.server.origin.drop_reused and self.conn_seq > 1:
            # Like an origin that timed out a kept-alive connection just as
            # the request arrived: close without answering.
            self.server.origin._count_drop()
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        record = {
            "origin": self.server.origin.name,
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body_framing": framing,
            "body": body.decode("utf-8", "replace") if len(body) <= 4096 else None,
            "client": list(self.client_address[:2]),
            "connection_id": self.conn_id,
            "connection_seq": self.conn_seq,
            "tls": self._tls_info(),
        }
        self.server.origin._record(record)
        delay_ms = int(query.get("delay_ms", ["0"])[0])
        if delay_ms:
            time.sleep(min(delay_ms, 30000) / 1000.0)
        if url.path.startswith("/bytes"):
            n = int(query.get("n", ["0"])[0])
            seed = int(query.get("seed", ["0"])[0])
            payload = pattern_bytes(n, seed)
            ctype = "application/octet-stream"
        else:
            payload = json.dumps(record).encode()
            ctype = "application/json"
        status = int(query.get("status", ["200"])[0])
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        # ?framing=chunked|close: the body is sent chunked, or delimited by the
        # origin closing the connection (no length), instead of Content-Length.
        framing = query.get("framing", ["length"])[0]
        if framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        elif framing == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Origin", self.server.origin.name)
        self.send_header("X-Origin-Port", str(self.server.origin.port))
        if "resp_hop" in query:
            # Hop-by-hop headers in the response: a proxy must drop them.
            self.send_header("Connection", "X-Resp-Hop")
            self.send_header("X-Resp-Hop", "1")
            self.send_header("Keep-Alive", "timeout=99")
        self.end_headers()
        if self.command != "HEAD":
            view = memoryview(payload)
            for off in range(0, len(view), 1 << 16):
                piece = view[off:off + (1 << 16)]
                if framing == "chunked":
                    self.wfile.write(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
                else:
                    self.wfile.write(piece)
            if framing == "chunked":
                self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class _OriginServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    tls_context = None  # ssl.SSLContext: serve HTTPS

    def handle_error(self, request, client_address):
        # A peer closing or resetting a connection is normal (the proxy shut
        # down, a test dropped a client); anything else is printed.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)

    def finish_request(self, request, client_address):
        if self.tls_context is None:
            return super().finish_request(request, client_address)
        # The handshake runs here, on the connection's own thread.
        request.settimeout(10)
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.origin._tls_failed(e)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class Origin:
    """A real HTTP/1.1 origin on 127.0.0.1:<port 0>, served from a thread.

    Every request is answered 200 application/json with a body describing
    it (see _OriginHandler._handle): origin name, method, path, headers as a
    list of [name, value], body length / sha256 / text, connection id.
    Query parameters: delay_ms=N (answer after N ms), status=N, resp_hop=1
    (adds hop-by-hop response headers), and path /bytes?n=N&seed=S answers
    pattern_bytes(N, S). Every response carries X-Origin (the name) and
    X-Origin-Port.

    `port`: listen there instead of a port the kernel picks (to restart an
    origin where a stopped one was). `tls`: a pki.Leaf (or an object with
    .cert and .key): serve HTTPS with it, ALPN http/1.1; records then carry
    "tls": {version, alpn, sni, resumed}. `drop_reused`: a request that is not
    the first on its connection is not answered; the connection is closed.
    Counters: connections (accepted, after the TLS handshake), closed
    (connections that ended), tls_failures (handshakes that failed), drops.
    """

    def __init__(self, name, *, port=0, tls=None, drop_reused=False):
        self.name = name
        self.drop_reused = drop_reused
        self._lock = threading.Condition()
        self.requests = []
        self.connections = 0
        self.closed = 0
        self.drops = 0
        self.tls_failures = []
        self._open = set()  # connections being served
        self._stopped = False
        self._server = _OriginServer(("127.0.0.1", port), _OriginHandler)
        self._server.origin = self
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.cert, tls.key)
            ctx.set_alpn_protocols(["http/1.1"])

            def remember_sni(sock, server_name, _ctx):
                sock.sni_name = server_name
            ctx.sni_callback = remember_sni
            self._server.tls_context = ctx
        self.port = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"origin-{name}", daemon=True)
        self._thread.start()

    def _new_connection(self, sock):
        with self._lock:
            self.connections += 1
            self._open.add(sock)
            return self.connections

    def _connection_closed(self, sock):
        with self._lock:
            self.closed += 1
            self._open.discard(sock)
            self._lock.notify_all()

    def _count_drop(self):
        with self._lock:
            self.drops += 1
            self._lock.notify_all()

    def _tls_failed(self, error):
        with self._lock:
            self.tls_failures.append(str(error))
            self._lock.notify_all()

    def wait_until(self, predicate, what, timeout=10.0):
        """Waits (bounded) until predicate(self) is true, under the lock."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"origin {self.name}: not {what} after {timeout}s "
                                         f"(connections {self.connections}, closed {self.closed}, "
                                         f"requests {len(self.requests)})")
                self._lock.wait(timeout=min(left, 0.1))

    def _record(self, record):
        with self._lock:
            self.requests.append(record)
            self._lock.notify_all()

    def reset(self):
        with self._lock:
            self.requests = []
            self.connections = 0
            self.closed = 0

    def request_count(self):
        with self._lock:
            return len(self.requests)

    def wait_for_requests(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"origin {self.name}: {len(self.requests)} requests "
                                         f"after {timeout}s, expected {n}")
                self._lock.wait(timeout=min(left, 0.2))
            return list(self.requests)

    def stop(self):
        """Stops listening and ends every connection (kept-alive ones too):
        afterwards nothing answers on the port. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            open_now = list(self._open)
        for sock in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)


def start_origin(testcase_or_class, name, **options):
    """Starts an Origin (see its options) stopped by the test's cleanups."""
    o = Origin(name, **options)
    add_cleanup(testcase_or_class, o.stop)
    return o


def header_values(record, name):
    """All values of header `name` (case-insensitive) in an origin record."""
    return [v for k, v in record["headers"] if k.lower() == name.lower()]


# ---------------------------------------------------------------------------
# Origins that misbehave in one precise way, for failure handling tests.


class Blackhole:
    """A loopback address where a TCP connect neither succeeds nor fails: a
    listener with backlog 0 whose accept queue is filled and never drained,
    so the kernel drops further SYNs (the connect hangs until the client's
    own timeout). Raises unittest.SkipTest if this kernel answers anyway."""

    def __init__(self):
        import unittest
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._fillers = []
        for _ in range(2):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(c)
        time.sleep(0.1)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", self.port))
            answered = True
        except (socket.timeout, TimeoutError):
            answered = False
        except OSError:
            answered = True
        finally:
            probe.close()
        if answered:
            self.stop()
            raise unittest.SkipTest("a full backlog-0 listener still completes connects here")

    def stop(self):
        for c in self._fillers:
            c.close()
        self._fillers = []
        self._listener.close()


class Sink:
    """A listener that never accepts: connects complete (the kernel queues
    them), bytes sent are buffered until the receive window is full, and
    nothing is ever read or answered."""

    def __init__(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive buffer makes the sender stall sooner.
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def stop(self):
        self._listener.close()


class ResetAfterRequest:
    """Accepts, reads until it has the request head and at least
    `body_bytes` bytes after it, then resets the connection (RST) without
    answering. Records how many connections came and the bytes each sent."""

    def __init__(self, body_bytes=1):
        self.body_bytes = body_bytes
        self._lock = threading.Lock()
        self.received = []  # bytes received per connection, in order
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="reset-origin", daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            data = b""
            conn.settimeout(5)
            try:
                for _ in range(10000):
                    end = data.find(b"\r\n\r\n")
                    if end >= 0 and len(data) >= end + 4 + self.body_bytes:
                        break
                    piece = conn.recv(65536)
                    if not piece:
                        break
                    data += piece
            except OSError:
                pass
            with self._lock:
                self.received.append(data)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def connections(self):
        with self._lock:
            return list(self.received)

    def stop(self):
        self._stopping = True
        self._thread.join(timeout=5)
        self._listener.close()


def start_helper(testcase_or_class, helper):
    """Registers helper.stop with the test's cleanups; returns the helper."""
    add_cleanup(testcase_or_class, helper.stop)
    return helper
