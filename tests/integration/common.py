"""Common ground for the tlsedge integration tests: time bounds, the binary
under test, external tools, subprocesses, temp dirs, cleanups, loopback ports.

Everything in this suite uses the Python standard library and real external
peers (the `openssl` and `curl` command-line tools). Nothing listens on
anything but loopback; every wait is bounded in count and time; every process
started is stopped by its PID.

The other modules:
  pki.py      a throw-away test CA and leaf certificates (openssl CLI).
  config.py   config dicts and the YAML emitter that writes them.
  daemon.py   `tlsedge run -c FILE`: start, ports, ready, stop.
  origin.py   a real HTTP/1.1 keep-alive origin that echoes requests as JSON.
  clients.py  Python ssl/http.client clients, curl and openssl s_client.
  websocket.py  a minimal RFC 6455 codec and echo loop (tunnel tests).
  wrk.py      wrk runs with a Lua body check, and their parsed results.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import unittest

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


def sanitizer():
    """"asan", "tsan" or None: how the binary under test was built. Looks for
    the sanitizer runtime's entry symbol in the file (GCC links the runtime
    as a shared library, clang statically; the name is there either way)."""
    global _sanitizer
    if _sanitizer is None:
        found = ""
        tail = b""
        with open(tlsedge_bin(), "rb") as f:
            while not found:
                block = f.read(1 << 20)
                if not block:
                    break
                data = tail + block
                if b"__asan_init" in data:
                    found = "asan"
                elif b"__tsan_init" in data:
                    found = "tsan"
                tail = data[-16:]
        _sanitizer = found
    return _sanitizer or None


_sanitizer = None


def quarantine_capped_env():
    """The daemon's environment for tests that measure its peak RSS: under
    ASan, its quarantine of freed memory capped at 16 MiB (the default 256
    MiB would keep every freed buffer resident); None (inherit) otherwise."""
    if sanitizer() != "asan":
        return None
    asan = [o for o in os.environ.get("ASAN_OPTIONS", "").split(":") if o]
    return {"ASAN_OPTIONS": ":".join(asan + ["quarantine_size_mb=16"])}


def vm_status(pid, key):
    """A kB value from /proc/PID/status (VmHWM: peak RSS, VmRSS), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"{key} not in /proc/{pid}/status")


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


_handed_out = set()


def closed_port():
    """A loopback TCP port with nothing listening on it (bound, then released).
    Never the same port twice in one test process: a set-up that asks for
    several (Pebble's) must not get one port for two servers."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def dead_port(testcase_or_class):
    """A loopback TCP port where nothing listens, for the test's (or the
    class's) whole life: the port stays bound by a socket that never
    listens, so a connect is refused and no other socket (another test's
    server in a parallel job) can take it meanwhile."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    add_cleanup(testcase_or_class, s.close)
    return s.getsockname()[1]


def run(cmd, *, input=None, timeout=TOOL_TIMEOUT, check=False, env=None, cwd=None):
    """Runs a command (in `cwd` if given); returns CompletedProcess with text
    stdout/stderr."""
    proc = subprocess.run(
        cmd, input=input, capture_output=True, timeout=timeout, env=env, cwd=cwd,
        stdin=None if input is not None else subprocess.DEVNULL)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    res = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"stdout:\n{out}\nstderr:\n{err}")
    return res


def add_cleanup(testcase_or_class, fn, *args):
    """Registers fn(*args) with the test's cleanups, or with the class's when
    given a class (setUpClass)."""
    if isinstance(testcase_or_class, type):
        testcase_or_class.addClassCleanup(fn, *args)
    else:
        testcase_or_class.addCleanup(fn, *args)


def make_tempdir(testcase_or_class, prefix="tlsedge-it-"):
    """A temp directory removed by the test's (or class's) cleanups."""
    path = tempfile.mkdtemp(prefix=prefix)
    add_cleanup(testcase_or_class, shutil.rmtree, path, True)
    return path


class SockReader:
    """Buffered reads over any recv(n) function (a socket's, a TlsStream's);
    every read is bounded by the size asked for and the recv's own timeout."""

    def __init__(self, recv, initial=b""):
        self._recv = recv
        self.buffer = bytearray(initial)
        self.eof = False

    def _fill(self):
        data = self._recv(1 << 16)
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def recv_exact(self, n):
        while len(self.buffer) < n:
            if not self._fill():
                raise AssertionError(f"EOF after {len(self.buffer)} of {n} bytes")
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def read_until(self, delim, limit=1 << 16):
        """Bytes up to and including `delim` (at most `limit` bytes)."""
        while True:
            i = self.buffer.find(delim)
            if i >= 0:
                return self.recv_exact(i + len(delim))
            if len(self.buffer) > limit:
                raise AssertionError(f"no {delim!r} in the first {limit} bytes")
            if not self._fill():
                raise AssertionError(f"EOF before {delim!r}: {bytes(self.buffer[:200])!r}")

    def read_to_eof(self, limit=64 << 20):
        while not self.eof:
            if len(self.buffer) > limit:
                raise AssertionError(f"more than {limit} bytes before EOF")
            self._fill()
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


class Head:
    """A parsed HTTP/1.x head (request or response) from its raw bytes."""

    def __init__(self, raw):
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                self.headers.append((name.strip(), value.strip()))
        parts = self.start.split(" ", 2)
        # Requests: method, target, version. Responses: version, status, reason.
        self.method, self.target, self.version = (parts + ["", ""])[:3]
        self.status = int(parts[1]) if self.start.startswith("HTTP/") and len(parts) > 1 else 0

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"Head({self.raw!r})"


def read_body(reader, head, *, bodyless=False):
    """The body of the message `head` from `reader` (a SockReader), framed as
    the head says: chunked (chunks joined, trailers dropped), Content-Length,
    or nothing when `bodyless` (a response to HEAD, a 1xx, 204 or 304) or
    for a request with neither. A response with neither is read to EOF."""
    if bodyless:
        return b""
    if "chunked" in ",".join(head.all("Transfer-Encoding")).lower():
        out = bytearray()
        for _ in range(1 << 20):
            size = int(reader.read_until(b"\r\n").split(b";")[0].strip(), 16)
            if size == 0:
                while reader.read_until(b"\r\n") != b"\r\n":
                    pass  # a trailer field
                return bytes(out)
            out += reader.recv_exact(size)
            if reader.recv_exact(2) != b"\r\n":
                raise AssertionError("no CRLF after a chunk")
        raise AssertionError("too many chunks")
    length = head.header("Content-Length")
    if length is not None:
        return reader.recv_exact(int(length))
    return reader.read_to_eof() if head.status else b""
