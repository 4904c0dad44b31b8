"""ACME operations against real Pebble: the pre-flight check (a host that
resolves to an address where nothing listens, one that does not resolve,
one answered by another server: no order is placed at Pebble, the status
names the host and why, the backoff survives a restart; a good site beside
them still gets its certificate); `tlsedge acme revoke SITE` (Pebble's
management API reports the certificate revoked, new handshakes get the new
serial); and a kill -9 while an order waits on its DNS-01 hook (the order
URL was saved: the restarted daemon resumes that order, Pebble sees one
order, one store entry).

Names resolve for the daemon's pre-flight through `acme.preflight_resolve`
(the system resolver knows no *.test names); Pebble resolves them through
pebble-challtestsrv."""

import http.server
import json
import os
import re
import signal
import ssl
import stat
import threading
import time
import unittest

from acme_cli import AcmeCli
from clients import peer_serial, tls_handshake
from common import add_cleanup, closed_port, run, tlsedge_bin
from config import base_config, respond_route, site
from daemon import start_daemon
from pebble import Pebble

NO_STRESS = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
ISSUE_TIMEOUT = 30.0


def issued(site_name, hosts):
    return (rf"acme: certificate `acme-{site_name}` for site `{site_name}` "
            rf"\({re.escape(', '.join(hosts))}\) issued")


