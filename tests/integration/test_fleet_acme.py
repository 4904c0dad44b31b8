"""ACME once per fleet (docs/fleet.md, "ACME"): three tlsedge nodes on
127.0.0.2, 127.0.0.3 and 127.0.0.4 share a real 3-member etcd cluster and
the ports real Pebble validates on (HTTP-01 on every node's HTTP listener,
TLS-ALPN-01 on every node's HTTPS listener); pebble-challtestsrv answers
Pebble's DNS, so a site's host resolves to whichever node the test says.

- three nodes with the same `acme: true` site place one order: one node
  holds the site's lock (the others log who does) and every node serves
  the certificate it stored;
- HTTP-01 and TLS-ALPN-01 validations, and the pre-flight probe, reach a
  node that did not order (its host resolves there), which answers from
  the fleet's shared answers;
- a node killed (SIGKILL) while it holds a site's lock, in the middle of
  an order (its DNS-01 hook blocks): once its lease expires another node
  takes the lock, resumes the order the dead one placed, and stores the
  certificate; one account serves the fleet;
- etcd's leader killed (SIGKILL) while an order runs (the ordering node
  waits on its DNS-01 hook): the two members left elect a new leader, the
  order completes with the lock and its fenced writes intact, one order at
  Pebble, both nodes serve the certificate.
"""

import json
import os
import re
import signal
import stat
import time
import unittest

from clients import tls_handshake
from common import closed_port, make_tempdir, run, sanitizer, tlsedge_bin
from config import base_config, respond_route, site
from daemon import start_daemon
from etcd import EtcdCluster, b64
from pebble import Pebble
from pki import Certs

PREFIX = "/tlsedge-acme"
NODES = {"a": "127.0.0.2", "b": "127.0.0.3", "c": "127.0.0.4"}
ISSUE_TIMEOUT = 60.0 if sanitizer() else 40.0
PEBBLE_ORDER = r"POST /order-plz"
STORED = r"acme: certificate `acme-shop` for site `shop` \(shop.test\) issued and stored"


