"""A real HTTP/1.1 keep-alive origin (ThreadingHTTPServer on loopback) that
answers with JSON describing what it received."""

import hashlib
import http.server
import json
import random
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
        self.conn_id = self.server.origin._new_connection()
        self.conn_seq = 0

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
                data = self.rfile.read(size)
                if len(data) < size:
                    raise ConnectionError("EOF in a chunk")
                chunks.append(data)
                self.rfile.readline(16)  # CRLF after the chunk
            return b"".join(chunks), "chunked"
        cl = self.headers.get("Content-Length")
        if cl is not None:
            n = int(cl)
            body = self.rfile.read(n) if n else b""
            if len(body) < n:  # a cut request is never recorded
                raise ConnectionError("EOF in the body")
            return body, "length"
        return b"", "none"

    def _handle(self):
        self.conn_seq += 1
        body, framing = self._read_body()
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

    def handle_error(self, request, client_address):
        # A peer closing or resetting a connection is normal (the proxy shut
        # down, a test dropped a client); anything else is printed.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class Origin:
    """A real HTTP/1.1 origin on 127.0.0.1:<port 0>, served from a thread.

    Every request is answered 200 application/json with a body describing
    it (see _OriginHandler._handle): origin name, method, path, headers as a
    list of [name, value], body length / sha256 / text, connection id. Only
    requests received whole are recorded and answered (`requests`,
    `paths()`): one cut short, e.g. a body ending early, never is.
    Query parameters: delay_ms=N (answer after N ms), status=N, resp_hop=1
    (adds hop-by-hop response headers), and path /bytes?n=N&seed=S answers
    pattern_bytes(N, S).
    """

    def __init__(self, name):
        self.name = name
        self._lock = threading.Condition()
        self.requests = []
        self.connections = 0
        self._server = _OriginServer(("127.0.0.1", 0), _OriginHandler)
        self._server.origin = self
        self.port = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"origin-{name}", daemon=True)
        self._thread.start()

    def _new_connection(self):
        with self._lock:
            self.connections += 1
            return self.connections

    def _record(self, record):
        with self._lock:
            self.requests.append(record)
            self._lock.notify_all()

    def reset(self):
        with self._lock:
            self.requests = []
            self.connections = 0

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
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_origin(testcase_or_class, name):
    o = Origin(name)
    add_cleanup(testcase_or_class, o.stop)
    return o


def header_values(record, name):
    """All values of header `name` (case-insensitive) in an origin record."""
    return [v for k, v in record["headers"] if k.lower() == name.lower()]
