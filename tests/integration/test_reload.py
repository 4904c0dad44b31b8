"""SIGHUP reload: listeners added and removed without touching the others, a
reload that cannot open a listener refused as a whole, and routes, upstreams
and sites changed for new connections while established ones keep working.

Listener identity across a reload (daemon/listeners.h): an address in both
configs, port 0 included, is the same listener and keeps its port;
repeated `127.0.0.1:0` entries pair up in order, so appending one opens a
new port and dropping the last one closes the last port."""

import os
import socket
import threading
import unittest

from common import make_tempdir
from pki import Certs
from config import base_config, respond_route, site, upstream_route
from daemon import start_daemon
from origin import start_origin
from clients import SniHTTPSConnection, client_context, http_request, https_request

ANY = "127.0.0.1:0"


class Background:
    """Runs fn in a thread; join() returns its result or raises its exception."""

    def __init__(self, fn):
        self._fn = fn
        self.result = self.error = None
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            self.result = self._fn()
        except BaseException as e:  # reported by join()
            self.error = e

    def join(self, timeout):
        self._t.join(timeout)
        if self._t.is_alive():
            raise AssertionError(f"background request still running after {timeout}s")
        if self.error is not None:
            raise self.error
        return self.result


class KeptConnection:
    """One HTTPS keep-alive connection that must stay the same: after the
    first request http.client may not silently reconnect (auto_open = 0), and
    every answer must come over the very same socket."""

    def __init__(self, test, port, ca, sni="a.test"):
        self.conn = SniHTTPSConnection(sni, port, client_context(ca))
        test.addCleanup(self.conn.close)
        self.sock = None

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        if self.sock is None:
            self.sock = self.conn.sock
            self.conn.auto_open = 0
        elif self.conn.sock is not self.sock:
            raise AssertionError("the keep-alive connection was replaced")
        if r.will_close:
            raise AssertionError(f"the server closes the kept connection after {path}")
        return r.status, body


