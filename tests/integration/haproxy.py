"""HAProxy (Debian's `haproxy`) for the tests, run in the foreground (-db)
and stopped by its PID: one frontend on a free 127.0.0.1 port per route,
each passing its connections to one server. As a real L4 balancer (`mode
tcp`, `send-proxy` or `send-proxy-v2` to the server), or as an origin's
front that reads PROXY headers (`mode http`, `accept-proxy`, with
`http-request` lines that put what the header said into request fields)."""

import os
import socket
import subprocess
import time

from common import START_TIMEOUT, STOP_TIMEOUT, add_cleanup, closed_port, require_tool


def _listening(port, proc):
    """True once 127.0.0.1:port accepts, false if `proc` exits first or
    START_TIMEOUT passes."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Haproxy:
    def __init__(self, workdir, routes):
        """`routes`: [(server "127.0.0.1:PORT", server options such as
        "send-proxy-v2", and optionally {"mode": "http", "bind": "accept-proxy",
        "lines": [frontend lines]})]; self.ports[i] is routes[i]'s frontend."""
        self.ports = [closed_port() for _ in routes]
        self.config = os.path.join(workdir, f"haproxy-{id(self)}.cfg")
        lines = ["global", "  maxconn 1000", "defaults", "  timeout connect 5s",
                 "  timeout client 30s", "  timeout server 30s"]
        for i, (route, port) in enumerate(zip(routes, self.ports)):
            server, options, extra = (*route, {})[:3]
            mode = extra.get("mode", "tcp")
            lines += [f"frontend f{i}", f"  mode {mode}",
                      f"  bind 127.0.0.1:{port} {extra.get('bind', '')}".rstrip(),
                      *(f"  {line}" for line in extra.get("lines", [])),
                      f"  default_backend b{i}", f"backend b{i}", f"  mode {mode}",
                      f"  server s{i} {server} {options}".rstrip()]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(workdir, f"haproxy-{id(self)}.log")
        self.proc = None

    def start(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([require_tool("haproxy"), "-db", "-f", self.config],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        for port in self.ports:
            if not _listening(port, self.proc):
                self.stop()
                with open(self.log_path, errors="replace") as f:
                    raise AssertionError(f"haproxy did not listen on {port}:\n{f.read()}")
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_haproxy(testcase, workdir, routes):
    h = Haproxy(workdir, routes)
    add_cleanup(testcase, h.stop)
    return h.start()
