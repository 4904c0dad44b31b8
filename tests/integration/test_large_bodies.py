"""Large bodies through tlsedge over TLS, with flat memory: a 100 MiB upload
(Content-Length, and chunked) that the origin hashes as it arrives, and a
100 MiB download hashed by the client, once read at full speed and once by a
client that reads slowly for a while. The daemon's peak RSS (VmHWM in
/proc/PID/status) may grow by less than MAX_GROWTH over the transfer.

Why MAX_GROWTH is 40 MiB: the proxy streams. Per direction it holds at most
its write queue's high watermark (net::Stream::kHighWatermark, 1 MiB) plus
the one read (64 KiB of ciphertext or plaintext, TLS records around it) that
pushed it over, before it stops reading the other side; request and response
sides together stay under a few MiB. The rest is allocator slack: freed
pieces kept per worker thread arena, and the pages of a 1 MiB std::string
grown by appends. 40 MiB leaves room for that and is still well under the
body: a proxy that buffered a whole 100 MiB body, or half of it, fails.

The slow client reads 16 KiB every 10 ms (1.6 MB/s) for SLOW_SECONDS while
the origin could send the whole body in a fraction of that: without
backpressure from the client's TCP window through the proxy to the origin,
the proxy would read the body into memory in that time. The slow origin
(?slow_read_s) does the same to an upload. (Checked by hand: with the
response side's stopReading removed the slow download peaks at 103 MiB,
with the request side's removed the slow upload at 96 MiB; an origin
reading at full speed hides the latter.)

Sanitizer builds move the same 100 MiB in about the same time (the TLS
and hashing work is in uninstrumented assembly). Under ASan the daemon runs
with its quarantine of freed memory capped at 16 MiB (ASAN_OPTIONS): the
default 256 MiB would keep every freed buffer resident and be measured as
growth; with the cap ASan builds grow about 20 MiB here, release and TSan
builds 0-4 MiB. TLSEDGE_TEST_BODY_MIB sets another size (the bound is then
at most 40% of it)."""

import hashlib
import json
import os
import time
import unittest

from common import make_tempdir, quarantine_capped_env, vm_status
from pki import Certs
from config import base_config, site, upstream_route
from daemon import start_daemon
from origin import pattern_pieces, pattern_sha256, start_origin
from clients import SniHTTPSConnection, client_context