def connect_refused(port):
    """True if a TCP connect to 127.0.0.1:port is refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class ReloadTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        cls.leaf = cls.certs.leaf("ab", ["a.test", "b.test"])
        cls.o1 = start_origin(cls, "origin-1")
        cls.o2 = start_origin(cls, "origin-2")

    def setUp(self):
        self.o1.reset()
        self.o2.reset()

    def config(self, https=(ANY,), http=(ANY,), body="v1\n", origin=None, workers=2,
               extra_sites=()):
        origin = origin or self.o1
        return base_config(
            os.path.join(self.workdir, "state"), workers=workers,
            certificates={"ab": self.leaf}, default_certificate="ab",
            https=https, http=http,
            sites=[site("a", ["a.test"], [
                upstream_route("/", "u"),
                respond_route("/static", 200, body),
            ], "ab"), *extra_sites],
            upstreams={"u": [origin.address]})

    def start(self, cfg=None, **kw):
        self.workdir = make_tempdir(self)
        return start_daemon(self, self.workdir, cfg or self.config(**kw))

    def get(self, port, path, sni="a.test"):
        r = https_request(port, sni, path, ca=self.certs.ca_cert)
        return r.status, r.body

    # -- listeners --

    def test_added_listener_opens_and_the_others_keep_serving(self):
        d = self.start()
        old, http_port = d.https_port, d.http_port
        kept = KeptConnection(self, old, self.certs.ca_cert)
        self.assertEqual(kept.get("/static"), (200, b"v1\n"))

        lines = d.reload(self.config(https=(ANY, ANY)))
        ports = d.ports("https")
        self.assertEqual(len(ports), 2, d.log())
        self.assertEqual(ports[0], old, "the existing port-0 listener kept its port")
        new = ports[1]
        self.assertIn(f"<6>listening https 127.0.0.1:{new}", lines)
        self.assertFalse([l for l in lines if "closed listener" in l], lines)
        self.assertEqual(d.http_port, http_port)

        self.assertEqual(self.get(new, "/static"), (200, b"v1\n"))
        self.assertEqual(self.get(old, "/static"), (200, b"v1\n"))
        status, body = self.get(new, "/via-new")
        self.assertEqual(status, 200, body)
        self.assertIn(b'"path": "/via-new"', body)
        # The connection accepted before the reload was never touched.
        self.assertEqual(kept.get("/static"), (200, b"v1\n"))
        status, body = kept.get("/via-kept")
        self.assertEqual(status, 200, body)
        self.assertIn(b'"origin": "origin-1"', body)

        # Reloading the same listen lists changes no listener.
        lines = d.reload(self.config(https=(ANY, ANY)))
        self.assertFalse([l for l in lines if "listening" in l or "closed listener" in l], lines)
        self.assertEqual(d.ports("https"), [old, new])
        self.assertEqual(kept.get("/static"), (200, b"v1\n"))

    def test_removed_listener_refuses_new_connections_and_keeps_established_ones(self):
        d = self.start(https=(ANY, ANY))
        stay, gone = d.ports("https")
        kept = KeptConnection(self, gone, self.certs.ca_cert)
        self.assertEqual(kept.get("/static"), (200, b"v1\n"))
        # A request in flight on the removed listener across the reload.
        slow = Background(lambda: self.get(gone, "/slow?delay_ms=1500"))
        self.o1.wait_for_requests(1, timeout=10)

        lines = d.reload(self.config(https=(ANY,)))
        self.assertIn(f"<6>closed listener 127.0.0.1:{gone} (https)", lines)
        self.assertEqual(d.ports("https"), [stay])
        self.assertTrue(connect_refused(gone), f"port {gone} still accepts connections")

        status, body = slow.join(timeout=15)
        self.assertEqual(status, 200, body)
        self.assertIn(b'"path": "/slow?delay_ms=1500"', body)
        for path in ("/static", "/after-close", "/static"):
            status, body = kept.get(path)
            self.assertEqual(status, 200, body)
        self.assertEqual(self.get(stay, "/static"), (200, b"v1\n"))
        # The kept connection ends when its client closes it; the listener
        # stays closed.
        kept.conn.close()
        self.assertTrue(connect_refused(gone))
        d.stop()

    def test_redirect_port_follows_the_first_https_listener(self):
        d = self.start(https=(ANY, ANY))
        first, second = d.ports("https")

        def location():
            r = http_request(d.http_port, "/p?q=1", headers={"Host": "a.test"})
            self.assertEqual(r.status, 308, r)
            return r.headers["Location"]

        self.assertEqual(location(), f"https://a.test:{first}/p?q=1")
        # Naming the port the second port-0 listener got is the same listener:
        # it stays (no new `listening` line), the first one closes.
        lines = d.reload(self.config(https=(f"127.0.0.1:{second}",)))
        self.assertFalse([l for l in lines if "listening" in l], lines)
        self.assertIn(f"<6>closed listener 127.0.0.1:{first} (https)", lines)
        self.assertEqual(location(), f"https://a.test:{second}/p?q=1")
        self.assertEqual(self.get(second, "/static"), (200, b"v1\n"))

    def test_reload_whose_listener_cannot_bind_is_refused_whole(self):
        d = self.start()
        port = d.https_port
        kept = KeptConnection(self, port, self.certs.ca_cert)
        self.assertEqual(kept.get("/static"), (200, b"v1\n"))
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # no SO_REUSEPORT
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        busy = blocker.getsockname()[1]
        fds = open_fds(d.proc.pid)

        # A new port-0 listener opens first, then the busy one fails: the
        # first must be closed again, and the new body must not apply.
        cfg = self.config(https=(ANY, ANY, f"127.0.0.1:{busy}"), body="v2\n")
        lines = d.reload(cfg, expect="refused")
        text = "\n".join(lines)
        self.assertIn("reload refused, the running configuration stays", text)
        self.assertIn(f"127.0.0.1:{busy}", text)
        self.assertIn("Address already in use", text)
        self.assertFalse([l for l in lines if "listening" in l or "closed listener" in l], lines)
        self.assertEqual(open_fds(d.proc.pid), fds, "sockets of the refused reload leaked")
        self.assertEqual(d.ports("https"), [port])
        self.assertEqual(self.get(port, "/static"), (200, b"v1\n"))
        self.assertEqual(kept.get("/static"), (200, b"v1\n"))

        # Once the address is free, the same config reloads.
        blocker.close()
        lines = d.reload(cfg)
        self.assertIn(f"<6>listening https 127.0.0.1:{busy}", lines)
        self.assertEqual(self.get(busy, "/static"), (200, b"v2\n"))
        self.assertEqual(self.get(port, "/static"), (200, b"v2\n"))

    def test_invalid_config_is_refused_and_changes_nothing(self):
        d = self.start()
        port = d.https_port
        lines = d.reload("workers: 2\nlisten: {https: [\"127.0.0.1:0\"]}\nsites: 7\n",
                         expect="refused")
        self.assertIn(d.config_path, "\n".join(lines))
        self.assertEqual(d.ports("https"), [port])
        self.assertEqual(self.get(port, "/static"), (200, b"v1\n"))

    def test_worker_count_change_waits_for_restart(self):
        d = self.start(workers=2)
        lines = d.reload(self.config(workers=1, body="v2\n"))
        self.assertTrue([l for l in lines if "number of workers changes at the next restart" in l],
                        lines)
        self.assertEqual(self.get(d.https_port, "/static"), (200, b"v2\n"))

    def test_storage_change_waits_for_restart(self):
        # storage: is read at start only (fleet mode, issue 17): a reload
        # that adds or changes it says so and applies everything else.
        d = self.start()
        cfg = self.config(body="v2\n")
        cfg["storage"] = {"etcd": {"endpoints": ["http://127.0.0.1:2379"],
                                   "key_file": os.path.join(self.workdir, "fleet.key")}}
        lines = d.reload(cfg)
        self.assertTrue([l for l in lines if "storage changes at the next restart (running "
                         "the state directory)" in l], lines)
        self.assertEqual(self.get(d.https_port, "/static"), (200, b"v2\n"))
        lines = d.reload(self.config(body="v3\n"))
        self.assertFalse([l for l in lines if "storage changes" in l], lines)

    # -- routes, upstreams, sites --

    def test_routes_upstreams_and_sites_apply_to_new_connections(self):
        d = self.start()
        port = d.https_port
        kept = KeptConnection(self, port, self.certs.ca_cert)
        status, body = kept.get("/before")
        self.assertIn(b'"origin": "origin-1"', body)
        slow = Background(lambda: self.get(port, "/slow?delay_ms=1500"))
        self.o1.wait_for_requests(2, timeout=10)

        b_site = site("b", ["b.test"], [respond_route("/", 200, "site b\n")], "ab")
        d.reload(self.config(body="v2\n", origin=self.o2, extra_sites=[b_site]))

        # New connections: the new upstream, route body and site.
        status, body = self.get(port, "/after")
        self.assertEqual(status, 200, body)
        self.assertIn(b'"origin": "origin-2"', body)
        self.assertEqual(self.get(port, "/static"), (200, b"v2\n"))
        self.assertEqual(self.get(port, "/", sni="b.test"), (200, b"site b\n"))

        # The request in flight finished under the rules it started with.
        status, body = slow.join(timeout=15)
        self.assertEqual(status, 200, body)
        self.assertIn(b'"origin": "origin-1"', body)
        # The established connection keeps working, under the generation it
        # was accepted with (proxy/generation.h) until it closes.
        status, body = kept.get("/still")
        self.assertEqual(status, 200, body)
        self.assertIn(b'"origin": "origin-1"', body)
        self.assertEqual(kept.get("/static"), (200, b"v1\n"))


if __name__ == "__main__":
    unittest.main()
