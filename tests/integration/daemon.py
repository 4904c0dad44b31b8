"""The daemon under test: `tlsedge run -c FILE` in a subprocess. Start, learn
the ports from the `listening` lines (and, after a reload, the `closed
listener` ones), wait for `ready`, reload with SIGHUP, stop with SIGTERM and
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
_CLOSED = re.compile(r"^<6>closed listener (\S+):(\d+) \((https|http)\)\s*$")
_METRICS = re.compile(r"^<6>metrics listening on (\S+):(\d+)\s*$")
_MANAGEMENT = re.compile(r"^<6>management API listening on (\S+):(\d+)\s*$")
_RELOAD_DONE = re.compile(r"^<6>reloaded\s*$")
_RELOAD_REFUSED = re.compile(r"^<3>reload refused")


class Daemon:
    """`tlsedge run -c FILE` in a subprocess.

    start() returns once the daemon logged `<6>ready`; stop() sends SIGTERM
    (or another signal), waits (bounded), kills with SIGKILL and fails if it
    did not exit, and fails if the exit status is not 0. Register cleanup()
    with addCleanup/addClassCleanup so it is stopped whatever happens.
    """

    def __init__(self, workdir, config, name="tlsedge", env=None, args=(), prefix=()):
        self.workdir = workdir
        self.name = name
        self.args = list(args)  # extra arguments after `run -c FILE`, e.g. --log-level debug
        self.prefix = list(prefix)  # a command that runs tlsedge, e.g. systemd-socket-activate
        self.config_path = os.path.join(workdir, f"{name}.yaml")
        self.env = env  # extra environment variables for the daemon
        self.write_config(config)
        self.proc = None
        self.returncode = None
        self._lines = []
        self._cond = threading.Condition()
        self._reader = None
        self._ready = False
        self.listeners = []  # open ones, [(scheme, host, port)] in order of appearance
        self.metrics_address = None  # (host, port) of the metrics endpoint, once logged
        self.management_address = None  # (host, port) of admin.listen, once logged

    def write_config(self, config):
        """(Re)writes the config file atomically: a reload never reads half a file."""
        text = config if isinstance(config, str) else to_yaml(config)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)
        self.config_text = text

    # -- lifecycle --

    def start(self, timeout=START_TIMEOUT):
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        self.proc = subprocess.Popen(
            [*self.prefix, tlsedge_bin(), "run", "-c", self.config_path, *self.args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.workdir, env=env)
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
                closed = _CLOSED.match(line)
                if m:
                    self._add_listener(m.group(1), m.group(2), int(m.group(3)))
                elif _METRICS.match(line):
                    mm = _METRICS.match(line)
                    self.metrics_address = (self._host(mm.group(1)), int(mm.group(2)))
                elif _MANAGEMENT.match(line):
                    mm = _MANAGEMENT.match(line)
                    self.management_address = (self._host(mm.group(1)), int(mm.group(2)))
                elif closed:
                    self._remove_listener(closed.group(3), closed.group(1), int(closed.group(2)))
                elif line.strip() == "<6>ready":
                    self._ready = True
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @staticmethod
    def _host(addr):
        return addr[1:-1] if addr.startswith("[") and addr.endswith("]") else addr

    def _add_listener(self, scheme, addr, port):
        entry = (scheme, self._host(addr), port)
        if entry in self.listeners:
            # One line per listener, whatever the number of workers: a
            # second one means two listeners on one port.
            self._lines.append(f"[harness] {scheme} {addr}:{port} logged twice")
            self._port_conflict = entry
            return
        self.listeners.append(entry)

    def _remove_listener(self, scheme, addr, port):
        entry = (scheme, self._host(addr), port)
        if entry in self.listeners:
            self.listeners.remove(entry)

    def ports(self, scheme, host="127.0.0.1"):
        """Ports of the open `scheme` listeners on `host`, in order of appearance."""
        conflict = getattr(self, "_port_conflict", None)
        if conflict:
            raise AssertionError(f"listener logged twice {conflict}\nlog:\n{self.log()}")
        with self._cond:
            return [p for s, h, p in self.listeners if s == scheme and h == host]

    def port(self, scheme, host="127.0.0.1"):
        """The port of the first open `scheme` listener on `host`."""
        ports = self.ports(scheme, host)
        if not ports:
            raise AssertionError(f"no {scheme} listener on {host} in the log\nlog:\n{self.log()}")
        return ports[0]

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

    def reload(self, config=None, expect="reloaded", timeout=START_TIMEOUT):
        """Rewrites the config (if given), sends SIGHUP and waits (bounded)
        for its outcome: `reloaded` (every worker switched) or `reload
        refused`. Asserts the outcome is `expect` ("reloaded" or "refused");
        returns the log lines written since the signal."""
        if config is not None:
            self.write_config(config)
        with self._cond:
            mark = len(self._lines)
        self.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                new = self._lines[mark:]
                if any(_RELOAD_DONE.match(l) for l in new):
                    outcome = "reloaded"
                    break
                if any(_RELOAD_REFUSED.match(l) for l in new):
                    outcome = "refused"
                    break
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no reload outcome after {timeout}s\nlog:\n{self.log()}")
                self._cond.wait(timeout=min(left, 0.2))
            # A refusal may span several lines; let them arrive.
            if outcome == "refused":
                self._cond.wait(timeout=0.2)
            new = self._lines[mark:]
        if outcome != expect:
            raise AssertionError(f"reload: {outcome}, expected {expect}\nlog:\n{self.log()}")
        return new

    def count_lines(self, pattern):
        """How many log lines match the regex `pattern` (re.search)."""
        rx = re.compile(pattern)
        with self._cond:
            return sum(1 for l in self._lines if rx.search(l))

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


def start_daemon(testcase_or_class, workdir, config, name="tlsedge", env=None, args=()):
    """Starts a daemon and registers its cleanup with the test or the class."""
    d = Daemon(workdir, config, name, env, args)
    add_cleanup(testcase_or_class, d.cleanup)
    d.start()
    return d
