"""Certificate hot swap: a site's certificate files are replaced atomically
(temp file + rename, as an operator or an ACME client does) while wrk keeps
50 keep-alive connections busy. The daemon notices through its directory
watch (no SIGHUP) and swaps that one certificate.

- wrk: zero socket errors, zero unexpected responses; h2load over HTTP/2
  beside it for the first H2LOAD_S seconds of swaps: zero failed, errored or
  timed-out streams;
- after every swap a new TLS handshake (Python ssl, not openssl s_client:
  200 process launches would cost more than the swaps) sees the new serial
  within 1 s; one swap in 25 is also checked with `openssl s_client`;
- a client holding a keep-alive connection across the swaps keeps getting
  answers on the same connection;
- bad new files (garbage, a key that does not match) are refused with a
  logged reason naming the file; the previous serial keeps serving.

The swaps cycle through LEAVES pre-issued certificates (issuing 200 would
take longer than the test), so consecutive swaps always change the serial.
Under sanitizers the swap count is scaled down (SANITIZER_SWAPS)."""

import os
import re
import signal
import time
import unittest

from clients import (SniHTTPSConnection, client_context, peer_serial, s_client, s_client_leaf,
                     tls_handshake)
from common import make_tempdir, require_tool, sanitizer
from config import base_config, respond_route, site
from scrape import scrape, value
from daemon import start_daemon
from pki import Certs
from h2_load import H2loadResult, assert_clean_h2, h2load_command
from wrk import WrkResult, assert_clean, start_wrk, wrk_command, write_check_script

