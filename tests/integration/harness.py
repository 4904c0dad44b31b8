"""Shared helpers for the tlsedge integration tests.

Everything here uses the Python standard library and real external peers
(the `openssl` and `curl` command-line tools). Nothing listens on anything but
loopback; every wait is bounded in count and time; every process started is
stopped by its PID.

Pieces:
  Certs         a throw-away test CA and leaf certificates (ECDSA P-256
                by default), generated with the openssl CLI.
  to_yaml       a tiny YAML emitter for config dicts (block style, every
                string double-quoted).
  Daemon        `tlsedge run -c FILE`: start, learn the ports from the
                `listening` lines, wait for `ready`, stop with SIGTERM and
                assert exit status 0.
  Origin        a real HTTP/1.1 keep-alive origin (ThreadingHTTPServer) that
                answers with JSON describing what it received.
  https_request / http_request / curl / s_client: clients.
"""

import hashlib
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

# Bounds used throughout (seconds). Generous enough for a sanitizer build.
START_TIMEOUT = float(os.environ.get("TLSEDGE_TEST_START_TIMEOUT", "20"))
STOP_TIMEOUT = float(os.environ.get("TLSEDGE_TEST_STOP_TIMEOUT", "20"))
CLIENT_TIMEOUT = 20.0
TOOL_TIMEOUT = 60.0


def tlsedge_bin():
    """Path of the binary under test, from $TLSEDGE_BIN (set by ctest)."""
    path = os.environ.get("TLSEDGE_BIN", "")
    if not path:
        raise AssertionError(
            "TLSEDGE_BIN is not set: run through ctest, or "
            "TLSEDGE_BIN=/path/to/tlsedge python3 -m unittest -v test_x")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(f"TLSEDGE_BIN={path!r} is not an executable file")
    return path


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        raise unittest.SkipTest(f"{name} not installed (scripts/setup.sh installs it)")
    return path


def have_ipv6_loopback():
    """True if this machine can bind and connect on [::1]."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            with socket.create_connection(("::1", port), timeout=2):
                pass
        return True
    except OSError:
        return False


def closed_port():
    """A loopback TCP port with nothing listening on it (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, *, input=None, timeout=TOOL_TIMEOUT, check=False, env=None):
    """Runs a command; returns CompletedProcess with text stdout/stderr."""
    proc = subprocess.run(
        cmd, input=input, capture_output=True, timeout=timeout, env=env,
        stdin=None if input is not None else subprocess.DEVNULL)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    res = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"stdout:\n{out}\nstderr:\n{err}")
    return res


def make_tempdir(testcase_or_class, prefix="tlsedge-it-"):
    """A temp directory removed by the test's (or class's) cleanups."""
    path = tempfile.mkdtemp(prefix=prefix)
    if isinstance(testcase_or_class, type):
        testcase_or_class.addClassCleanup(shutil.rmtree, path, True)
    else:
        testcase_or_class.addCleanup(shutil.rmtree, path, True)
    return path


# ---------------------------------------------------------------------------
# Certificates


class Leaf:
    """A generated leaf certificate: files and the values tests compare."""

    def __init__(self, name, names, cert, key, serial, subject_cn):
        self.name = name              # label given by the test
        self.names = list(names)      # subjectAltName DNS names
        self.cert = cert              # PEM path (leaf only)
        self.key = key                # PEM path (PKCS#8)
        self.serial = serial          # int
        self.subject_cn = subject_cn  # str or None (names > 64 chars)

    def __repr__(self):
        return f"Leaf({self.name!r}, serial={self.serial:#x}, cn={self.subject_cn!r})"


_REQ_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
O = tlsedge integration tests
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""


