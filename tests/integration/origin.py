"""A real HTTP/1.1 keep-alive origin (ThreadingHTTPServer on loopback) that
answers with JSON describing what it received, and RawOrigin, a scripted
raw-socket origin for upgrades, 1xx and half-close. Origin's bodies stream
both ways: a request body is hashed as it arrives (only its first 4 KiB are
kept) and /bytes is generated piece by piece, so 100 MiB cost the test no
memory. Origins may serve TLS."""

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

from common import CLIENT_TIMEOUT, Head, SockReader, add_cleanup


_PIECE = 1 << 16
_KEEP = 4096  # request body bytes kept as text in the record
_SLOW_PIECE = 16 << 10  # ?slow_read_s: 16 KiB every 10 ms
_SLOW_INTERVAL = 0.01


def pattern_pieces(n, seed):
    """Deterministic pseudo-random bytes in 64 KiB pieces: what
    /bytes?n=N&seed=S streams."""
    rng = random.Random(seed)
    left = n
    while left > 0:
        k = min(_PIECE, left)
        yield rng.randbytes(k)
        left -= k


def pattern_bytes(n, seed):
    """All of pattern_pieces(n, seed) at once."""
    return b"".join(pattern_pieces(n, seed))


def pattern_sha256(n, seed):
    """SHA-256 hex digest of pattern_bytes(n, seed), without holding it."""
    h = hashlib.sha256()
    for piece in pattern_pieces(n, seed):
        h.update(piece)
    return h.hexdigest()


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

    def _body_pieces(self):
        """Yields the request body in pieces of at most 64 KiB as it arrives."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            self.body_framing = "chunked"
            for _ in range(1 << 24):
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("EOF in chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    for _ in range(1000):  # trailers
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return
                yield from self._read_exactly(size)
                self.rfile.readline(16)  # CRLF after the chunk
            return
        cl = self.headers.get("Content-Length")
        if cl is not None:
            self.body_framing = "length"
            yield from self._read_exactly(int(cl))
            return
        self.body_framing = "none"

    def _read_exactly(self, n):
        while n > 0:
            if time.monotonic() < self.slow_until:  # ?slow_read_s=N
                piece = self.rfile.read(min(n, _SLOW_PIECE))
                time.sleep(_SLOW_INTERVAL)
            else:
                piece = self.rfile.read(min(n, _PIECE))
            if not piece:
                raise ConnectionError("EOF in body")
            n -= len(piece)
            yield piece

    def _read_body(self):
        """(first 4 KiB + 1 byte kept, total length, sha256 hex, framing)."""
        kept = bytearray()
        total = 0
        h = hashlib.sha256()
        for piece in self._body_pieces():
            total += len(piece)
            h.update(piece)
            if len(kept) <= _KEEP:
                kept += piece[:_KEEP + 1 - len(kept)]
        return bytes(kept), total, h.hexdigest(), self.body_framing

    def _tls_info(self):
        conn = self.connection
        if not isinstance(conn, ssl.SSLSocket):
            return None
        return {"version": conn.version(), "alpn": conn.selected_alpn_protocol(),
                "sni": getattr(conn, "sni_name", None), "resumed": conn.session_reused}

    def _handle(self):
        self.conn_seq += 1
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.slow_until = time.monotonic() + min(float(query.get("slow_read_s", ["0"])[0]), 30)
        body, body_len, body_sha256, framing = self._read_body()
        if self.server.origin.drop_reused and self.conn_seq > 1:
            # Like an origin that timed out a kept-alive connection just as
            # the request arrived: close without answering.
            self.server.origin._count_drop()
            self.close_connection = True
            return
        record = {
            "origin": self.server.origin.name,
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": body_len,
            "body_sha256": body_sha256,
            "body_framing": framing,
            "body": body.decode("utf-8", "replace") if body_len <= _KEEP else None,
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
            length = n
            pieces = pattern_pieces(n, seed)
            ctype = "application/octet-stream"
        else:
            payload = json.dumps(record).encode()
            length = len(payload)
            pieces = (payload[off:off + _PIECE] for off in range(0, length, _PIECE))
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
            self.send_header("Content-Length", str(length))
        self.send_header("X-Origin", self.server.origin.name)
        self.send_header("X-Origin-Port", str(self.server.origin.port))
        if "resp_hop" in query:
            # Hop-by-hop headers in the response: a proxy must drop them.
            self.send_header("Connection", "X-Resp-Hop")
            self.send_header("X-Resp-Hop", "1")
            self.send_header("Keep-Alive", "timeout=99")
        self.end_headers()
        if self.command != "HEAD":
            for piece in pieces:
                if framing == "chunked":
                    self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
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
    list of [name, value], body length / sha256 / text, connection id. Only
    requests received whole are recorded and answered (`requests`,
    `paths()`): one cut short, e.g. a body ending early, never is.
    Query parameters: delay_ms=N (answer after N ms), slow_read_s=N (read
    the request body at 1.6 MB/s for the first N seconds), status=N, resp_hop=1
    (adds hop-by-hop response headers), framing=chunked|close, and path
    /bytes?n=N&seed=S answers pattern_bytes(N, S), streamed. Any request body
    is read as it arrives: body_len and body_sha256 describe all of it. Every
    response carries X-Origin (the name) and X-Origin-Port.

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

    def paths(self):
        """The path of every request received whole, in arrival order."""
        with self._lock:
            return [r["path"] for r in self.requests]

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


class RawOrigin:
    """A scripted origin on 127.0.0.1:<port 0> for what http.server cannot do
    (101 and tunnels, 1xx, answers without reading the body, half-close).

    Each connection's request head is read, recorded (`requests`, `Head`s)
    and handed to `handlers[path]` (path without the query) as
    handler(conn, reader, head), in a thread of its own; `reader` is a
    SockReader holding whatever followed the head. Exceptions in handlers
    are collected and re-raised by check() (registered as a cleanup).
    `results` is a dict handlers may fill for the test to read (use
    wait_result). Stopping closes the listener and every connection.
    """

    def __init__(self, name, handlers):
        self.name = name
        self.handlers = dict(handlers)
        self.requests = []
        self.results = {}
        self.errors = []
        self._cond = threading.Condition()
        self._conns = []
        self._threads = []
        self._stopping = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._accept_thread = threading.Thread(target=self._accept, name=f"raw-{name}",
                                               daemon=True)
        self._accept_thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            with self._cond:
                if self._stopping:
                    conn.close()
                    return
                self._conns.append(conn)
                t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(t)
            t.start()

    def _serve(self, conn):
        try:
            conn.settimeout(CLIENT_TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = SockReader(conn.recv)
            head = Head(reader.read_until(b"\r\n\r\n"))
            with self._cond:
                self.requests.append(head)
                self._cond.notify_all()
            path = head.target.split("?", 1)[0]
            handler = self.handlers.get(path)
            if handler is None:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                handler(conn, reader, head)
        except Exception as e:  # reported by check()
            if not self._stopping:
                with self._cond:
                    self.errors.append(f"{type(e).__name__}: {e}")
                    self._cond.notify_all()
        finally:
            conn.close()

    def record(self, head):
        """Records a later request `head` a handler read on a kept-alive
        connection, as the first one of each connection is."""
        with self._cond:
            self.requests.append(head)
            self._cond.notify_all()

    def set_result(self, key, value):
        with self._cond:
            self.results[key] = value
            self._cond.notify_all()

    def wait_result(self, key, timeout=CLIENT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._cond:
            while key not in self.results:
                if self.errors:
                    raise AssertionError(f"origin {self.name} handler failed: {self.errors}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"origin {self.name}: no result {key!r} after {timeout}s")
                self._cond.wait(timeout=min(left, 0.2))
            return self.results[key]

    def wait_for_requests(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"origin {self.name}: {len(self.requests)} requests "
                                         f"after {timeout}s, expected {n}")
                self._cond.wait(timeout=min(left, 0.2))
            return list(self.requests)

    def request_count(self):
        with self._cond:
            return len(self.requests)

    def check(self):
        with self._cond:
            if self.errors:
                errors, self.errors = self.errors, []
                raise AssertionError(f"origin {self.name} handler failed: {errors}")

    def stop(self):
        with self._cond:
            self._stopping = True
            conns = list(self._conns)
            threads = list(self._threads)
        self._listener.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accept_thread.join(timeout=5)
        for t in threads:
            t.join(timeout=5)


def start_raw_origin(testcase_or_class, name, handlers):
    o = RawOrigin(name, handlers)
    add_cleanup(testcase_or_class, o.stop)
    return o
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

    def __init__(self, backlog=8):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive buffer makes the sender stall sooner.
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(backlog)
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
