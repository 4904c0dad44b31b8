"""ACME against real Pebble: a site of two hosts with `tls: { acme: true }`
gets a certificate via HTTP-01, answered inline by tlsedge's HTTP listener,
and new handshakes for both hosts are served a chain that verifies against
Pebble's issuing root. The same via TLS-ALPN-01 (Pebble's tlsPort is
tlsedge's HTTPS listener, which serves the challenge certificate inline to
`acme-tls/1` handshakes), and a wildcard site via DNS-01 (a hook script
calling pebble-challtestsrv's /set-txt and /clear-txt). Also under Pebble's default stress (5 % badNonce,
random validation delays, authorization reuse), with 50 % badNonce (the
nonce retry is seen in the log), and with the CA unreachable at start (the
daemon starts and serves; the order is retried later)."""

import json
import os
import re
import socket
import ssl
import stat
import time
import unittest

from clients import http_request, https_request, peer_serial, s_client, tls_handshake
from common import closed_port, dead_port, make_tempdir, run, tlsedge_bin
from config import base_config, respond_route, site
from daemon import start_daemon
from pebble import Pebble
import pki

HOSTS = ["shop.test", "www.shop.test"]
ISSUED = r"acme: certificate `acme-shop` for site `shop` \(shop.test, www.shop.test\) issued"
ISSUE_TIMEOUT = 40.0  # default stress: up to 5 s of validation delay per authorization


