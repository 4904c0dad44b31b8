"""HTTP/2 load for the load tests, from two real clients:

- h2load (nghttp2-client): the command line, started in the background like
  wrk (wrk.start_wrk), and its parsed summary (streams succeeded, failed,
  errored, timed out; status classes). h2load never opens a new connection
  for one the server ended: for load across certificate swaps, not across
  GOAWAYs.
- CurlH2Load: curl --http2 --parallel, one process after another for a
  bounded time. curl, as browsers do, takes a GOAWAY as "new streams on a new
  connection" and retries a stream the server refused, so it is the client
  for reloads and upgrades; every transfer's status, HTTP version and error
  are checked."""

import os
import re
import subprocess
import threading
import time

from common import CLIENT_TIMEOUT, require_tool


def h2load_command(port, host, path="/", *, connections, streams, duration_s):
    """h2load over TLS to 127.0.0.1:port with SNI and :authority `host`, for
    `duration_s` seconds (it stops itself and prints its summary)."""
    return [require_tool("h2load"), f"-c{connections}", f"-m{streams}", f"-D{duration_s}",
            "--connect-to", f"127.0.0.1:{port}", f"https://{host}:{port}{path}"]


class H2loadResult:
    def __init__(self, text):
        self.text = text
        m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored, (\d+) timeout", text, re.M)
        if not m:
            raise AssertionError(f"cannot parse h2load output:\n{text}")
        (self.total, self.started, self.done, self.succeeded, self.failed, self.errored,
         self.timeout) = map(int, m.groups())
        m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
        if not m:
            raise AssertionError(f"h2load status codes missing:\n{text}")
        self.status = dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, m.groups())))
        m = re.search(r"^TLS Protocol: .*$", text, re.M)
        self.protocol_line = m.group(0) if m else ""
        m = re.search(r"^Application protocol: (\S+)", text, re.M)
        self.alpn = m.group(1) if m else ""


def assert_clean_h2(testcase, r, min_streams):
    """Every stream h2load finished succeeded with a 2xx, none failed, errored
    or timed out, the connections spoke h2, and at least `min_streams` ran."""
    testcase.assertEqual(r.alpn, "h2", r.text)
    testcase.assertEqual((r.failed, r.errored, r.timeout), (0, 0, 0), r.text)
    testcase.assertEqual(r.status["2xx"], r.succeeded, r.text)
    testcase.assertGreaterEqual(r.succeeded, min_streams, r.text)


class CurlH2Load:
    """GETs https://host:port/path over HTTP/2 with curl --parallel
    (`parallel` streams at a time on one connection), `per_run` transfers a
    process, processes back to back until `duration_s` has passed. Every
    process is stopped by its PID in stop()."""

    def __init__(self, workdir, port, host, path, *, ca, duration_s, parallel=10, per_run=500):
        # -s alone still draws --parallel's progress meter.
        self.cmd = [require_tool("curl"), "--no-progress-meter", "--http2", "--parallel", "--parallel-max",
                    str(parallel), "--max-time", str(int(CLIENT_TIMEOUT)), "--cacert", ca,
                    "--resolve", f"{host}:{port}:127.0.0.1",
                    "-w", "%{http_code} %{http_version} %{num_connects} %{exitcode}\\n",
                    "-K", os.path.join(workdir, f"curl-h2-{id(self)}.conf")]
        with open(self.cmd[-1], "w") as f:
            for _ in range(per_run):
                f.write(f'url = "https://{host}:{port}{path}"\noutput = "/dev/null"\n')
        self.duration_s = duration_s
        self.lines, self.errors, self.runs = [], [], 0
        self._proc = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _loop(self):
        end = time.monotonic() + self.duration_s
        while time.monotonic() < end and not self._stopping:
            self._proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True)
            try:
                out, err = self._proc.communicate(timeout=CLIENT_TIMEOUT * 3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                out, err = self._proc.communicate()
                err += "\n(curl killed: past its time)"
            self.runs += 1
            self.lines += out.splitlines()
            if self._proc.returncode != 0 or err.strip():
                self.errors.append(f"exit {self._proc.returncode}: {err.strip()[:500]}")

    def stop(self, timeout=None):
        """Waits for the last process (at most `timeout`, then kills it)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stopping = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
            self._thread.join()

    def connections(self):
        return sum(int(line.split()[2]) for line in self.lines)

    def assert_clean(self, testcase, min_transfers):
        """Every transfer a 200 over HTTP/2 with curl's exit code 0, no curl
        error, at least `min_transfers` of them."""
        bad = [line for line in self.lines if line.split()[::3] != ["200", "0"]
               or line.split()[1] != "2"]
        testcase.assertEqual(self.errors, [], f"{len(self.errors)} curl runs failed")
        testcase.assertEqual(bad[:5], [], f"{len(bad)} of {len(self.lines)} transfers failed")
        testcase.assertGreaterEqual(len(self.lines), min_transfers)
