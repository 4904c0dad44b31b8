"""Large bodies over HTTP/2, with flat memory (issue 18): 100 MiB uploaded on
a stream (with content-length, and without: the origin then gets it
chunked), hashed by the origin as it arrives, and 100 MiB downloaded and
hashed by the client. The daemon's peak RSS (VmHWM) may grow by less than
MAX_GROWTH over each transfer, as test_large_bodies.py asks of HTTP/1.1 (its
docstring says why 40 MiB): a stream's request body is given back to the
client's window only as the origin takes it, and a stream holds at most
64 KiB of response before its origin stops being read.

The client is curl --http2 (Python's h2 moves about 2 MB/s, curl fills the
link) uploading from a file and downloading into a pipe Python hashes."""

import hashlib
import json
import os
import subprocess
import unittest

from common import make_tempdir, quarantine_capped_env, require_tool, vm_status
from pki import Certs
from config import base_config, site, upstream_route
from daemon import start_daemon
from origin import pattern_pieces, pattern_sha256, start_origin

MIB = 1 << 20
BODY_MIB = int(os.environ.get("TLSEDGE_TEST_BODY_MIB", "100"))
SIZE = BODY_MIB * MIB
MAX_GROWTH = min(40 * MIB, SIZE * 2 // 5)
TRANSFER_TIMEOUT = 120.0


class Http2BodiesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("big", ["big.test"])
        cls.origin = start_origin(cls, "big-origin")

    def setUp(self):
        # A daemon per test: VmHWM only rises, so each test measures its own.
        workdir = self.workdir = make_tempdir(self)
        cfg = base_config(
            os.path.join(workdir, "state"), workers=1, certificates={"big": self.leaf},
            sites=[site("big", ["big.test"], [upstream_route("/", "o")], "big")],
            upstreams={"o": [self.origin.address]})
        self.daemon = start_daemon(self, workdir, cfg, env=quarantine_capped_env())
        # Warm up both directions (TLS state, read buffers, a pooled origin
        # connection) so the baseline holds what one connection costs anyway.
        self.upload(1 * MIB, seed=1, length=True)
        self.download(1 * MIB, seed=1)
        self.hwm_before = self.hwm()

    def hwm(self):
        return vm_status(self.daemon.proc.pid, "VmHWM")

    def curl(self, path, args, stdin=subprocess.DEVNULL):
        """curl --http2 for https://big.test/PATH, stdin and stdout pipes."""
        port = self.daemon.https_port
        return subprocess.Popen(
            [require_tool("curl"), "-sS", "--http2", "--fail", "--max-time", str(TRANSFER_TIMEOUT),
             "--cacert", self.certs.ca_cert, "--resolve", f"big.test:{port}:127.0.0.1",
             "-w", "%{stderr}%{http_version}", *args, f"https://big.test:{port}{path}"],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(self, proc):
        # Popen's __exit__ closes the pipes and waits; kill first if a
        # failed assertion left curl running.
        with proc:
            if proc.poll() is None:
                proc.kill()

    def check(self, proc):
        proc.wait(timeout=TRANSFER_TIMEOUT + 10)
        err = proc.stderr.read()
        self.assertEqual(proc.returncode, 0, err)
        self.assertTrue(err.endswith(b"2"), f"not HTTP/2: {err!r}")

    def body_file(self, n, seed):
        """The body, in a file curl uploads."""
        path = os.path.join(self.workdir, f"body-{n}-{seed}")
        with open(path, "wb") as f:
            for piece in pattern_pieces(n, seed):
                f.write(piece)
        self.addCleanup(os.remove, path)
        return path

    def upload(self, n, seed, length):
        # Uploading a file curl sends its size as content-length; reading
        # stdin (-T -) it sends none, and the daemon frames the origin
        # request chunked. (Not `-T -` with a content-length header of our
        # own: curl 7.88 then often reports "Empty reply from server" for a
        # response the daemon sent, logged 200 with the whole body read.)
        path = self.body_file(n, seed)
        with open(path, "rb") as body:
            proc = self.curl(f"/sink?n={n}", ["-X", "POST", "-T", path if length else "-"],
                             stdin=subprocess.DEVNULL if length else body)
        self.addCleanup(self.finish, proc)
        out = proc.stdout.read()
        self.check(proc)
        echo = json.loads(out)
        self.assertEqual(echo["body_framing"], "length" if length else "chunked")
        self.assertEqual(echo["body_len"], n)
        self.assertEqual(echo["body_sha256"], pattern_sha256(n, seed))

    def download(self, n, seed):
        proc = self.curl(f"/bytes?n={n}&seed={seed}", [])
        self.addCleanup(self.finish, proc)
        h, got = hashlib.sha256(), 0
        while piece := proc.stdout.read(1 << 16):
            h.update(piece)
            got += len(piece)
        self.check(proc)
        self.assertEqual(got, n)
        self.assertEqual(h.hexdigest(), pattern_sha256(n, seed))

    def assert_flat(self):
        growth = self.hwm() - self.hwm_before
        self.assertLess(growth, MAX_GROWTH, f"peak RSS grew {growth / MIB:.1f} MiB")

    def test_upload_with_content_length(self):
        self.upload(SIZE, seed=2, length=True)
        self.assert_flat()

    def test_upload_without_content_length_reaches_the_origin_chunked(self):
        self.upload(SIZE, seed=3, length=False)
        self.assert_flat()

    def test_download(self):
        self.download(SIZE, seed=4)
        self.assert_flat()


if __name__ == "__main__":
    unittest.main()