class AcmeTest(unittest.TestCase):

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.state = os.path.join(self.tmp, "state")
        self.certs = certs = pki.Certs(os.path.join(self.tmp, "pki"))
        self.fallback = certs.leaf("fallback", ["fallback.test"])
        self.http_port = closed_port()

    def config(self, directory, trusted_roots, hosts=HOSTS, https_port=None, **acme):
        cfg = base_config(
            self.state, http=(f"127.0.0.1:{self.http_port}",),
            https=(f"127.0.0.1:{https_port or 0}",),
            certificates={"fallback": self.fallback}, default_certificate="fallback",
            sites=[site("shop", hosts, [respond_route("/", 200, "shop\n")],
                        tls={"acme": True})])
        cfg["access_log"] = {"path": os.path.join(self.tmp, "access.log")}
        cfg["acme"] = {"directory": directory, "email": "ops@shop.test",
                       "trusted_roots": list(trusted_roots),
                       # the pre-flight's resolver: the system's knows no *.test
                       "preflight_resolve": {h: "127.0.0.1" for h in hosts
                                             if not h.startswith("*.")},
                       **acme}
        return cfg

    def write_root(self, pebble):
        root_file = os.path.join(self.tmp, "pebble-root.pem")
        with open(root_file, "w") as f:
            f.write(pebble.root_pem())
        return root_file

    def wait_issued(self, d, timeout=ISSUE_TIMEOUT, pattern=ISSUED, count=1):
        deadline = time.monotonic() + timeout
        while d.count_lines(pattern) < count:
            if time.monotonic() > deadline:
                self.fail(f"no certificate after {timeout}s\nlog:\n{d.log()}")
            time.sleep(0.05)

    def wait_served(self, d, root_file, sni, timeout=5.0):
        """Polls handshakes until `sni` gets a chain verifying against root_file."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return tls_handshake(d.https_port, sni, ca=root_file, check_hostname=True)
            except ssl.SSLError as e:
                if time.monotonic() > deadline:
                    self.fail(f"{sni}: not served a certificate from Pebble's root after "
                              f"{timeout}s ({e})\nlog:\n{d.log()}")
                time.sleep(0.05)

    def issue_and_check(self, env, args=()):
        pebble = Pebble(self, self.tmp, self.http_port, env=env)
        started = time.monotonic()
        d = start_daemon(self, self.tmp, self.config(pebble.directory, [pebble.ca_cert]),
                         args=args)
        self.wait_issued(d)
        root_file = self.write_root(pebble)
        serials = set()
        for host in HOSTS:
            cert = self.wait_served(d, root_file, host)[3]
            serials.add(peer_serial(cert))
        elapsed = time.monotonic() - started
        self.assertEqual(len(serials), 1, "one certificate covers both hosts")
        # openssl verifies the served chain against the issuing root too.
        res = s_client(d.https_port, "www.shop.test", ca=root_file)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("Verify return code: 0 (ok)", res.stdout)
        # The store entry: source acme, the site in meta.json, the key 0600.
        entry = os.path.join(self.state, "certs", "acme-shop")
        with open(os.path.join(entry, "meta.json")) as f:
            meta = f.read()
        self.assertIn('"source":"acme"', meta)
        self.assertIn('"site":"shop"', meta)
        self.assertEqual(os.stat(os.path.join(entry, "privkey.pem")).st_mode & 0o777, 0o600)
        account_dir = os.path.join(self.state, "acme", f"127.0.0.1_{pebble.port}_dir")
        self.assertEqual(os.stat(os.path.join(account_dir, "account.key")).st_mode & 0o777, 0o600)
        with open(os.path.join(account_dir, "account.json")) as f:
            self.assertIn(f"https://127.0.0.1:{pebble.port}/", f.read())
        # Pebble's VA fetched each challenge from the HTTP listener (200);
        # once the order ended the tokens were cleared (404 now).
        challenge_paths = set()
        with open(os.path.join(self.tmp, "access.log")) as f:
            for line in f:
                rec = json.loads(line)
                if rec["path"].startswith("/.well-known/acme-challenge/") and rec["status"] == 200:
                    self.assertEqual(rec["scheme"], "http")
                    challenge_paths.add((rec["host"].split(":")[0], rec["path"]))
        self.assertTrue({h for h, _ in challenge_paths} <= set(HOSTS), challenge_paths)
        self.assertGreaterEqual(len(challenge_paths), 1)
        for host, path in challenge_paths:
            r = http_request(d.http_port, path, headers={"Host": host})
            self.assertEqual(r.status, 404, path)
        self.pebble, self.root_file = pebble, root_file
        return d, elapsed

    def test_http01_issuance_for_two_hosts(self):
        d, elapsed = self.issue_and_check({"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        print(f"\nstart to certificate served (PEBBLE_VA_NOSLEEP=1): {elapsed:.2f} s")
        # A reload with the same hosts keeps the certificate: no new order.
        d.reload()
        time.sleep(0.5)
        self.assertEqual(d.count_lines(r"acme: ordering certificate"), 1, d.log())
        old = peer_serial(self.wait_served(d, self.root_file, "shop.test")[3])
        # A third host: a new certificate for all three replaces it.
        d.reload(self.config(self.pebble.directory, [self.pebble.ca_cert],
                             hosts=HOSTS + ["api.shop.test"]))
        self.wait_issued(d, pattern=r"acme: certificate `acme-shop` for site `shop` "
                                    r"\(shop.test, www.shop.test, api.shop.test\) issued")
        new = peer_serial(self.wait_served(d, self.root_file, "api.shop.test")[3])
        self.assertNotEqual(new, old)
        deadline = time.monotonic() + 5
        while peer_serial(self.wait_served(d, self.root_file, "shop.test")[3]) != new:
            self.assertLess(time.monotonic(), deadline, "shop.test still has the old certificate")
            time.sleep(0.05)

    def test_tls_alpn01_issuance_for_two_hosts(self):
        https_port = closed_port()
        # Pebble validates on tlsedge's HTTPS port only; its HTTP-01 port is
        # a closed one, so only TLS-ALPN-01 can pass.
        pebble = Pebble(self, self.tmp, closed_port(), tls_port=https_port,
                        env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        d = start_daemon(self, self.tmp,
                         self.config(pebble.directory, [pebble.ca_cert], https_port=https_port,
                                     challenge="tls-alpn-01"),
                         args=("--log-level", "debug"))
        # While the order runs, ordinary handshakes for the site's hosts get
        # the fallback (default) certificate, never a challenge certificate.
        deadline = time.monotonic() + ISSUE_TIMEOUT
        while d.count_lines(ISSUED) == 0:
            self.assertLess(time.monotonic(), deadline, f"no certificate\n{d.log()}")
            try:
                _, alpn, _, cert = tls_handshake(https_port, "shop.test", ca=self.certs.ca_cert)
            except ssl.SSLError:
                break  # the Pebble certificate arrived (not trusted by this CA)
            self.assertEqual(alpn, "http/1.1")
            self.assertEqual(peer_serial(cert), self.fallback.serial)
        self.wait_issued(d)
        # Pebble's VA was answered inline, one handshake per host at least.
        self.assertGreaterEqual(d.count_lines(r"acme-tls/1 challenge handshake served"), 2,
                                d.log())
        root_file = self.write_root(pebble)
        serials = {peer_serial(self.wait_served(d, root_file, h)[3]) for h in HOSTS}
        self.assertEqual(len(serials), 1, "one certificate covers both hosts")
        res = s_client(https_port, "shop.test", ca=root_file)
        self.assertIn("Verify return code: 0 (ok)", res.stdout)
        # Challenges cleared: acme-tls/1 now gets the ordinary certificate
        # without the protocol (no challenge pending), and HTTP works.
        ctx = ssl.create_default_context(cafile=root_file)
        ctx.set_alpn_protocols(["acme-tls/1"])
        with socket.create_connection(("127.0.0.1", https_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="www.shop.test") as s:
                self.assertIsNone(s.selected_alpn_protocol())
        r = https_request(https_port, "www.shop.test", ca=root_file)
        self.assertEqual((r.status, r.body), (200, b"shop\n"))

    def dns_hook(self, pebble):
        """A DNS-01 hook: appends its arguments to hook.log and calls
        pebble-challtestsrv's management API."""
        path = os.path.join(self.tmp, "dns-hook.py")
        log = os.path.join(self.tmp, "hook.log")
        with open(path, "w") as f:
            f.write(f"""#!/usr/bin/env python3
import json, sys, urllib.request
action, name, value = sys.argv[1:4]
with open({log!r}, "a") as log:
    log.write(" ".join(sys.argv[1:4]) + "\\n")
body = {{"host": name + "."}}
if action == "set":
    body["value"] = value
req = urllib.request.Request({pebble.challtestsrv_url!r} + "/" + action + "-txt",
                             data=json.dumps(body).encode(), method="POST")
urllib.request.urlopen(req, timeout=5).read()
""")
        os.chmod(path, stat.S_IRWXU)
        return path, log

    def test_dns01_wildcard_site(self):
        # Pebble's HTTP-01 and TLS-ALPN-01 ports are closed: only DNS-01 passes.
        pebble = Pebble(self, self.tmp, closed_port(),
                        env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        hook, hook_log = self.dns_hook(pebble)
        hosts = ["*.example.test", "example.test"]
        d = start_daemon(self, self.tmp, self.config(pebble.directory, [pebble.ca_cert],
                                                     hosts=hosts, dns_hook=hook,
                                                     challenge="dns-01"))
        self.wait_issued(d, pattern=r"acme: certificate `acme-shop` for site `shop` "
                                    r"\(\*.example.test, example.test\) issued")
        root_file = self.write_root(pebble)
        serials = {peer_serial(self.wait_served(d, root_file, h)[3])
                   for h in ("example.test", "a.example.test", "www.example.test")}
        self.assertEqual(len(serials), 1, "one certificate covers the wildcard and its base")
        res = s_client(d.https_port, "b.example.test", ca=root_file)
        self.assertIn("Verify return code: 0 (ok)", res.stdout)
        # Two records under one name (the wildcard's and the base name's
        # authorization), each set, then cleared once the order ended.
        deadline = time.monotonic() + 10
        while True:
            with open(hook_log) as f:
                calls = [line.split() for line in f]
            if sum(c[0] == "clear" for c in calls) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        sets = sorted(c[1:] for c in calls if c[0] == "set")
        clears = sorted(c[1:] for c in calls if c[0] == "clear")
        self.assertEqual(len(sets), 2, calls)
        self.assertEqual({name for name, _ in sets}, {"_acme-challenge.example.test"})
        self.assertEqual(len({value for _, value in sets}), 2)
        self.assertTrue(all(re.fullmatch(r"[A-Za-z0-9_-]{43}", v) for _, v in sets), sets)
        self.assertEqual(clears, sets)

    def test_dns01_hook_failure_is_logged(self):
        pebble = Pebble(self, self.tmp, closed_port(),
                        env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        hook = os.path.join(self.tmp, "failing-hook.sh")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\necho \"no zone for $2\" >&2\nexit 3\n")
        os.chmod(hook, stat.S_IRWXU)
        d = start_daemon(self, self.tmp, self.config(pebble.directory, [pebble.ca_cert],
                                                     hosts=["*.example.test"], dns_hook=hook))
        pattern = (r"<3>acme: certificate `acme-shop` for site `shop`: dns_hook set "
                   r"_acme-challenge.example.test: `\S+failing-hook.sh set` exited with status 3; "
                   r"stderr: no zone for _acme-challenge.example.test; retrying in 60 s")
        deadline = time.monotonic() + 15
        while d.count_lines(pattern) == 0:
            self.assertLess(time.monotonic(), deadline, d.log())
            time.sleep(0.05)

    def test_default_pebble_stress(self):
        self.issue_and_check({})

    def test_bad_nonces_are_retried(self):
        d, _ = self.issue_and_check({"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "50"},
                                    args=("--log-level", "debug"))
        self.assertGreater(d.count_lines(r"acme: badNonce from .*, retrying"), 0, d.log())

    def test_restart_during_an_order(self):
        # Pebble's default validation delay (up to 5 s) keeps the order open.
        pebble = Pebble(self, self.tmp, self.http_port, env={"PEBBLE_WFE_NONCEREJECT": "0"})
        cfg = self.config(pebble.directory, [pebble.ca_cert])
        d = start_daemon(self, self.tmp, cfg)
        account = r"acme: account (https://\S+)"
        deadline = time.monotonic() + 10
        while d.count_lines(account) == 0:
            if time.monotonic() > deadline:
                self.fail(f"no account\n{d.log()}")
            time.sleep(0.01)
        d.stop()  # exits 0, promptly: the order's requests and timers are dropped
        self.assertEqual(d.count_lines(ISSUED), 0)
        # Started again on the same state: same account, the order placed
        # anew, one store entry.
        d2 = start_daemon(self, self.tmp, cfg, name="tlsedge-again")
        self.wait_issued(d2)
        first = re.search(account, d.log()).group(1)
        self.assertEqual(re.search(account, d2.log()).group(1), first)
        self.assertEqual(d2.count_lines(r"acme: new account key"), 0)
        self.assertEqual(os.listdir(os.path.join(self.state, "certs")), ["acme-shop"])

    def test_hosts_changed_during_an_order(self):
        # Pebble's default validation delay (up to 5 s) keeps the first order
        # open while a reload adds a host. That order belongs to the old host
        # list: its end must not end the new list's run (which re-ordered at
        # once, a third time, when it did). One order for each list, no more.
        pebble = Pebble(self, self.tmp, self.http_port, env={"PEBBLE_WFE_NONCEREJECT": "0"})
        three = HOSTS + ["api.shop.test"]
        before = self.config(pebble.directory, [pebble.ca_cert])
        after = self.config(pebble.directory, [pebble.ca_cert], hosts=three)
        # The same acme: section both times (the pre-flight's resolver knows
        # all three): the CA client, and its order, carry on.
        before["acme"] = after["acme"]
        d = start_daemon(self, self.tmp, before)
        deadline = time.monotonic() + 10
        while d.count_lines(r"acme: order \S+ placed for site `shop`") == 0:
            if time.monotonic() > deadline:
                self.fail(f"no order placed\n{d.log()}")
            time.sleep(0.01)
        d.reload(after)
        self.wait_issued(d, pattern=r"acme: certificate `acme-shop` for site `shop` "
                                    r"\(shop.test, www.shop.test, api.shop.test\) issued")
        root_file = self.write_root(pebble)
        self.wait_served(d, root_file, "api.shop.test")
        time.sleep(2)  # a stray order is placed at once: the site is due now
        self.assertEqual(len(re.findall(r"POST /order-plz", pebble.log())), 2, d.log())
        res = run([tlsedge_bin(), "acme", "status", "--json",
                   "--socket", os.path.join(self.state, "admin.sock")], timeout=60)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        [shop] = json.loads(res.stdout)["sites"]
        self.assertFalse(shop["in_flight"], shop)
        self.assertTrue(shop["stored"], shop)
        self.assertIn("lifetime", shop["next_reason"], shop)  # not due: covered

    def test_ca_unreachable_at_start(self):
        port = dead_port(self)
        d = start_daemon(self, self.tmp,
                         self.config(f"https://127.0.0.1:{port}/dir", []))
        pattern = (rf"<3>acme: certificate `acme-shop` for site `shop`: connect to "
                   rf"127.0.0.1:{port}: connection refused; retrying in 60 s")
        deadline = time.monotonic() + 10
        while d.count_lines(pattern) == 0:
            if time.monotonic() > deadline:
                self.fail(f"no retry logged\n{d.log()}")
            time.sleep(0.05)
        # Meanwhile the site is served (with the default certificate).
        cert = tls_handshake(d.https_port, "shop.test", ca=self.certs.ca_cert)[3]
        self.assertEqual(peer_serial(cert), self.fallback.serial)


if __name__ == "__main__":
    unittest.main()
