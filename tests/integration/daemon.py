"""The daemon under test: `tlsedge run -c FILE` in a subprocess. Start, learn
the ports from the `listening` lines, wait for `ready`, stop with SIGTERM and
assert exit status 0."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

from common import START_TIMEOUT, STOP_TIMEOUT, add_cleanup, tlsedge_bin
from config import to_yaml


_LISTENING = re.compile(r"^<6>listening (https|http) (\S+):(\d+)\s*$")


class Daemon:
    """`tlsedge run -c FILE` in a subprocess.

    start() returns once the daemon logged `<6>ready`; stop() sends SIGTERM
    (or another signal), waits (bounded), kills with SIGKILL and fails if it
    did not exit, and fails if the exit status is not 0. Register cleanup()
    with addCleanup/addClassCleanup so it is stopped whatever happens.
    """

    def __init__(self, workdir, config, name="tlsedge", args=()):
        self.workdir = workdir
        self.name = name
        self.args = list(args)  # extra arguments after `run -c FILE`, e.g. --log-level debug
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
            [tlsedge_bin(), "run", "-c", self.config_path, *self.args],
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


def start_daemon(testcase_or_class, workdir, config, name="tlsedge", args=()):
    """Starts a daemon and registers its cleanup with the test or the class."""
    d = Daemon(workdir, config, name, args)
    add_cleanup(testcase_or_class, d.cleanup)
    d.start()
    return d
