"""Zero-downtime upgrade: SIGUSR2 makes the running tlsedge start the binary
at the same path with its listening sockets and admin socket passed in; once
the new process is ready the old one drains and exits.

- under wrk (keep-alive connections, 2 threads): zero socket errors, zero
  unexpected responses across the handover; and under HTTP/2 load beside
  it (curl --parallel: the old process's connections get GOAWAY as it
  drains, curl goes on on a new connection): every stream a 200;
- the new PID serves afterwards (the old one has exited), the admin socket
  answers from the new process, and systemd (a NOTIFY_SOCKET stand-in) is
  told MAINPID=<new>;
- a new binary that fails to start leaves the old one serving.

Every process is stopped by its PID: the old one is the harness's child, the
new one (its child, reparented when it exits) is signalled by PID and polled
until gone."""

import os
import re
import shutil
import signal
import socket
import stat
import time
import unittest

from common import START_TIMEOUT, STOP_TIMEOUT, make_tempdir, require_tool, sanitizer, tlsedge_bin
from config import base_config, respond_route, site
from daemon import start_daemon
from pki import Certs
from clients import https_request
from test_systemd import NotifySocket
from h2_load import CurlH2Load
from wrk import WrkResult, assert_clean, start_wrk, wrk_command, write_check_script

_READY = re.compile(r"upgrade: PID (\d+) is ready, handing over")


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def stop_pid(pid, timeout=STOP_TIMEOUT):
    """SIGTERM to `pid`, then waits (bounded) until it is gone; SIGKILL and
    False if it is still there."""
    if not pid_alive(pid):
        return True
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return False


class UpgradeTest(unittest.TestCase):

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        self.leaf = self.certs.leaf("a", ["a.test"])
        # The binary is run from a copy: the test replaces it like a package
        # upgrade would (a new file renamed over the old path).
        self.bin = os.path.join(self.tmp, "bin", "tlsedge")
        os.makedirs(os.path.dirname(self.bin))
        shutil.copy(tlsedge_bin(), self.bin)

    def start(self, env=None):
        cfg = base_config(
            os.path.join(self.tmp, "state"), workers=2, shutdown_timeout="10s",
            certificates={"a": self.leaf}, default_certificate="a",
            sites=[site("a", ["a.test"], [respond_route("/", 200, "upgrade ok\n")], "a")])
        cfg["admin"] = {"socket": os.path.join(self.tmp, "admin.sock")}
        os.environ["TLSEDGE_BIN"], saved = self.bin, os.environ["TLSEDGE_BIN"]
        try:
            return start_daemon(self, self.tmp, cfg, env=env)
        finally:
            os.environ["TLSEDGE_BIN"] = saved

    def replace_binary(self):
        tmp = self.bin + ".new"
        shutil.copy(tlsedge_bin(), tmp)
        os.replace(tmp, self.bin)

    def wait_handover(self, d, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in d.lines():
                m = _READY.search(line)
                if m:
                    pid = int(m.group(1))
                    self.addCleanup(stop_pid, pid)
                    return pid
            time.sleep(0.05)
        self.fail(f"no handover after {timeout}s\n{d.log()}")

    def admin_pid(self):
        """The PID serving the admin socket (SO_PEERCRED of a connection)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(os.path.join(self.tmp, "admin.sock"))
            creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            return int.from_bytes(creds[:4], "little")

    def test_upgrade_under_wrk_fails_no_request(self):
        require_tool("wrk")
        notify = NotifySocket(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(notify.close)
        d = self.start(env={"NOTIFY_SOCKET": notify.path})
        self.assertEqual(notify.next().get("READY"), "1")
        old = d.proc.pid
        port = d.https_port
        self.assertEqual(self.admin_pid(), old)

        script = write_check_script(os.path.join(self.tmp, "check.lua"), 200, "upgrade ok")
        duration = 8 if sanitizer() else 4
        cmd = wrk_command(f"https://127.0.0.1:{port}/", script, threads=2, connections=16,
                          duration=f"{duration}s", host="a.test")
        wrk, out_path = start_wrk(cmd, self.tmp)
        self.addCleanup(lambda: wrk.poll() is None and wrk.kill())
        h2 = CurlH2Load(self.tmp, port, "a.test", "/", ca=self.certs.ca_cert,
                        duration_s=duration, per_run=2000).start()
        self.addCleanup(h2.stop, 0)
        time.sleep(1)  # the clients' connections are up, on the old process
        self.replace_binary()
        d.send_signal(signal.SIGUSR2)
        new = self.wait_handover(d)
        self.assertIsNone(wrk.poll(), "wrk ended before the handover: the load did not span it")
        self.assertNotEqual(new, old)
        self.assertEqual(notify.next().get("MAINPID"), str(new), notify.messages)
        # The old process drains and exits 0; the new one serves on.
        self.assertEqual(d.wait_exit(timeout=STOP_TIMEOUT), 0, d.log())
        self.assertTrue(pid_alive(new))
        wrk.wait(timeout=duration + 30)
        with open(out_path) as f:
            w = WrkResult(f.read())
        assert_clean(self, w, min_requests=100)
        h2.stop(timeout=60)
        h2.assert_clean(self, min_transfers=100)
        self.assertGreaterEqual(h2.connections(), 2)  # the old process's, then the new one's
        if os.environ.get("TLSEDGE_TEST_LOG"):
            print(w.text)

        r = https_request(port, "a.test", "/", ca=self.certs.ca_cert)
        self.assertEqual((r.status, r.body), (200, b"upgrade ok\n"))
        self.assertEqual(self.admin_pid(), new)
        self.assertTrue(stat.S_ISSOCK(os.stat(os.path.join(self.tmp, "admin.sock")).st_mode))
        # The new process is systemd's main process now: it reports its own stop.
        os.kill(new, signal.SIGTERM)
        self.assertEqual(notify.next().get("STOPPING"), "1", notify.messages)
        self.assertTrue(stop_pid(new), "the new process did not exit after SIGTERM")

    def test_failed_upgrade_keeps_the_old_process(self):
        d = self.start()
        # A "new binary" that exits at once: the old process must notice and serve on.
        with open(self.bin + ".new", "w") as f:
            f.write("#!/bin/sh\nexit 3\n")
        os.chmod(self.bin + ".new", 0o755)
        os.replace(self.bin + ".new", self.bin)
        d.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + START_TIMEOUT
        while d.count_lines(r"upgrade failed, serving on: .*exited with status 3") == 0:
            self.assertLess(time.monotonic(), deadline, d.log())
            time.sleep(0.05)
        self.assertTrue(d.running())
        r = https_request(d.https_port, "a.test", "/", ca=self.certs.ca_cert)
        self.assertEqual(r.status, 200)
        self.assertEqual(self.admin_pid(), d.proc.pid)
        d.stop()


if __name__ == "__main__":
    unittest.main()