class AcmeOpsTest(AcmeCli, unittest.TestCase):

    def setUp(self):
        self.make_acme_state()

    def config(self, pebble, sites, resolve, **acme):
        cfg = base_config(
            self.state, http=(f"127.0.0.1:{self.http_port}",),
            certificates={"fallback": self.fallback}, default_certificate="fallback",
            sites=[site(name, hosts, [respond_route("/", 200, name + "\n")],
                        tls={"acme": True}) for name, hosts in sites])
        cfg["acme"] = {"directory": pebble.directory, "trusted_roots": [pebble.ca_cert],
                       "preflight_resolve": resolve, **acme}
        return cfg


    def pebble_orders(self, pebble):
        return len(re.findall(r"Added order", pebble.log()))

    def served_serial(self, d, root_file, host, not_serial=None, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                serial = peer_serial(tls_handshake(d.https_port, host, ca=root_file)[3])
                if serial != not_serial:
                    return serial
            except ssl.SSLError:
                pass
            if time.monotonic() > deadline:
                self.fail(f"{host}: no new certificate from Pebble served\n{d.log()}")
            time.sleep(0.05)

    def other_server(self, address, port):
        """Another web server on the host's address and the edge's port: 404."""

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = http.server.ThreadingHTTPServer((address, port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

        def stop():
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
        add_cleanup(self, stop)

    def test_preflight_places_no_order_for_hosts_not_pointing_here(self):
        pebble = Pebble(self, self.tmp, self.http_port, env=NO_STRESS)
        self.other_server("127.0.0.3", self.http_port)
        sites = [("good", ["good.test"]),
                 ("refused", ["ok.refused.test", "www.refused.test"]),
                 ("unknown", ["nowhere.invalid"]),
                 ("elsewhere", ["elsewhere.test"])]
        resolve = {"good.test": "127.0.0.1", "ok.refused.test": "127.0.0.1",
                   "www.refused.test": "127.0.0.2", "elsewhere.test": "127.0.0.3"}
        cfg = self.config(pebble, sites, resolve)
        d = start_daemon(self, self.tmp, cfg)
        self.wait_lines(d, issued("good", ["good.test"]))
        self.wait_lines(d, r"pre-flight: .*no order placed; retrying in 60 s", count=3)
        port = self.http_port
        expected = {
            "refused": rf"host www\.refused\.test \(127\.0\.0\.2\) does not reach this edge: "
                       rf"connect to 127\.0\.0\.2:{port}: .*connection refused",
            "unknown": r"host nowhere\.invalid does not resolve: ",
            "elsewhere": rf"host elsewhere\.test \(127\.0\.0\.3\) does not reach this edge: "
                         rf"port {port} answered HTTP 404 to the probe: another server",
        }
        status = self.statuses()
        for name, pattern in expected.items():
            self.assertRegex(status[name]["last_error"], pattern)
            self.assertRegex(status[name]["last_error"], r"no order placed$")
            self.assertEqual(status[name]["consecutive_failures"], 1, status[name])
        self.assertEqual(status["good"]["consecutive_failures"], 0, status["good"])
        # Pebble saw the good site's order only.
        self.assertEqual(self.pebble_orders(pebble), 1, pebble.log())
        self.assertEqual(d.count_lines(r"acme: ordering certificate"), 1, d.log())
        self.assertEqual(d.count_lines(r"pre-flight passed"), 1, d.log())

        # A restart keeps the failures and the backoff: no new pre-flight
        # (and no order) before the retry time; the status still says why.
        d.stop()
        d2 = start_daemon(self, self.tmp, cfg, name="tlsedge-again")
        self.wait_lines(d2, r"failure\(s\) before the restart: no order before", count=3,
                      timeout=10)
        status2 = self.statuses()
        for name in expected:
            self.assertEqual(status2[name]["consecutive_failures"], 1, status2[name])
            self.assertEqual(status2[name]["last_error"], status[name]["last_error"])
            self.assertEqual(status2[name]["next_renewal"], status[name]["next_renewal"])
        time.sleep(1.0)
        self.assertEqual(d2.count_lines(r"pre-flight|acme: ordering"), 0, d2.log())
        self.assertEqual(self.pebble_orders(pebble), 1, pebble.log())
        saved = os.path.join(self.state, "acme", "sites", "refused.json")
        self.assertEqual(os.stat(saved).st_mode & 0o777, 0o600)

    def test_revoke_orders_a_new_certificate(self):
        pebble = Pebble(self, self.tmp, self.http_port, env=NO_STRESS)
        hosts = ["shop.test", "www.shop.test"]
        cfg = self.config(pebble, [("shop", hosts)], {h: "127.0.0.1" for h in hosts})
        d = start_daemon(self, self.tmp, cfg)
        self.wait_lines(d, issued("shop", hosts))
        root_file = os.path.join(self.tmp, "pebble-root.pem")
        with open(root_file, "w") as f:
            f.write(pebble.root_pem())
        old = self.served_serial(d, root_file, "shop.test")

        def cli(*args, expect=0):
            res = run([tlsedge_bin(), "acme", *args, "--socket", self.socket], timeout=30)
            self.assertEqual(res.returncode, expect, res.stdout + res.stderr)
            return res.stdout + res.stderr

        self.assertIn("must be 0..10 except 7",
                      cli("revoke", "shop", "--reason", "bored", expect=2))
        self.assertIn("no site `nope`", cli("revoke", "nope", expect=1))
        out = cli("revoke", "shop", "--reason", "keyCompromise")
        self.assertIn("the revoked one serves until the new one arrives", out)
        self.wait_lines(d, r"acme: certificate `acme-shop` of site `shop` revoked")
        self.wait_lines(d, issued("shop", hosts), count=2)
        new = self.served_serial(d, root_file, "shop.test", not_serial=old)
        self.assertNotEqual(new, old)
        self.assertEqual(self.served_serial(d, root_file, "www.shop.test", not_serial=old), new)
        # Pebble's management API: the old serial revoked (reason 1), the new valid.
        self.assertEqual(self.cert_status(pebble, old), ("Revoked", 1))
        self.assertEqual(self.cert_status(pebble, new)[0], "Valid")
        self.assertEqual(self.pebble_orders(pebble), 2, pebble.log())

    def cert_status(self, pebble, serial):
        body = json.loads(pebble._get(f"/cert-status-by-serial/{serial:x}"))
        return body["Status"], body.get("Reason")

    def test_kill_during_an_order_resumes_it(self):
        pebble = Pebble(self, self.tmp, closed_port(), env=NO_STRESS)
        hold = os.path.join(self.tmp, "hold")
        pid_file = os.path.join(self.tmp, "hook.pid")
        hook = os.path.join(self.tmp, "dns-hook.py")
        with open(hook, "w") as f:
            f.write(f"""#!/usr/bin/env python3
import json, os, sys, time, urllib.request
action, name, value = sys.argv[1:4]
if action == "set" and os.path.exists({hold!r}):
    with open({pid_file!r}, "w") as p:
        p.write(str(os.getpid()))
    for _ in range(600):  # held while the hold file exists (at most 60 s)
        if not os.path.exists({hold!r}):
            break
        time.sleep(0.1)
body = {{"host": name + "."}}
if action == "set":
    body["value"] = value
req = urllib.request.Request({pebble.challtestsrv_url!r} + "/" + action + "-txt",
                             data=json.dumps(body).encode(), method="POST")
urllib.request.urlopen(req, timeout=5).read()
""")
        os.chmod(hook, stat.S_IRWXU)
        open(hold, "w").close()

        def release():
            if os.path.exists(hold):
                os.unlink(hold)
        add_cleanup(self, release)
        hosts = ["shop.test", "www.shop.test"]
        cfg = self.config(pebble, [("shop", hosts)], {}, challenge="dns-01", dns_hook=hook)
        d = start_daemon(self, self.tmp, cfg)
        deadline = time.monotonic() + ISSUE_TIMEOUT
        while not os.path.exists(pid_file):
            self.assertLess(time.monotonic(), deadline, f"the hook never ran\n{d.log()}")
            time.sleep(0.05)
        with open(os.path.join(self.state, "acme", "sites", "shop.json")) as f:
            order_url = json.load(f)["order"]
        self.assertRegex(order_url, r"^https://127\.0\.0\.1:\d+/")
        os.kill(d.proc.pid, signal.SIGKILL)
        self.assertEqual(d.wait_exit(), -signal.SIGKILL)
        time.sleep(0.2)  # the pid file is complete once the hook waits
        with open(pid_file) as f:
            os.kill(int(f.read()), signal.SIGKILL)  # the orphaned hook
        release()
        self.assertEqual(self.pebble_orders(pebble), 1)

        d2 = start_daemon(self, self.tmp, cfg, name="tlsedge-again")
        self.wait_lines(d2, issued("shop", hosts))
        self.assertEqual(d2.count_lines(rf"acme: resuming order {re.escape(order_url)} \(pending\)"),
                         1, d2.log())
        self.assertEqual(self.pebble_orders(pebble), 1, pebble.log())
        self.assertEqual(os.listdir(os.path.join(self.state, "certs")), ["acme-shop"])
        # Saved right after the "issued" line: the order is over.
        deadline = time.monotonic() + 5
        while True:
            with open(os.path.join(self.state, "acme", "sites", "shop.json")) as f:
                saved = json.load(f)
            if saved["order"] == "" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual((saved["order"], saved["failures"]), ("", 0), saved)


if __name__ == "__main__":
    unittest.main()
