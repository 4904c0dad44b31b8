"""A small HTTP/2 client on Python's `h2` (Debian python3-h2) and `ssl`, for
tests that need more than curl gives: exact frames, resets, windows, many
streams, hostile sequences. Every socket operation has a timeout."""

import hashlib
import socket
import ssl
import sys
import time

try:
    import h2  # noqa: F401
except ImportError:
    # Debian's python3-h2 (pure Python) under another interpreter found first
    # in PATH (a pyenv one, say): its modules are where Debian put them.
    sys.path.append("/usr/lib/python3/dist-packages")

import h2.config
import h2.connection
import h2.events
import h2.settings

from common import CLIENT_TIMEOUT


class H2Response:
    def __init__(self, keep_body=True):
        self.headers = []  # [(name, value)] as str, the final response's
        self.interim = []  # [[(name, value)]] of each 1xx
        self.body = b""  # unless keep_body is off: then only its length and sha256
        self.keep_body = keep_body
        self.length = 0
        self.sha256 = hashlib.sha256()
        self.ended = False
        self.reset = None  # the error code of a RST_STREAM, if any
        self.trailers = []  # [(name, value)] of a trailing HEADERS frame

    @property
    def status(self):
        for n, v in self.headers:
            if n == ":status":
                return int(v)
        return None

    def header(self, name):
        return [v for n, v in self.headers if n == name]


class H2Client:
    """One TLS connection with ALPN h2. `settings` go in the client's first
    SETTINGS frame; `validate` off lets a test send what h2 would refuse."""

    def __init__(self, port, sni, *, ca, host="127.0.0.1", settings=None, validate=True,
                 auto_window=True, timeout=CLIENT_TIMEOUT):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=sni)
        self.alpn = self.sock.selected_alpn_protocol()
        config = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8",
            validate_outbound_headers=validate, normalize_outbound_headers=validate,
            validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()
        self.auto_window = auto_window
        self.responses = {}
        self.goaway = None  # (error_code, last_stream_id) once received
        self.closed = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:  # the server closed (a test of hostile clients)
                self.closed = True

    def request(self, path="/", *, authority, method="GET", headers=(), body=None,
                end_stream=True, keep_body=True):
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "https"), (":authority", authority),
                  (":path", path), *headers]
        self.conn.send_headers(sid, fields, end_stream=end_stream and body is None)
        self.responses[sid] = H2Response(keep_body)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end_stream=end_stream)
        return sid

    def send_body(self, sid, body, *, end_stream=True, timeout=CLIENT_TIMEOUT):
        """Sends `body` (bytes, or an iterable of bytes pieces) as the windows
        allow, reading WINDOW_UPDATEs meanwhile; each wait for a window is
        bounded by `timeout`."""
        pieces = [body] if isinstance(body, (bytes, bytearray)) else body
        for piece in pieces:
            view = memoryview(piece)
            deadline = time.monotonic() + timeout
            while view:
                n = min(len(view), self.conn.local_flow_control_window(sid),
                        self.conn.max_outbound_frame_size)
                if n == 0:
                    if time.monotonic() > deadline or not self.receive_once(1.0):
                        raise TimeoutError(f"stream {sid}: no window to send the body")
                    continue
                deadline = time.monotonic() + timeout
                self.conn.send_data(sid, view[:n].tobytes())
                view = view[n:]
                self.flush()
        if end_stream:
            self.conn.end_stream(sid)
            self.flush()

    def receive_once(self, timeout):
        """Reads once (up to `timeout` s) and handles the events; False at EOF."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            self.handle(event)
        self.flush()
        return True

    def handle(self, event):
        r = self.responses.get(getattr(event, "stream_id", None))
        if isinstance(event, h2.events.ResponseReceived):
            r.headers = list(event.headers)
        elif isinstance(event, h2.events.InformationalResponseReceived):
            r.interim.append(list(event.headers))
        elif isinstance(event, h2.events.TrailersReceived):
            r.trailers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            r.length += len(event.data)
            if r.keep_body:
                r.body += event.data
            else:
                r.sha256.update(event.data)
            if self.auto_window and event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            r.ended = True
        elif isinstance(event, h2.events.StreamReset):
            if r is not None:
                r.reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = (event.error_code, event.last_stream_id)

    def wait(self, done, timeout=CLIENT_TIMEOUT):
        """Reads until done() is true, the connection ends or `timeout` s pass."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0 or not self.receive_once(min(left, 1.0)):
                break
        return done()

    def wait_stream(self, sid, timeout=CLIENT_TIMEOUT):
        r = self.responses[sid]
        self.wait(lambda: r.ended or r.reset is not None or self.goaway is not None, timeout)
        return r

    def get(self, path="/", *, authority, **kw):
        return self.wait_stream(self.request(path, authority=authority, **kw))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