class Certs:
    """A test CA in `directory` and leaves signed by it."""

    def __init__(self, directory):
        require_tool("openssl")
        self.dir = directory
        os.makedirs(self.dir, exist_ok=True)
        self._cnf = os.path.join(self.dir, "req.cnf")
        with open(self._cnf, "w") as f:
            f.write(_REQ_CNF)
        self._serials = set()
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.ca_cert = os.path.join(self.dir, "ca.pem")
        self._genkey(self.ca_key, "ec")
        self.ca_serial = self._new_serial()
        run(["openssl", "req", "-x509", "-new", "-config", self._cnf, "-extensions", "v3_ca",
             "-key", self.ca_key, "-subj", "/O=tlsedge integration tests/CN=tlsedge test CA",
             "-days", "3", "-sha256", "-set_serial", str(self.ca_serial),
             "-out", self.ca_cert], check=True)

    def _new_serial(self):
        # Positive, 63 bits, never 0, distinct within this CA.
        for _ in range(100):
            s = random.SystemRandom().getrandbits(63) | (1 << 40)
            if s not in self._serials:
                self._serials.add(s)
                return s
        raise AssertionError("could not draw a fresh serial")

    def _genkey(self, path, key_type):
        if key_type == "ec":
            cmd = ["openssl", "genpkey", "-algorithm", "EC",
                   "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path]
        elif key_type == "rsa":
            cmd = ["openssl", "genpkey", "-algorithm", "RSA",
                   "-pkeyopt", "rsa_keygen_bits:2048", "-out", path]
        else:
            raise ValueError(key_type)
        run(cmd, check=True)
        os.chmod(path, 0o600)

    def leaf(self, name, names, key_type="ec", days=3):
        """Issues a leaf for DNS `names` (wildcards allowed). The subject CN is
        the first name when it fits (<= 64 characters), else absent."""
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        key = os.path.join(d, "privkey.pem")
        csr = os.path.join(d, "leaf.csr")
        cert = os.path.join(d, "fullchain.pem")
        ext = os.path.join(d, "ext.cnf")
        self._genkey(key, key_type)
        cn = names[0] if len(names[0]) <= 64 else None
        subj = "/O=tlsedge integration tests" + (f"/CN={cn}" if cn else "")
        ku = "digitalSignature" + (",keyEncipherment" if key_type == "rsa" else "")
        with open(ext, "w") as f:
            f.write("[v3_leaf]\n"
                    "basicConstraints = critical,CA:FALSE\n"
                    f"keyUsage = critical,{ku}\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectKeyIdentifier = hash\n"
                    "authorityKeyIdentifier = keyid\n"
                    "subjectAltName = " + ",".join(f"DNS:{n}" for n in names) + "\n")
        run(["openssl", "req", "-new", "-config", self._cnf, "-key", key, "-subj", subj,
             "-out", csr], check=True)
        serial = self._new_serial()
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
             "-set_serial", str(serial), "-days", str(days), "-sha256",
             "-extfile", ext, "-extensions", "v3_leaf", "-out", cert], check=True)
        return Leaf(name, names, cert, key, serial, cn)


def cert_info(pem_text):
    """(serial int, subject CN or None) of the first certificate in PEM text,
    read back with `openssl x509`."""
    res = run(["openssl", "x509", "-noout", "-serial", "-subject", "-nameopt", "RFC2253"],
              input=pem_text.encode(), check=True)
    serial = cn = None
    for line in res.stdout.splitlines():
        if line.startswith("serial="):
            serial = int(line.split("=", 1)[1].strip(), 16)
        elif line.startswith("subject="):
            for part in line.split("=", 1)[1].strip().split(","):
                if part.startswith("CN="):
                    cn = part[3:]
    if serial is None:
        raise AssertionError(f"no serial in openssl x509 output:\n{res.stdout}{res.stderr}")
    return serial, cn


# ---------------------------------------------------------------------------
# YAML