class FleetAcmeTest(unittest.TestCase):

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.etcd = EtcdCluster(self.tmp, members=3, tls=True)
        self.addCleanup(self.etcd.stop)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        self.fallback = self.certs.leaf("fallback", ["fallback.test"])
        self.key_file = os.path.join(self.tmp, "fleet.key")
        res = run([tlsedge_bin(), "fleet-key", "new"])
        self.assertEqual(res.returncode, 0, res.stderr)
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(res.stdout)
        self.http_port = closed_port()
        self.https_port = closed_port()
        self.pebble = Pebble(self, self.tmp, self.http_port, tls_port=self.https_port,
                             env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
                                  "PEBBLE_AUTHZREUSE": "0"})
        self.root_file = os.path.join(self.tmp, "pebble-root.pem")
        with open(self.root_file, "w") as f:
            f.write(self.pebble.root_pem())
        self.nodes = {}

    def config(self, name, acme_site=True, preflight_to=None, **acme):
        address = NODES[name]
        tls = {"acme": True} if acme_site else {"certificate": "fallback"}
        cfg = base_config(
            os.path.join(self.tmp, f"state-{name}"),
            http=(f"{address}:{self.http_port}",), https=(f"{address}:{self.https_port}",),
            certificates={"fallback": self.fallback}, default_certificate="fallback",
            sites=[site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")], tls=tls)])
        cfg["acme"] = {"directory": self.pebble.directory, "email": "ops@shop.test",
                       "trusted_roots": [self.pebble.ca_cert],
                       "preflight_resolve": {"shop.test": preflight_to or address}, **acme}
        cfg["storage"] = {"etcd": {
            "endpoints": self.etcd.endpoints, "prefix": PREFIX,
            "tls": {"ca": self.etcd.ca_cert, "cert": self.etcd.client_cert,
                    "key": self.etcd.client_key},
            "key_file": self.key_file, "node": name, "lease": "3s"}}
        return cfg

    def start_node(self, name, **options):
        d = start_daemon(self, self.tmp, self.config(name, **options), name=f"node-{name}")
        self.nodes[name] = d
        return d

    def wait_until(self, what, check, timeout=ISSUE_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- node {n}\n{d.log()}" for n, d in self.nodes.items())
                self.fail(f"{what}: not after {timeout}s\n{logs}\n--- pebble\n"
                          f"{self.pebble.log()[-4000:]}")
            time.sleep(0.1)

    def served_serial(self, name):
        """The serial node `name` serves for shop.test, if Pebble's root signs it."""
        try:
            cert = tls_handshake(self.https_port, "shop.test", ca=self.root_file,
                                 connect_host=NODES[name])[3]
        except OSError:  # ssl.SSLError too: not (yet) a certificate from Pebble
            return None
        return cert.get("serialNumber")

    def orderers(self):
        return [n for n, d in self.nodes.items() if d.count_lines(STORED) > 0]

    def test_three_nodes_place_one_order_and_all_serve_it(self):
        self.pebble.add_a("shop.test", NODES.values())
        for name in NODES:
            self.start_node(name)
        self.wait_until("a node stored the certificate", lambda: self.orderers())
        [orderer] = self.orderers()
        self.wait_until("every node serves it",
                        lambda: len({self.served_serial(n) for n in NODES} - {None}) == 1 and
                        None not in {self.served_serial(n) for n in NODES})
        # The others found the lock taken (and said by whom), and after the
        # certificate arrived found nothing due: no second order, ever.
        time.sleep(6)  # past one lock re-check (5 s)
        self.assertEqual(self.orderers(), [orderer])
        for name, d in self.nodes.items():
            if name != orderer:
                self.assertGreater(
                    d.count_lines(rf"acme: site `shop`: node `{orderer}` holds the fleet's "
                                  r"order lock"), 0, d.log())
        self.assertEqual(len(re.findall(PEBBLE_ORDER, self.pebble.log())), 1,
                         self.pebble.log()[-3000:])
        # One account for the fleet: the key is in etcd, sealed.
        keys = [k for k, _ in self.etcd.range_prefix(f"{PREFIX}/acme/".encode())
                if k.endswith(b"/account.key")]
        self.assertEqual(len(keys), 1, keys)
        # `acme status` on a node that did not order: no lock held now.
        other = next(n for n in NODES if n != orderer)
        res = run([tlsedge_bin(), "acme", "status", "--json", "-c",
                   self.nodes[other].config_path])
        self.assertEqual(res.returncode, 0, res.stderr)
        [status] = json.loads(res.stdout)["sites"]
        self.assertTrue(status["stored"], (status, self.nodes[other].log()))
        self.assertIsNone(status["order_lock"], status)

    def validated_elsewhere(self, challenge):
        # Node a orders; shop.test resolves to node b, which has the site
        # without ACME: b answers the pre-flight and the CA from what a
        # shared through etcd.
        self.pebble.add_a("shop.test", [NODES["b"]])
        self.start_node("b", acme_site=False)
        self.start_node("c", acme_site=False)
        a = self.start_node("a", preflight_to=NODES["b"], challenge=challenge)
        self.wait_until("node a stored the certificate", lambda: self.orderers() == ["a"])
        self.assertGreater(a.count_lines(r"pre-flight passed"), 0, a.log())
        self.wait_until("node a serves it", lambda: self.served_serial("a") is not None)
        # The answers went with the order: none left in etcd.
        self.wait_until("the shared answers removed",
                        lambda: self.etcd.range_prefix(f"{PREFIX}/challenges/".encode()) == [])
        # b and c hold the certificate in their state directories too.
        for n in "bc":
            path = os.path.join(self.tmp, f"state-{n}", "certs", "acme-shop", "fullchain.pem")
            self.wait_until(f"node {n}'s copy", lambda: os.path.exists(path))

    def test_http01_answered_by_a_node_that_did_not_order(self):
        self.validated_elsewhere("http-01")

    def test_tls_alpn01_answered_by_a_node_that_did_not_order(self):
        self.validated_elsewhere("tls-alpn-01")

    def blocking_dns_hook(self):
        """A DNS-01 hook whose `set` waits (bounded, 30 s) while the file
        `block` exists, then sets the TXT record in pebble-challtestsrv."""
        block = os.path.join(self.tmp, "block")
        path = os.path.join(self.tmp, "dns-hook.py")
        with open(path, "w") as f:
            f.write(f"""#!/usr/bin/env python3
import json, os, sys, time, urllib.request
action, name, value = sys.argv[1:4]
deadline = time.monotonic() + 30
while action == "set" and os.path.exists({block!r}) and time.monotonic() < deadline:
    time.sleep(0.05)
body = {{"host": name + "."}}
if action == "set":
    body["value"] = value
req = urllib.request.Request({self.pebble.challtestsrv_url!r} + "/" + action + "-txt",
                             data=json.dumps(body).encode(), method="POST")
urllib.request.urlopen(req, timeout=5).read()
""")
        os.chmod(path, stat.S_IRWXU)
        with open(block, "w"):
            pass
        return path, block

    def test_a_node_killed_holding_the_lock_is_taken_over(self):
        hook, block = self.blocking_dns_hook()
        a = self.start_node("a", challenge="dns-01", dns_hook=hook)
        # a holds the lock, placed the order (its URL saved in etcd, sealed)
        # and waits on the hook.
        self.wait_until("node a placed the order", lambda: a.count_lines(
            r"acme: order \S+ placed for site `shop`") > 0, timeout=20)
        self.wait_until("the site's state saved in etcd", lambda: self.etcd.range_prefix(
            f"{PREFIX}/acme/sites/".encode()) != [], timeout=10)
        b = self.start_node("b", challenge="dns-01", dns_hook=hook)
        self.wait_until("node b sees a's lock", lambda: b.count_lines(
            r"node `a` holds the fleet's order lock") > 0, timeout=20)
        a.send_signal(signal.SIGKILL)
        a.wait_exit(10)
        os.remove(block)  # a's hook ends; b's will not wait
        self.wait_until("node b stored the certificate", lambda: b.count_lines(STORED) > 0)
        self.assertGreater(b.count_lines(r"this node \(`b`\) holds the fleet's order lock"), 0)
        self.assertGreater(b.count_lines(r"acme: resuming order \S+ \(pending\)"), 0, b.log())
        self.assertEqual(len(re.findall(PEBBLE_ORDER, self.pebble.log())), 1)
        self.wait_until("node b serves it", lambda: self.served_serial("b") is not None)

    def test_a_renewal_asked_while_a_peer_holds_the_lock_waits_for_it(self):
        self.pebble.add_a("shop.test", [NODES["a"]])
        a = self.start_node("a")
        self.wait_until("node a stored the certificate", lambda: a.count_lines(STORED) == 1)

        def in_flight():
            res = run([tlsedge_bin(), "acme", "status", "--json", "-c", a.config_path])
            return json.loads(res.stdout)["sites"][0]["in_flight"]
        # The order ends once its state is saved and the certificate re-read;
        # the lock is released after that (a put over a's lock would keep
        # its create revision, and a's fenced unlock would delete it).
        self.wait_until("the order wrapped up", lambda: not in_flight(), timeout=10)
        lock = f"{PREFIX}/locks/acme/shop"
        self.wait_until("node a released the lock", lambda: self.etcd.get(lock) is None,
                        timeout=10)
        # Another node's lock, on that node's own lease.
        lease = self.etcd.post("/v3/lease/grant", {"TTL": 60})["ID"]
        self.etcd.put(lock, "ghost", lease=lease)
        res = run([tlsedge_bin(), "acme", "renew", "shop", "-c", a.config_path])
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.wait_until("node a sees ghost's lock", lambda: a.count_lines(
            r"node `ghost` holds the fleet's order lock") > 0, timeout=20)
        # Re-checked under ghost's lock at least once (5 s), the renewal is
        # still asked for: the certificate is not due, yet it is ordered
        # once the lock is free.
        time.sleep(6)
        self.assertEqual(a.count_lines(STORED), 1)
        self.etcd.post("/v3/kv/deleterange", {"key": b64(lock)})
        self.wait_until("the renewal ordered", lambda: a.count_lines(STORED) == 2, timeout=30)
        self.assertEqual(len(re.findall(PEBBLE_ORDER, self.pebble.log())), 2)

    def test_the_etcd_leader_killed_during_an_order(self):
        hook, block = self.blocking_dns_hook()
        a = self.start_node("a", challenge="dns-01", dns_hook=hook)
        self.wait_until("node a placed the order", lambda: a.count_lines(
            r"acme: order \S+ placed for site `shop`") > 0, timeout=20)
        b = self.start_node("b", challenge="dns-01", dns_hook=hook)
        self.wait_until("node b sees a's lock", lambda: b.count_lines(
            r"node `a` holds the fleet's order lock") > 0, timeout=20)
        # The leader goes while a waits on its hook; the other two members
        # elect a new one and hold the lease, the lock and the order's state.
        leader = self.etcd.leader()
        self.etcd.kill(leader)
        self.etcd.leader()  # a new one, agreed (bounded)
        os.remove(block)
        self.wait_until("node a stored the certificate", lambda: a.count_lines(STORED) > 0)
        self.wait_until("both nodes serve it",
                        lambda: self.served_serial("a") is not None and
                        self.served_serial("a") == self.served_serial("b"))
        time.sleep(6)  # past one lock re-check of b's (5 s): it finds nothing due
        self.assertEqual(self.orderers(), ["a"])
        self.assertEqual(len(re.findall(PEBBLE_ORDER, self.pebble.log())), 1,
                         self.pebble.log()[-3000:])
        for d in (a, b):
            self.assertEqual(d.count_lines(r"was lost"), 0, d.log())


if __name__ == "__main__":
    unittest.main()