SWAPS = 200
SANITIZER_SWAPS = 30
LEAVES = 6
# New handshakes see a swap within 1 s; sanitized workers under wrk get 3.
VISIBLE_WITHIN_S = 3.0 if sanitizer() else 1.0
WRK_CONNECTIONS = 50
WRK_MAX_S = 60
H2LOAD_S = 8
MIN_REQUESTS = 200 if sanitizer() else 2000


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write_temp(path, data):
    """A durable temp file beside `path`; returns its name."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def _replace(path, data):
    """Writes a temp file in the same directory, then renames it over `path`."""
    os.replace(_write_temp(path, data), path)


SWAPS_METRIC = "tlsedge_certificate_swaps_total"


class HotSwapTest(unittest.TestCase):

    def setUp(self):
        require_tool("wrk")
        self.tmp = make_tempdir(self)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        self.leaves = [self.certs.leaf(f"swap{i}", ["swap.test"]) for i in range(LEAVES)]
        self.live = os.path.join(self.tmp, "live", "swap")
        os.makedirs(self.live)
        self.cert = os.path.join(self.live, "fullchain.pem")
        self.key = os.path.join(self.live, "privkey.pem")
        self._install(self.leaves[0])

    def _install(self, leaf):
        # Both files durable first, then two renames back to back, as a
        # deploy tool does: a slow fsync between them must not leave the
        # new chain with the old key for longer than the watcher's debounce.
        cert_tmp = _write_temp(self.cert, _read(leaf.cert))
        key_tmp = _write_temp(self.key, _read(leaf.key))
        os.replace(cert_tmp, self.cert)
        os.replace(key_tmp, self.key)

    def _serial(self, port):
        return peer_serial(tls_handshake(port, "swap.test", ca=self.certs.ca_cert)[3])

    def _wait_serial(self, port, serial, timeout):
        """Polls new handshakes (bounded) until one shows `serial`; returns
        the seconds it took, or fails."""
        start = time.monotonic()
        seen = None
        while time.monotonic() - start < timeout:
            seen = self._serial(port)
            if seen == serial:
                return time.monotonic() - start
            time.sleep(0.01)
        self.fail(f"serial {serial:x} not served after {timeout}s (still {seen:x})")

    def _wait_line(self, d, pattern, count, timeout=5):
        deadline = time.monotonic() + timeout
        while d.count_lines(pattern) < count:
            if time.monotonic() > deadline:
                self.fail(f"no log line {pattern!r} after {timeout}s\n{d.log()}")
            time.sleep(0.02)

    def test_swaps_under_wrk(self):
        swaps = SANITIZER_SWAPS if sanitizer() else SWAPS
        leaf0 = self.leaves[0]
        cfg = base_config(
            os.path.join(self.tmp, "state"), workers=2,
            certificates={"swap": type(leaf0)("swap", ["swap.test"], self.cert, self.key,
                                              leaf0.serial, leaf0.subject_cn)},
            default_certificate="swap",
            sites=[site("swap", ["swap.test"], [respond_route("/", 200, "swap ok\n")], "swap")])
        d = start_daemon(self, self.tmp, cfg)
        port = d.https_port
        self.assertEqual(self._serial(port), leaf0.serial)

        script = write_check_script(os.path.join(self.tmp, "check.lua"), 200, "swap ok")
        cmd = wrk_command(f"https://127.0.0.1:{port}/", script, threads=1,
                          connections=WRK_CONNECTIONS, duration=f"{WRK_MAX_S}s",
                          host="swap.test")
        wrk, out_path = start_wrk(cmd, self.tmp)
        self.addCleanup(lambda: wrk.poll() is None and wrk.kill())
        h2load, h2_out = start_wrk(h2load_command(port, "swap.test", connections=8, streams=10,
                                                  duration_s=H2LOAD_S), self.tmp)
        self.addCleanup(lambda: h2load.poll() is None and h2load.kill())

        held = SniHTTPSConnection("swap.test", port, client_context(self.certs.ca_cert))
        self.addCleanup(held.close)
        held.request("GET", "/")
        self.assertEqual(held.getresponse().read(), b"swap ok\n")
        held_sock = held.sock

        time.sleep(0.5)  # wrk's connections are up before the first swap
        start = time.monotonic()
        latencies = []
        swaps_under_h2load = 0
        for i in range(1, swaps + 1):
            leaf = self.leaves[i % LEAVES]
            self._install(leaf)
            latencies.append(self._wait_serial(port, leaf.serial, VISIBLE_WITHIN_S))
            if h2load.poll() is None:
                swaps_under_h2load = i
            if i % 25 == 0:
                serial, _ = s_client_leaf(s_client(port, "swap.test", ca=self.certs.ca_cert))
                self.assertEqual(serial, leaf.serial)
                held.request("GET", "/")
                resp = held.getresponse()
                self.assertEqual((resp.status, resp.read()), (200, b"swap ok\n"))
                self.assertIs(held.sock, held_sock)  # the same connection throughout
            self.assertLess(time.monotonic() - start, WRK_MAX_S - 5, "swaps too slow for wrk")
        swap_time = time.monotonic() - start
        self._wait_line(d, r"^<6>certificate swap swapped \(serial ", swaps)

        wrk.send_signal(signal.SIGINT)  # wrk stops and prints its summary
        wrk.wait(timeout=30)
        with open(out_path, encoding="utf-8", errors="replace") as f:
            result = WrkResult(f.read())
        latencies.sort()
        print(f"\nhot swap: {swaps} swaps in {swap_time:.1f}s, visible after "
              f"median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms (debounce included); "
              f"wrk {result.requests} requests ({result.requests_per_sec:.0f}/s)")
        assert_clean(self, result, MIN_REQUESTS)
        h2load.wait(timeout=H2LOAD_S + 30)
        with open(h2_out) as f:
            assert_clean_h2(self, H2loadResult(f.read()), min_streams=MIN_REQUESTS)
        self.assertGreaterEqual(swaps_under_h2load, min(swaps, 10), "h2load did not span swaps")
        self.assertEqual(d.count_lines(r"^<3>"), 0, d.log())

        # Bad material: refused, logged with the file, the last good serial stays.
        good = self.leaves[swaps % LEAVES]
        _replace(self.cert, b"this is not a certificate\n")
        self._wait_line(d, r"^<3>certificate swap: new files refused.*" + re.escape(self.cert), 1)
        self.assertEqual(self._serial(port), good.serial)

        other = self.leaves[(swaps + 1) % LEAVES]
        _replace(self.cert, _read(other.cert))  # with the previous key: mismatch
        self._wait_line(d, r"private key does not match", 1)
        self.assertEqual(self._serial(port), good.serial)
        self.assertEqual(d.count_lines(r"^<3>certificate swap: new files refused"), 2, d.log())
        # ... and counted, next to every swap before them.
        samples = scrape(d.metrics_address)
        self.assertEqual(value(samples, SWAPS_METRIC, result="refused"), 2)
        self.assertGreaterEqual(value(samples, SWAPS_METRIC, result="swapped"), swaps)

        # And a good pair afterwards is taken again.
        _replace(self.key, _read(other.key))
        self._wait_serial(port, other.serial, VISIBLE_WITHIN_S + 1)
        held.request("GET", "/")
        self.assertEqual(held.getresponse().read(), b"swap ok\n")
        self.assertTrue(d.running(), d.log())


if __name__ == "__main__":
    unittest.main()