def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        # JSON string escapes are a subset of YAML double-quoted escapes.
        return json.dumps(v)
    raise TypeError(f"cannot emit {type(v).__name__} as YAML")


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts/lists/scalars (enough for tlsedge configs)."""
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            key = _yaml_scalar(str(k)) if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", str(k)) else str(k)
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{key}:\n{to_yaml(v, indent + 2)}")
            elif isinstance(v, dict):
                lines.append(f"{pad}{key}: {{}}\n")
            elif isinstance(v, list):
                lines.append(f"{pad}{key}: []\n")
            else:
                lines.append(f"{pad}{key}: {_yaml_scalar(v)}\n")
        return "".join(lines)
    if isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                inner = to_yaml(v, indent + 2)
                # "- " replaces the first two spaces of the nested block.
                lines.append(f"{pad}- {inner[indent + 2:]}")
            else:
                lines.append(f"{pad}- {_yaml_scalar(v) if not isinstance(v, (dict, list)) else ('{}' if isinstance(v, dict) else '[]')}\n")
        return "".join(lines)
    return pad + _yaml_scalar(obj) + "\n"


def base_config(state_dir, *, certificates=None, sites=None, upstreams=None,
                https=("127.0.0.1:0",), http=("127.0.0.1:0",), workers=2,
                default_certificate=None, unknown_sni=None, min_version=None,
                shutdown_timeout=None):
    """A config dict with loopback port-0 listeners. `certificates` maps name ->
    Leaf."""
    cfg = {
        "workers": workers,
        "listen": {"https": list(https), "http": list(http)},
        "state_dir": state_dir,
    }
    if shutdown_timeout is not None:
        cfg["shutdown_timeout"] = shutdown_timeout
    tls = {}
    if min_version is not None:
        tls["min_version"] = min_version
    if default_certificate is not None:
        tls["default_certificate"] = default_certificate
    if unknown_sni is not None:
        tls["unknown_sni"] = unknown_sni
    if tls:
        cfg["tls"] = tls
    cfg["certificates"] = {n: {"cert": l.cert, "key": l.key} for n, l in (certificates or {}).items()}
    cfg["sites"] = list(sites or [])
    cfg["upstreams"] = {n: {"servers": list(s)} for n, s in (upstreams or {}).items()}
    return cfg


def site(name, hosts, routes, certificate=None, **extra):
    s = {"name": name, "hosts": list(hosts)}
    if certificate is not None:
        s["tls"] = {"certificate": certificate}
    s.update(extra)
    s["routes"] = list(routes)
    return s


def upstream_route(path, upstream):
    return {"path": path, "upstream": upstream}


def respond_route(path, status, body, content_type=None):
    r = {"status": status, "body": body}
    if content_type is not None:
        r["content_type"] = content_type
    return {"path": path, "respond": r}


# ---------------------------------------------------------------------------
# The daemon


_LISTENING = re.compile(r"^<6>listening (https|http) (\S+):(\d+)\s*$")


class Daemon:
    """`tlsedge run -c FILE` in a subprocess.

    start() returns once the daemon logged `<6>ready`; stop() sends SIGTERM
    (or another signal), waits (bounded), kills with SIGKILL and fails if it
    did not exit, and fails if the exit status is not 0. Register cleanup()
    with addCleanup/addClassCleanup so it is stopped whatever happens.
    """

    def __init__(self, workdir, config, name="tlsedge"):
        self.workdir = workdir
        self.name = name
        self.config_path = os.path.join(workdir, f"{name}.yaml")
        text = config if isinstance(config, str) else to_yaml(config)
        with open(self.config_path, "w") as f:
            f.write(text)
        self.config_text = text
        self.proc = None
        self.returncode = None
        self._lines = []
        self._cond = threading.Condition()
        self._reader = None
        self._ready = False
        self.listeners = []  # [(scheme, host, port)] in order of first appearance

    # -- lifecycle --

    def start(self, timeout=START_TIMEOUT):
        self.proc = subprocess.Popen(
            [tlsedge_bin(), "run", "-c", self.config_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.workdir)
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-stderr", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._ready:
                if self.proc.poll() is not None:
                    # Let the reader drain what is left before reporting.
                    self._cond.wait(timeout=0.5)
                    raise AssertionError(
                        f"tlsedge exited with status {self.proc.returncode} before ready\n"
                        f"config:\n{self.config_text}\nlog:\n{self.log()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    self._kill()
                    raise AssertionError(
                        f"tlsedge not ready after {timeout}s (killed)\nlog:\n{self.log()}")
                self._cond.wait(timeout=min(left, 0.2))
        if not self.listeners:
            raise AssertionError(f"tlsedge ready but logged no listening line\nlog:\n{self.log()}")
        return self

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                self._lines.append(line)
                m = _LISTENING.match(line)
                if m:
                    self._add_listener(m.group(1), m.group(2), int(m.group(3)))
                elif line.strip() == "<6>ready":
                    self._ready = True
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _add_listener(self, scheme, addr, port):
        host = addr[1:-1] if addr.startswith("[") and addr.endswith("]") else addr
        for s, h, p in self.listeners:
            if (s, h) == (scheme, host):
                if p != port:
                    # Recorded, and reported by port(): the contract says
                    # all workers share the resolved port.
                    self._lines.append(
                        f"[harness] {scheme} {addr}: two different ports {p} and {port}")
                    self._port_conflict = (scheme, host, p, port)
                return
        self.listeners.append((scheme, host, port))

    def port(self, scheme, host="127.0.0.1"):
        conflict = getattr(self, "_port_conflict", None)
        if conflict:
            raise AssertionError(f"listener logged with different ports {conflict}; "
                                 f"workers must share one port\nlog:\n{self.log()}")
        for s, h, p in self.listeners:
            if s == scheme and h == host:
                return p
        raise AssertionError(f"no {scheme} listener on {host} in the log\nlog:\n{self.log()}")

    @property
    def https_port(self):
        return self.port("https")

    @property
    def http_port(self):
        return self.port("http")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if not self.running():
            raise AssertionError(f"tlsedge is not running (status {self.proc.returncode})\n"
                                 f"log:\n{self.log()}")
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Waits for exit (bounded); on timeout SIGKILLs and fails. Returns the status."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError(f"tlsedge did not exit within {timeout}s (SIGKILLed)\n"
                                 f"log:\n{self.log()}")
        if self._reader is not None:
            self._reader.join(timeout=5)
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signals the daemon, waits, and asserts exit status 0."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        rc = self.wait_exit(timeout)
        if rc != 0:
            raise AssertionError(f"tlsedge exited with status {rc} (expected 0 after "
                                 f"{signal.Signals(sig).name})\nlog:\n{self.log()}")

    def cleanup(self):
        """For addCleanup: stops the daemon if it is still running (asserting
        exit status 0); no-op once it exited."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.stop()
        finally:
            if os.environ.get("TLSEDGE_TEST_LOG"):
                sys.stderr.write(f"\n--- {self.name} log ({self.config_path}) ---\n{self.log()}\n")
            if self.proc.stdout:
                self.proc.stdout.close()

    def _kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    # -- log --

    def log(self):
        with self._cond:
            return "\n".join(self._lines)

    def lines(self):
        with self._cond:
            return list(self._lines)


