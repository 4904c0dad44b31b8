"""Clients: Python ssl / http.client (with a chosen SNI, like curl --resolve),
and the external tools curl and openssl s_client."""

import http.client
import json
import re
import socket
import ssl

from common import CLIENT_TIMEOUT, TOOL_TIMEOUT, require_tool, run
from pki import cert_info


# ---------------------------------------------------------------------------
# Python clients


def client_context(ca_file, *, check_hostname=True, tls_version=None, alpn=("http/1.1",)):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = check_hostname
    if tls_version is not None:
        ctx.minimum_version = tls_version
        ctx.maximum_version = tls_version
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class SniHTTPSConnection(http.client.HTTPConnection):
    """HTTPS to a fixed loopback address with a chosen SNI name.

    http.client.HTTPSConnection takes the SNI name from the host it connects
    to; here the TCP address (`connect_host`) and the TLS name (`sni`) are
    separate, like curl --resolve.
    """

    default_port = 443

    def __init__(self, sni, port, context, connect_host="127.0.0.1", timeout=CLIENT_TIMEOUT):
        super().__init__(sni if sni else connect_host, port, timeout=timeout)
        self._sni = sni
        self._ctx = context
        self._connect_host = connect_host

    def connect(self):
        sock = socket.create_connection((self._connect_host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._sni)


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage (case-insensitive get / get_all)
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"not JSON (status {self.status}): {self.body[:300]!r}")

    def __repr__(self):
        return f"Response({self.status}, {dict(self.headers)!r}, {self.body[:200]!r})"


def _do(conn, method, path, headers, body, encode_chunked=False):
    conn.request(method, path, body=body, headers=headers or {}, encode_chunked=encode_chunked)
    r = conn.getresponse()
    data = r.read()
    return Response(r.status, r.reason, r.headers, data)


def https_request(port, sni, path="/", *, ca, method="GET", headers=None, body=None,
                  connect_host="127.0.0.1", check_hostname=True, encode_chunked=False):
    """One request on a fresh TLS connection; Host defaults to sni:port."""
    conn = SniHTTPSConnection(sni, port, client_context(ca, check_hostname=check_hostname),
                              connect_host=connect_host)
    try:
        return _do(conn, method, path, headers, body, encode_chunked)
    finally:
        conn.close()


def http_request(port, path="/", *, method="GET", headers=None, body=None, host="127.0.0.1"):
    """One request over plain HTTP to host:port (set Host with `headers`)."""
    conn = http.client.HTTPConnection(host, port, timeout=CLIENT_TIMEOUT)
    try:
        return _do(conn, method, path, headers, body)
    finally:
        conn.close()