MIB = 1 << 20
BODY_MIB = int(os.environ.get("TLSEDGE_TEST_BODY_MIB", "100"))
SIZE = BODY_MIB * MIB
MAX_GROWTH = min(40 * MIB, SIZE * 2 // 5)
SLOW_SECONDS = 3.0
SLOW_PIECE = 16 << 10
SLOW_INTERVAL = 0.01
TRANSFER_TIMEOUT = 120.0  # the client socket timeout for one read or write


class LargeBodyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("big", ["big.test"])
        cls.origin = start_origin(cls, "big-origin")
        cls.expected = {}  # seed -> sha256 hex of SIZE pattern bytes

    def setUp(self):
        # A daemon per test: VmHWM only rises, so each test measures its own.
        workdir = make_tempdir(self)
        cfg = base_config(
            os.path.join(workdir, "state"), workers=2,
            certificates={"big": self.leaf}, default_certificate="big",
            sites=[site("big", ["big.test"], [upstream_route("/", "o")], "big")],
            upstreams={"o": [self.origin.address]})
        self.daemon = start_daemon(self, workdir, cfg, env=quarantine_capped_env())
        # Warm up both directions so what one connection costs anyway (TLS
        # state, read buffers, a pooled origin connection) is in the baseline.
        self.upload(1 * MIB, seed=1, chunked=False)
        self.download(1 * MIB, seed=1)
        self.hwm_before = self.hwm()

    def hwm(self):
        return vm_status(self.daemon.proc.pid, "VmHWM")

    def rss(self):
        return vm_status(self.daemon.proc.pid, "VmRSS")

    def sha(self, n, seed):
        if (n, seed) not in self.expected:
            self.expected[(n, seed)] = pattern_sha256(n, seed)
        return self.expected[(n, seed)]

    def connect(self):
        conn = SniHTTPSConnection("big.test", self.daemon.https_port,
                                  client_context(self.certs.ca_cert), timeout=TRANSFER_TIMEOUT)
        self.addCleanup(conn.close)
        return conn

    def upload(self, n, seed, chunked, origin_slow_seconds=0):
        conn = self.connect()
        conn.putrequest("POST", f"/sink?n={n}&slow_read_s={origin_slow_seconds}")
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(n))
        conn.endheaders()
        for piece in pattern_pieces(n, seed):
            conn.send(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        body = r.read()
        self.assertEqual(r.status, 200, body[:300])
        echo = json.loads(body)
        self.assertEqual(echo["body_framing"], "chunked" if chunked else "length")
        self.assertEqual(echo["body_len"], n)
        self.assertEqual(echo["body_sha256"], self.sha(n, seed))
        conn.close()

    def download(self, n, seed, slow_seconds=0.0):
        """GETs /bytes and checks length and sha256. For `slow_seconds` the
        client reads SLOW_PIECE every SLOW_INTERVAL; returns the highest
        VmRSS seen meanwhile."""
        conn = self.connect()
        conn.request("GET", f"/bytes?n={n}&seed={seed}")
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Length"), str(n))
        h = hashlib.sha256()
        got = 0
        peak_rss = 0
        slow_until = time.monotonic() + slow_seconds
        while time.monotonic() < slow_until:
            piece = r.read(SLOW_PIECE)
            if not piece:
                break
            h.update(piece)
            got += len(piece)
            peak_rss = max(peak_rss, self.rss())
            time.sleep(SLOW_INTERVAL)
        while True:
            piece = r.read(1 << 16)
            if not piece:
                break
            h.update(piece)
            got += len(piece)
        self.assertEqual(got, n)
        self.assertEqual(h.hexdigest(), self.sha(n, seed))
        conn.close()
        return peak_rss

    def assert_flat(self, what):
        growth = self.hwm() - self.hwm_before
        print(f"\n{what}: {BODY_MIB} MiB, peak RSS {self.hwm_before / MIB:.1f} -> "
              f"{self.hwm() / MIB:.1f} MiB (+{growth / MIB:.1f}, bound {MAX_GROWTH / MIB:.0f})")
        self.assertLess(growth, MAX_GROWTH,
                        f"{what}: peak RSS grew {growth / MIB:.1f} MiB for a {BODY_MIB} MiB body")
        self.assertTrue(self.daemon.running(), self.daemon.log())

    def test_upload_content_length(self):
        self.upload(SIZE, seed=101, chunked=False)
        self.assert_flat("upload, Content-Length")

    def test_upload_chunked(self):
        self.upload(SIZE, seed=102, chunked=True)
        self.assert_flat("upload, chunked")

    def test_upload_slow_origin(self):
        t0 = time.monotonic()
        self.upload(SIZE, seed=105, chunked=False, origin_slow_seconds=SLOW_SECONDS)
        self.assertGreater(time.monotonic() - t0, SLOW_SECONDS)
        self.assert_flat("upload, slow origin")

    def test_download(self):
        self.download(SIZE, seed=103)
        self.assert_flat("download")

    def test_download_slow_reader(self):
        t0 = time.monotonic()
        peak_rss = self.download(SIZE, seed=104, slow_seconds=SLOW_SECONDS)
        self.assertGreater(time.monotonic() - t0, SLOW_SECONDS)
        print(f"\nslow reader: highest VmRSS while slow {peak_rss / MIB:.1f} MiB")
        self.assertLess(peak_rss - self.hwm_before, MAX_GROWTH)
        self.assert_flat("download, slow reader")


if __name__ == "__main__":
    unittest.main()