def start_daemon(testcase_or_class, workdir, config, name="tlsedge"):
    """Starts a daemon and registers its cleanup with the test or the class."""
    d = Daemon(workdir, config, name)
    if isinstance(testcase_or_class, type):
        testcase_or_class.addClassCleanup(d.cleanup)
    else:
        testcase_or_class.addCleanup(d.cleanup)
    d.start()
    return d


# ---------------------------------------------------------------------------
# The origin


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
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)  # CRLF after the chunk
            return b"".join(chunks), "chunked"
        cl = self.headers.get("Content-Length")
        if cl is not None:
            n = int(cl)
            return (self.rfile.read(n) if n else b""), "length"
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
                self.wfile.write(view[off:off + (1 << 16)])

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
    list of [name, value], body length / sha256 / text, connection id.
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
    if isinstance(testcase_or_class, type):
        testcase_or_class.addClassCleanup(o.stop)
    else:
        testcase_or_class.addCleanup(o.stop)
    return o


def header_values(record, name):
    """All values of header `name` (case-insensitive) in an origin record."""
    return [v for k, v in record["headers"] if k.lower() == name.lower()]


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


def curl(args, timeout=TOOL_TIMEOUT):
    """curl -sS with a bounded max time. Returns CompletedProcess (text)."""
    exe = require_tool("curl")
    return run([exe, "-sS", "--max-time", str(int(CLIENT_TIMEOUT)), *args], timeout=timeout)


def curl_https(port, host, path="/", *, ca, extra=(), connect_host="127.0.0.1", verbose=True):
    """curl https://host:port/path with --resolve to the loopback address and
    --cacert the test CA. Returns (CompletedProcess, status, body)."""
    addr = f"[{connect_host}]" if ":" in connect_host else connect_host
    res = curl([*(["-v"] if verbose else []), "--cacert", ca, "--http1.1",
                "--resolve", f"{host}:{port}:{addr}",
                "-w", "\n%{http_code}", *extra, f"https://{host}:{port}{path}"])
    body, _, code = res.stdout.rpartition("\n")
    return res, int(code) if code.isdigit() else 0, body


def s_client(port, servername=None, *, ca=None, extra=(), connect_host="127.0.0.1"):
    """openssl s_client: handshake, then EOF on stdin. Returns CompletedProcess;
    stdout+stderr are in .stdout/.stderr."""
    exe = require_tool("openssl")
    addr = f"[{connect_host}]" if ":" in connect_host else connect_host
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