def tls_handshake(port, sni, *, ca, connect_host="127.0.0.1", tls_version=None,
                  alpn=("http/1.1",), check_hostname=False):
    """Handshakes and returns (version, alpn, cipher, peer cert dict); raises
    ssl.SSLError when the handshake is refused."""
    ctx = client_context(ca, check_hostname=check_hostname, tls_version=tls_version, alpn=alpn)
    with socket.create_connection((connect_host, port), timeout=CLIENT_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            return s.version(), s.selected_alpn_protocol(), s.cipher(), s.getpeercert()


def peer_serial(cert_dict):
    return int(cert_dict["serialNumber"], 16)


def peer_cn(cert_dict):
    for rdn in cert_dict.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


# ---------------------------------------------------------------------------
# External clients


def _bracketed(host):
    """An address as it goes before :port or into --resolve ([::1] for IPv6)."""
    return f"[{host}]" if ":" in host else host


def curl(args, timeout=TOOL_TIMEOUT):
    """curl -sS with a bounded max time. Returns CompletedProcess (text)."""
    exe = require_tool("curl")
    return run([exe, "-sS", "--max-time", str(int(CLIENT_TIMEOUT)), *args], timeout=timeout)


def curl_https(port, host, path="/", *, ca, extra=(), connect_host="127.0.0.1", verbose=True):
    """curl https://host:port/path with --resolve to the loopback address and
    --cacert the test CA. Returns (CompletedProcess, status, body)."""
    addr = _bracketed(connect_host)
    res = curl([*(["-v"] if verbose else []), "--cacert", ca, "--http1.1",
                "--resolve", f"{host}:{port}:{addr}",
                "-w", "\n%{http_code}", *extra, f"https://{host}:{port}{path}"])
    body, _, code = res.stdout.rpartition("\n")
    return res, int(code) if code.isdigit() else 0, body


def s_client(port, servername=None, *, ca=None, extra=(), connect_host="127.0.0.1"):
    """openssl s_client: handshake, then EOF on stdin. Returns CompletedProcess;
    stdout+stderr are in .stdout/.stderr."""
    exe = require_tool("openssl")
    addr = _bracketed(connect_host)
    cmd = [exe, "s_client", "-connect", f"{addr}:{port}", "-showcerts"]
    if servername is None:
        cmd.append("-noservername")
    else:
        cmd += ["-servername", servername]
    if ca:
        cmd += ["-CAfile", ca, "-verify_return_error"]
    cmd += list(extra)
    return run(cmd, input=b"", timeout=30)


_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def s_client_leaf(res):
    """(serial, CN) of the first certificate s_client printed."""
    m = _PEM.search(res.stdout)
    if not m:
        raise AssertionError(f"s_client printed no certificate (rc {res.returncode})\n"
                             f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}")
    return cert_info(m.group(0))


class TlsStream:
    """A TLS client connection driven through ssl.MemoryBIO over a plain
    socket: like SSLSocket, but it can half-close (close_notify + TCP FIN,
    then keep reading), it tells the peer's close_notify (peer_closed) from a
    bare TCP EOF, and `sock` / encrypt() allow raw, partial sends."""

    def __init__(self, port, sni, *, ca, connect_host="127.0.0.1", timeout=CLIENT_TIMEOUT):
        self.sock = socket.create_connection((connect_host, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.tls = client_context(ca).wrap_bio(self._in, self._out, server_hostname=sni)
        self.peer_closed = False  # got the peer's close_notify
        self.tcp_eof = False
        self._plain = b""  # read from the TLS object before close_write()
        for _ in range(100):
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise AssertionError("EOF during the TLS handshake")
        else:
            raise AssertionError("TLS handshake did not finish")
        self._flush()

    def _flush(self):
        data = self._out.read()
        if data:
            self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            self.tcp_eof = True
            self._in.write_eof()
            return False
        self._in.write(data)
        return True

    def encrypt(self, data):
        """The TLS records for `data`, to send on `sock` by hand."""
        self.tls.write(data)
        return self._out.read()

    def sendall(self, data):
        view = memoryview(data)
        for off in range(0, len(view), 1 << 14):
            self.sock.sendall(self.encrypt(view[off:off + (1 << 14)]))

    def recv(self, n=1 << 16):
        """Up to n plaintext bytes; b"" at the peer's close_notify or a TCP EOF."""
        if self._plain:
            out, self._plain = self._plain[:n], self._plain[n:]
            return out
        for _ in range(1 << 16):
            if self.peer_closed:
                return b""
            try:
                data = self.tls.read(n)
                # CPython answers the peer's close_notify with b"" (or with
                # SSLZeroReturnError once we sent ours).
                self.peer_closed = not data
                return data
            except ssl.SSLZeroReturnError:
                self.peer_closed = True
                return b""
            except ssl.SSLEOFError:
                return b""  # TCP EOF without close_notify
            except ssl.SSLWantReadError:
                if self.tcp_eof or not self._fill():
                    return b""
            finally:
                self._flush()  # e.g. a key update answer
        raise AssertionError("TLS recv made no progress")

    def close_write(self):
        """Half close: close_notify, then TCP FIN; reading goes on."""
        # SSL_shutdown's own read would discard application data still in the
        # input BIO: take it out first.
        for _ in range(1 << 16):
            if self._in.pending == 0 or self.peer_closed:
                break
            try:
                data = self.tls.read(1 << 16)
                self.peer_closed = not data
                self._plain += data
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.peer_closed = True
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass  # our close_notify is out; the peer's comes when it is done
        self._flush()
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()
