"""systemd integration: the unit files pass `systemd-analyze verify`; the
readiness protocol on a real NOTIFY_SOCKET (READY=1, RELOADING=1 +
MONOTONIC_USEC then READY=1 around SIGHUP, STOPPING=1 on SIGTERM); socket
activation through `systemd-socket-activate` (sockets matched to `listen:`
by address, an unmatched one refused by name); `--log-format json` lines that
stay valid JSON for hostile bytes and never carry a private key or an ACME
key authorization."""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

from common import START_TIMEOUT, closed_port, make_tempdir, require_tool, run, tlsedge_bin
from config import base_config, respond_route, site, to_yaml
from daemon import Daemon, start_daemon
from pki import Certs
from clients import http_request, https_request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class NotifySocket:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []

    def next(self, timeout=START_TIMEOUT):
        """The next message as a dict of its VAR=VALUE lines (bounded wait)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            raise AssertionError(f"no notification within {timeout}s; got so far {self.messages}")
        self.messages.append(data)
        return dict(line.split("=", 1) for line in data.split("\n") if line)

    def close(self):
        self.sock.close()


class SystemdTest(unittest.TestCase):

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        self.leaf = self.certs.leaf("a", ["a.test"])

    def config(self, https=("127.0.0.1:0",), http=("127.0.0.1:0",)):
        return base_config(
            os.path.join(self.tmp, "state"), https=https, http=http,
            certificates={"a": self.leaf}, default_certificate="a",
            sites=[site("a", ["a.test"], [respond_route("/", 200, "hello\n")], "a")])

    # -- unit files --

    def test_unit_files_verify(self):
        analyze = require_tool("systemd-analyze")
        units = os.path.join(self.tmp, "units")
        os.makedirs(units)
        # verify checks that ExecStart's binary exists: the built one stands
        # in for /usr/local/bin/tlsedge.
        with open(os.path.join(ROOT, "systemd", "tlsedge.service")) as f:
            text = f.read().replace("/usr/local/bin/tlsedge", tlsedge_bin())
        self.assertIn("Type=notify", text)
        with open(os.path.join(units, "tlsedge.service"), "w") as f:
            f.write(text)
        shutil.copy(os.path.join(ROOT, "systemd", "tlsedge.socket"), units)
        res = run([analyze, "verify", "--man=no", os.path.join(units, "tlsedge.service"),
                   os.path.join(units, "tlsedge.socket")])
        # Unknown keys are only warnings: any output fails the test.
        self.assertEqual((res.returncode, res.stdout + res.stderr), (0, ""))

    # -- sd_notify --

    def test_notify_ready_reload_stopping(self):
        notify = NotifySocket(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(notify.close)
        d = start_daemon(self, self.tmp, self.config(), env={"NOTIFY_SOCKET": notify.path})
        m = notify.next()
        self.assertEqual(m.get("READY"), "1", notify.messages)
        self.assertIn("ready", m.get("STATUS", ""))

        before = int(time.monotonic() * 1e6)
        d.reload()
        m = notify.next()
        self.assertEqual(m.get("RELOADING"), "1", notify.messages)
        usec = int(m["MONOTONIC_USEC"])  # CLOCK_MONOTONIC, as Python's on Linux
        self.assertLessEqual(before, usec)
        self.assertLess(usec - before, 30e6)
        m = notify.next()
        self.assertEqual((m.get("READY"), m.get("STATUS")), ("1", "reloaded"), notify.messages)

        # A refused reload ends the reload too: systemd would wait otherwise.
        d.write_config("workers: [not a number\n")
        d.reload(expect="refused")
        self.assertEqual(notify.next().get("RELOADING"), "1", notify.messages)
        m = notify.next()
        self.assertEqual(m.get("READY"), "1", notify.messages)
        self.assertIn("refused", m.get("STATUS", ""))

        d.send_signal(signal.SIGTERM)
        self.assertEqual(notify.next().get("STOPPING"), "1", notify.messages)
        self.assertEqual(d.wait_exit(), 0, d.log())

    # -- socket activation --

    def socket_activate(self, ports, names, config, name):
        tool = require_tool("systemd-socket-activate")
        prefix = [tool, f"--fdname={':'.join(names)}"]
        for p in ports:
            prefix += ["-l", f"127.0.0.1:{p}"]
        return Daemon(os.path.join(self.tmp), config, name, prefix=prefix)

    def test_socket_activation_uses_the_sockets_passed_in(self):
        https_port, http_port = closed_port(), closed_port()
        cfg = self.config(https=[f"127.0.0.1:{https_port}"], http=[f"127.0.0.1:{http_port}"])
        d = self.socket_activate([https_port, http_port], ["https", "http"], cfg, "activated")
        self.addCleanup(d.cleanup)
        # systemd-socket-activate binds at once and starts tlsedge at the
        # first connection: this request waits in the queue, then is served.
        first = {}
        t = threading.Thread(target=lambda: first.update(
            r=https_request(https_port, "a.test", "/", ca=self.certs.ca_cert)), daemon=True)
        deadline = time.monotonic() + START_TIMEOUT
        starter = threading.Thread(target=d.start, daemon=True)
        starter.start()
        while True:  # the tool listens a moment after it started
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except ConnectionRefusedError:
                self.assertLess(time.monotonic(), deadline, "systemd-socket-activate not listening")
                time.sleep(0.05)
        t.start()
        starter.join(START_TIMEOUT)
        t.join(START_TIMEOUT)
        self.assertEqual(first["r"].status, 200)
        self.assertEqual(d.count_lines(r"https 127\.0\.0\.1:%d: 1 inherited socket" % https_port),
                         1, d.log())
        self.assertEqual(d.count_lines(r"http 127\.0\.0\.1:%d: 1 inherited socket" % http_port),
                         1, d.log())
        self.assertEqual(http_request(http_port, "/", headers={"Host": "a.test"}).status, 308)
        # A reload keeps the inherited sockets (same addresses).
        d.reload()
        self.assertEqual(https_request(https_port, "a.test", "/", ca=self.certs.ca_cert).status,
                         200)
        d.stop()

    def test_socket_activation_refuses_an_unknown_socket(self):
        https_port, http_port, stray = closed_port(), closed_port(), closed_port()
        cfg = self.config(https=[f"127.0.0.1:{https_port}"], http=[f"127.0.0.1:{http_port}"])
        d = self.socket_activate([https_port, http_port, stray], ["https", "http", "stray"], cfg,
                                 "stray")
        self.addCleanup(d.cleanup)
        err = {}
        starter = threading.Thread(target=lambda: err.update(e=self._expect_failure(d)),
                                   daemon=True)
        starter.start()
        deadline = time.monotonic() + START_TIMEOUT
        while starter.is_alive() and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", stray), timeout=1).close()
            except OSError:
                pass
            time.sleep(0.1)
            if d.proc is not None and d.proc.poll() is not None:
                break
        starter.join(START_TIMEOUT)
        self.assertNotEqual(d.wait_exit(), 0)
        self.assertIn(f"inherited fd 5 (stray) bound to 127.0.0.1:{stray}", d.log())
        self.assertIn("no listen: entry has this address", d.log())

    @staticmethod
    def _expect_failure(d):
        try:
            d.start()
        except AssertionError as e:
            return str(e)
        return None

    # -- logs --

    def test_json_log_lines_are_json_even_for_hostile_bytes(self):
        hostile = os.path.join(self.tmp, "x\x01\x7f\"\\\n\xff\u00e9.yaml")
        res = subprocess.run([tlsedge_bin(), "run", "--log-format", "json", "-c",
                              os.fsencode(hostile)], capture_output=True, timeout=30)
        self.assertEqual(res.returncode, 1)
        lines = res.stderr.decode("ascii").splitlines()  # \u00XX escapes: plain ASCII
        self.assertTrue(lines, res.stderr)
        for line in lines:
            obj = json.loads(line)
            self.assertEqual(sorted(obj), ["level", "message", "time"], line)
        obj = json.loads(lines[0])
        self.assertEqual(obj["level"], "error")
        self.assertRegex(obj["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        # Each byte of the path comes back as one \u00XX (Latin-1).
        self.assertIn(os.fsencode(hostile).decode("latin-1"), obj["message"])

    def test_json_log_of_a_running_daemon_has_no_secrets(self):
        state = os.path.join(self.tmp, "state")
        token = "tok_" + "A" * 40
        keyauth = token + ".thumbprint-" + "B" * 30
        os.makedirs(os.path.join(state, "acme", "challenges"))
        with open(os.path.join(state, "acme", "challenges", token), "w") as f:
            f.write(keyauth + "\n")
        cfg_path = os.path.join(self.tmp, "json.yaml")
        with open(cfg_path, "w") as f:
            f.write(to_yaml(self.config()))
        proc = subprocess.Popen([tlsedge_bin(), "run", "-c", cfg_path, "--log-format", "json",
                                 "--log-level", "debug"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        lines = []
        ports = {}
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            raw = proc.stderr.readline()
            if not raw:
                break
            obj = json.loads(raw)
            lines.append(obj)
            parts = obj["message"].split()
            if obj["message"].startswith("listening "):
                ports[parts[1]] = int(parts[2].rsplit(":", 1)[1])
            if obj["message"] == "ready":
                break
        self.assertEqual(lines[-1]["message"], "ready", lines)
        self.assertEqual(lines[-1]["level"], "info")
        r = http_request(ports["http"], f"/.well-known/acme-challenge/{token}",
                         headers={"Host": "a.test"})
        self.assertEqual((r.status, r.body.decode().strip()), (200, keyauth))
        self.assertEqual(https_request(ports["https"], "a.test", "/",
                                       ca=self.certs.ca_cert).status, 200)
        os.kill(proc.pid, signal.SIGTERM)
        _, rest = proc.communicate(timeout=START_TIMEOUT)
        self.assertEqual(proc.returncode, 0)
        text = "\n".join(json.dumps(l) for l in lines) + rest.decode()
        for raw in rest.splitlines():
            json.loads(raw)
        with open(self.leaf.key) as f:
            key_lines = [l for l in f.read().splitlines() if l and not l.startswith("-----")]
        for l in key_lines:
            self.assertNotIn(l, text)
        self.assertNotIn(keyauth, text)
        self.assertNotIn("thumbprint-", text)


if __name__ == "__main__":
    unittest.main()
