"""Fleet mode's shared certificate store (docs/fleet.md), on a real 3-member
etcd cluster (tests/integration/etcd.py) with TLS and client certificates,
and three tlsedge nodes sharing it through `storage: { etcd: ... }`.

Every check of what a node serves is a real handshake (openssl s_client),
polled (bounded) until it shows the expected serial:

- a certificate added through node A is served by B and C; replaced
  through B, every node serves the new one; one no site uses, removed
  through C, leaves every node's copy (one in use is refused). In etcd the private key is sealed (no PEM in
  the clear), the chain is plain PEM;
- two nodes replacing one name at once, over and over: every write either
  wins or is refused as a concurrent change, and all three nodes serve the
  certificate etcd holds at the end;
- etcd down: the nodes serve what they had, an upload through one fails
  with "fleet storage unreachable" and writes nothing, a node restarted
  meanwhile serves from its state directory; etcd back, a change reaches
  every node again; the metric says so; a new node started meanwhile
  (empty state directory) answers /readyz 503 until its first read;
- a new node on an empty state directory, 1200 entries in etcd (imported):
  written in batches, applied in one rebuild of the snapshot (not one by
  one), ready only after it; a later change is applied alone;
- the fleet key rotated: the new key first, `tlsedge fleet reseal` seals
  every sealed value again under it (a second run finds none to do), and
  with the old key dropped a new node opens and serves everything;
- etcd's leader killed while uploads go through two nodes: every upload
  that succeeded is in etcd and on every node; one that failed said why and
  left its entry whole or absent, and lands when made again;
- a node whose watch resumes behind etcd's compaction reads the whole
  store again (logged, counted) and serves the newest certificate;
- session tickets: over several fleet-wide rotations a TLS 1.3 ticket from
  either node resumes on the other; the ring is created once, sealed in
  etcd, and on no node's disk."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

from clients import client_context, curl_https
from common import run, tlsedge_bin
from config import base_config, respond_route, site, to_yaml
from daemon import start_daemon
from fleet_nodes import PREFIX, PROBE_EVERY_S, SEALED, VISIBLE_WITHIN_S, FleetNodes, leaf_pem
from scrape import scrape, value


class FleetTest(FleetNodes):

    def test_a_change_through_one_node_reaches_every_node(self):
        for n in "abc":
            self.start_node(n)
        self.add("a", "shop", self.shop1)
        for n in "abc":
            self.wait_serial(n, "shop.test", self.shop1.serial)

        # In etcd: one key per file; the private key sealed, the chain plain.
        stored = dict(self.etcd.range_prefix(f"{PREFIX}/certs/shop/".encode()))
        self.assertEqual(sorted(stored), [f"{PREFIX}/certs/shop/{f}".encode()
                                          for f in ("fullchain.pem", "meta.json", "privkey.pem")])
        key = stored[f"{PREFIX}/certs/shop/privkey.pem".encode()]
        self.assertTrue(key.startswith(SEALED), key[:40])
        self.assertNotIn(b"PRIVATE KEY", key)
        self.assertIn(b"-----BEGIN CERTIFICATE-----",
                      stored[f"{PREFIX}/certs/shop/fullchain.pem".encode()])
        # Each node's own copy holds the key in the clear, 0600. (The node
        # that took the upload serves it at once; its copy comes through its
        # replica like everyone's, so it is waited for too.)
        for n in "abc":
            self.wait_file(n, "shop", True)
            path = os.path.join(self.tmp, f"state-{n}", "certs", "shop", "privkey.pem")
            with open(path, "rb") as f:
                self.assertIn(b"PRIVATE KEY", f.read())
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

        self.add("b", "shop", self.shop2, "--replace")
        for n in "abc":
            self.wait_serial(n, "shop.test", self.shop2.serial)
        listed = self.cert("c", "list").stdout
        self.assertIn("shop", listed)

        # A certificate no site uses can be removed through any node: it
        # leaves every node's copy. (One in use is refused, as on one node.)
        self.add("a", "spare", self.spare)
        for n in "abc":
            self.wait_file(n, "spare", True)
        res = self.cert("c", "rm", "shop", expect=1)
        self.assertIn("is in use by site `shop`", res.stderr)
        self.cert("c", "rm", "spare")
        for n in "abc":
            self.wait_file(n, "spare", False)
        self.assertEqual(self.etcd.range_prefix(f"{PREFIX}/certs/spare/".encode()), [])
        self.assertEqual(self.serial("b", "shop.test"), self.shop2.serial)

    def fetch(self, node, ctx, session=None):
        """One TLS 1.3 request to `node` (offering `session`); returns whether it
        resumed, and the session its ticket makes (read with the response)."""
        with socket.create_connection(("127.0.0.1", self.nodes[node].https_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="default.test", session=session) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: default.test\r\nConnection: close\r\n\r\n")
                while s.recv(4096):
                    pass
                return s.session_reused, s.session

    def test_a_tls13_ticket_from_one_node_resumes_on_another(self):
        # Keys rotate every 3 s (the fleet's ring is read every 1 s): over
        # several rotations a ticket from either node resumes on the other.
        self.ticket_key_rotation = "3s"
        for n in "ab":
            self.start_node(n)
        ctx = client_context(self.certs.ca_cert, check_hostname=False,
                             tls_version=ssl.TLSVersion.TLSv1_3)
        # At start each node holds a ring of its own until it has read the fleet's.
        self.wait_for("b", "a ticket from A resumed on B",
                      lambda: self.fetch("b", ctx, self.fetch("a", ctx)[1])[0], True,
                      VISIBLE_WITHIN_S)
        deadline = time.monotonic() + 10
        resumed = 0
        while time.monotonic() < deadline:
            for issuer, resumer in (("a", "b"), ("b", "a")):
                _, session = self.fetch(issuer, ctx)
                reused, _ = self.fetch(resumer, ctx, session)
                self.assertTrue(reused, f"a ticket from {issuer} did not resume on {resumer}")
                resumed += 1
            time.sleep(0.2)
        rotated = sum(d.count_lines(r"fleet: ticket keys rotated") for d in self.nodes.values())
        self.assertGreaterEqual(rotated, 2)
        self.assertEqual(sum(d.count_lines(r"fleet: ticket keys created")
                             for d in self.nodes.values()), 1)
        # Never on disk: no state directory holds the ring.
        for n in "ab":
            for root, _, files in os.walk(os.path.join(self.tmp, f"state-{n}")):
                self.assertNotIn("ring", files, root)
        stored = self.etcd.get(f"{PREFIX}/tickets/ring".encode())
        self.assertTrue(stored.startswith(SEALED), stored[:40])
        print(f"tickets: {resumed} cross-node resumptions, {rotated} fleet rotations")

    def test_concurrent_replaces_converge_on_what_etcd_holds(self):
        for n in "abc":
            self.start_node(n)
        self.add("a", "shop", self.shop1)
        for n in "abc":
            self.wait_serial(n, "shop.test", self.shop1.serial)
        refused = 0
        for _ in range(5):
            procs = [subprocess.Popen(
                [tlsedge_bin(), "cert", "add", "shop", "--cert", leaf.cert, "--key", leaf.key,
                 "--replace", "-c", self.nodes[n].config_path],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for n, leaf in (("a", self.shop2), ("b", self.shop3))]
            for p in procs:
                out, err = p.communicate(timeout=60)
                if p.returncode != 0:
                    self.assertIn("was changed by another writer meanwhile", err)
                    refused += 1
        held = dict(self.etcd.range_prefix(f"{PREFIX}/certs/shop/".encode()))
        chain = held[f"{PREFIX}/certs/shop/fullchain.pem".encode()]
        winner = next(leaf for leaf in (self.shop2, self.shop3) if leaf_pem(leaf) in chain)
        for n in "abc":
            self.wait_serial(n, "shop.test", winner.serial)
        print(f"concurrent replaces: {refused} of 10 refused as concurrent")

    def write_config(self, name, cfg):
        path = os.path.join(self.tmp, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        return path

    def test_a_single_nodes_state_directory_moves_into_the_fleet(self):
        solo_dir = os.path.join(self.tmp, "state-solo")
        solo = self.write_config("solo", base_config(
            solo_dir, sites=[site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")])]))
        fleet = self.write_config("fleet-a", self.config("a"))
        spare2 = self.certs.leaf("spare2", ["spare.test"])
        for name, leaf, cfg in (("shop", self.shop1, solo), ("spare", spare2, solo),
                                ("spare", self.spare, fleet)):  # the fleet has its own spare
            res = run([tlsedge_bin(), "cert", "add", name, "--cert", leaf.cert, "--key", leaf.key,
                       "--offline", "-c", cfg], timeout=60)
            self.assertEqual(res.returncode, 0, res.stderr)
        os.makedirs(os.path.join(solo_dir, "acme", "sites"))
        os.makedirs(os.path.join(solo_dir, "acme", "challenges"))
        for rel, mode in (("acme/sites/shop.json", 0o600), ("acme/challenges/tok", 0o644)):
            fd = os.open(os.path.join(solo_dir, rel), os.O_WRONLY | os.O_CREAT, mode)
            with os.fdopen(fd, "w") as f:
                f.write('{"site": "shop"}\n')
        os.makedirs(os.path.join(solo_dir, "sites", "blog"))  # a site of the admin API
        with open(os.path.join(solo_dir, "sites", "blog", "site.json"), "w") as f:
            json.dump({"hosts": ["blog.test"],
                       "routes": [{"path": "/", "respond": {"body": "blog\n"}}]}, f)

        res = run([tlsedge_bin(), "fleet", "import", "-c", fleet, "--from", solo_dir], timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("imported 1 certificate entries, 1 sites and 1 ACME values", res.stdout)
        self.assertIn("1 already in etcd, left as they are", res.stdout)
        self.assertIn("certs/spare", res.stdout)
        key = self.etcd.get(f"{PREFIX}/certs/shop/privkey.pem")
        self.assertTrue(key.startswith(SEALED), key[:40])
        state = self.etcd.get(f"{PREFIX}/acme/sites/shop.json")
        self.assertTrue(state.startswith(SEALED), state[:40])  # 0600 on disk: sealed
        self.assertEqual(self.etcd.range_prefix(f"{PREFIX}/acme/challenges/".encode()), [])
        self.assertEqual(json.loads(self.etcd.get(f"{PREFIX}/sites/blog/site.json"))["hosts"],
                         ["blog.test"])
        self.assertIn(leaf_pem(self.spare), self.etcd.get(f"{PREFIX}/certs/spare/fullchain.pem"))

        # A node of the fleet, started on an empty state directory, serves it.
        self.start_node("a")
        self.wait_serial("a", "shop.test", self.shop1.serial)
        self.wait_file("a", "spare", True)

        def blog():
            return curl_https(self.nodes["a"].https_port, "blog.test", ca=self.certs.ca_cert,
                              extra=["-k"], verbose=False)[1:]
        self.wait_for("a", "blog.test", blog, (200, "blog\n"), VISIBLE_WITHIN_S)

        # Again: everything is there, nothing is written; --replace writes over.
        res = run([tlsedge_bin(), "fleet", "import", "-c", fleet, "--from", solo_dir], timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("imported 0 certificate entries, 0 sites and 0 ACME values", res.stdout)
        self.assertIn("4 already in etcd", res.stdout)
        res = run([tlsedge_bin(), "fleet", "import", "-c", fleet, "--from", solo_dir, "--replace"],
                  timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("4 written over (--replace)", res.stdout)
        self.assertIn(leaf_pem(spare2), self.etcd.get(f"{PREFIX}/certs/spare/fullchain.pem"))
        spare_copy = os.path.join(self.tmp, "state-a", "certs", "spare", "fullchain.pem")

        def copied():
            try:
                with open(spare_copy, "rb") as f:
                    return leaf_pem(spare2) in f.read()
            except FileNotFoundError:  # the old directory, swapped out as it was opened
                return False
        self.wait_for("a", "spare2 in its copy of spare", copied, True, VISIBLE_WITHIN_S)

        # Without storage: in the configuration there is nothing to import into.
        res = run([tlsedge_bin(), "fleet", "import", "-c", solo], timeout=60)
        self.assertEqual(res.returncode, 1)
        self.assertIn("no `storage: { etcd: ... }`", res.stderr)

    def test_a_new_node_takes_a_big_store_in_one_rebuild(self):
        # 1200 entries (one leaf under 1200 names, copied on disk), imported;
        # a new node writes them in batches and applies them in one rebuild,
        # not one by one, and is ready only then.
        solo_dir = os.path.join(self.tmp, "state-solo")
        solo = self.write_config("solo", base_config(
            solo_dir, sites=[site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")])]))
        res = run([tlsedge_bin(), "cert", "add", "shop", "--cert", self.shop1.cert, "--key",
                   self.shop1.key, "--offline", "-c", solo], timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        certs = os.path.join(solo_dir, "certs")
        for i in range(1199):
            shutil.copytree(os.path.join(certs, "shop"), os.path.join(certs, f"copy{i}"))
        fleet = self.write_config("fleet-a", self.config("a"))
        res = run([tlsedge_bin(), "fleet", "import", "-c", fleet, "--from", solo_dir], timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("imported 1200 certificate entries", res.stdout)

        a = self.start_node("a")
        self.wait_for("a", "/readyz", lambda: self.readyz("a"), (200, "ready\n"),
                      VISIBLE_WITHIN_S * 4)
        self.assertEqual(self.serial("a", "shop.test"), self.shop1.serial)
        self.assertEqual(a.count_lines(r"in sync .* \(1200 entries written\)"), 1, a.log())
        self.assertEqual(a.count_lines(r"certificate store: 1200 entries changed at once: "
                                       r"snapshot rebuilt \(1201 certificates\)"), 1, a.log())
        self.assertEqual(a.count_lines(r"certificate store entry \S+ added"), 0)
        self.assertEqual(len(os.listdir(os.path.join(self.tmp, "state-a", "certs"))), 1200)
        # Small changes after it are applied one by one again.
        self.add("a", "copy0", self.spare, "--replace")
        self.wait_for("a", "the replace applied", lambda: a.count_lines(
            r"certificate store entry copy0 replaced"), 1, VISIBLE_WITHIN_S)

    def test_the_fleet_key_rotated_with_reseal(self):
        def sealed_with(value):
            self.assertTrue(value.startswith(SEALED), value[:40])
            n = value[len(SEALED)]
            return value[len(SEALED) + 1:len(SEALED) + 1 + n].decode()

        def key_ids():
            return {k: sealed_with(v) for k, v in self.etcd.range_prefix(f"{PREFIX}/".encode())
                    if v.startswith(SEALED)}

        def write_keys(*lines):
            with open(self.key_file, "w") as f:
                f.write("".join(lines))

        with open(self.key_file) as f:
            old = f.read()
        self.start_node("a")
        self.add("a", "shop", self.shop1)
        self.wait_serial("a", "shop.test", self.shop1.serial)
        self.assertEqual(set(key_ids().values()), {"it1"})
        # The new key first on every node (here one), restarted; then reseal.
        new = run([tlsedge_bin(), "fleet-key", "new", "--id", "it2"]).stdout
        write_keys(new, old)
        self.nodes["a"].stop()
        self.start_node("a")
        res = run([tlsedge_bin(), "fleet", "reseal", "-c", self.nodes["a"].config_path])
        self.assertEqual(res.returncode, 0, res.stderr)
        held = key_ids()
        self.assertIn(f"{PREFIX}/certs/shop/privkey.pem".encode(), held)
        self.assertIn(f"sealed {len(held)} values again under fleet key 'it2' (0 already were)",
                      res.stdout)
        self.assertEqual(set(held.values()), {"it2"})
        res = run([tlsedge_bin(), "fleet", "reseal", "-c", self.nodes["a"].config_path])
        self.assertIn(f"sealed 0 values again under fleet key 'it2' ({len(held)} already were)",
                      res.stdout)
        # The old key dropped: a new node opens everything with the new one.
        write_keys(new)
        self.start_node("b")
        self.wait_serial("b", "shop.test", self.shop1.serial)
        self.add("b", "shop", self.shop2, "--replace")
        self.wait_serial("a", "shop.test", self.shop2.serial)

    def test_the_etcd_leader_killed_during_uploads(self):
        for n in "abc":
            self.start_node(n)
        leaves = [self.certs.leaf(f"up{i}", [f"up{i}.test"]) for i in range(12)]
        results = {}

        def upload(i, replace=False):
            leaf = leaves[i]
            return run([tlsedge_bin(), "cert", "add", f"up{i}", "--cert", leaf.cert, "--key",
                        leaf.key, *(["--replace"] if replace else []),
                        "-c", self.nodes["ab"[i % 2]].config_path], timeout=60)

        def uploads():
            for i in range(len(leaves)):
                results[i] = upload(i)
        thread = threading.Thread(target=uploads)
        thread.start()
        deadline = time.monotonic() + 60
        while len(results) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.etcd.kill(self.etcd.leader())  # with uploads still to come, some in flight
        thread.join(120)
        self.assertFalse(thread.is_alive())
        # An upload that succeeded is never lost; one that failed said why
        # and left its entry whole or absent (a write that timed out on one
        # member may still have committed: then it is there, whole).
        for i, res in sorted(results.items()):
            name = f"up{i}".encode()
            files = sorted(k.rsplit(b"/", 1)[1] for k, _ in
                           self.etcd.range_prefix(f"{PREFIX}/certs/".encode() + name + b"/"))
            if res.returncode == 0:
                self.assertEqual(files, [b"fullchain.pem", b"meta.json", b"privkey.pem"], i)
            else:
                self.assertEqual(res.returncode, 1, res.stderr)
                self.assertTrue(res.stderr.startswith("tlsedge cert: "), res.stderr)
                self.assertIn(files, ([], [b"fullchain.pem", b"meta.json", b"privkey.pem"]), i)
                self.assertEqual(upload(i, replace=True).returncode, 0)  # again: it lands
        print(f"leader killed: {sum(r.returncode != 0 for r in results.values())} of "
              f"{len(results)} uploads failed and were made again")
        for n in "abc":
            for i in range(len(leaves)):
                self.wait_file(n, f"up{i}", True)

    def test_etcd_down_the_nodes_serve_on_and_catch_up(self):
        for n in "ab":
            self.start_node(n)
        self.add("a", "shop", self.shop1)
        for n in "ab":
            self.wait_serial(n, "shop.test", self.shop1.serial)
        self.wait_metric("a", "tlsedge_fleet_storage_connected", 1)
        samples = scrape(self.nodes["a"].metrics_address)
        requests = "tlsedge_fleet_etcd_requests_total"
        self.assertGreater(value(samples, requests, kind="unary"), 0)
        watches = value(samples, requests, kind="watch")
        self.assertGreaterEqual(watches, 2)  # the replica's and the ACME answers'

        for i in range(3):
            self.etcd.kill(i)
        res = self.add("a", "shop", self.shop2, "--replace", expect=1)
        self.assertIn("fleet storage unreachable", res.stderr)
        self.assertEqual(self.serial("a", "shop.test"), self.shop1.serial)
        self.wait_metric("a", "tlsedge_fleet_storage_connected", 0)
        # A restart while etcd is down serves from the state directory.
        self.nodes["b"].stop()
        self.start_node("b")
        self.assertEqual(self.serial("b", "shop.test"), self.shop1.serial)
        self.assertEqual(self.readyz("b"), (200, "ready\n"))
        # A new node has nothing to serve: not ready (a balancer keeps it
        # out) until its first read of etcd.
        self.start_node("c")
        status, text = self.readyz("c")
        self.assertEqual(status, 503)
        self.assertIn("the state directory held no certificate and the first read of "
                      f"etcd:{PREFIX}/certs has not completed", text)

        self.etcd.start(0, 1, 2)
        self.wait_metric("a", "tlsedge_fleet_storage_connected", 1)
        self.wait_metric("b", "tlsedge_fleet_storage_connected", 1)
        self.wait_for("c", "/readyz", lambda: self.readyz("c"), (200, "ready\n"),
                      VISIBLE_WITHIN_S * 4)
        self.assertEqual(self.serial("c", "shop.test"), self.shop1.serial)
        self.assertGreater(self.metric_labelled("a", requests, kind="watch"), watches)
        self.add("b", "shop", self.shop3, "--replace")
        for n in "ab":
            self.wait_serial(n, "shop.test", self.shop3.serial)

    def test_a_restarted_node_reads_only_what_changed_meanwhile(self):
        for n in "ab":
            self.start_node(n)
        self.add("a", "shop", self.shop1)
        self.add("a", "spare", self.spare)
        for n in "ab":
            self.wait_serial(n, "shop.test", self.shop1.serial)
        self.wait_file("b", "spare", True)
        self.assertEqual(self.nodes["b"].count_lines(r"the store is in sync with \S+/certs "), 1)
        record = os.path.join(self.tmp, "state-b", "fleet-copy.json")

        def recorded():
            with open(record) as f:
                return json.load(f)["revision"]
        self.wait_for("b", "the recorded revision", recorded,
                      self.metric("b", "tlsedge_fleet_storage_revision"), VISIBLE_WITHIN_S)
        self.nodes["b"].stop()
        self.add("a", "shop", self.shop2, "--replace")
        self.cert("a", "rm", "spare")
        b = self.start_node("b")
        self.wait_serial("b", "shop.test", self.shop2.serial)
        self.wait_file("b", "spare", False)
        self.assertEqual(b.count_lines(r"/certs resumes from revision"), 1, b.log())
        self.assertEqual(b.count_lines(r"the store is in sync with \S+/certs "), 0, b.log())
        self.assertEqual(self.metric("b", "tlsedge_fleet_storage_full_reads_total"), 0)

        # A record of another cluster is not trusted: a full read.
        b.stop()
        with open(record) as f:
            other = json.load(f)
        other["cluster_id"] = "1"
        with open(record, "w") as f:
            json.dump(other, f)
        b = self.start_node("b")
        self.wait_for("b", "full reads", lambda: self.metric("b", "tlsedge_fleet_storage_full_reads_total"),
                      1, VISIBLE_WITHIN_S)
        self.assertEqual(b.count_lines(r"/certs resumes from revision"), 0, b.log())
        self.assertEqual(self.serial("b", "shop.test"), self.shop2.serial)

    def test_a_frozen_member_under_a_watch_is_left_for_another(self):
        # Every node lists a follower first: its watches and reads start
        # there. Frozen (SIGSTOP), it keeps the watch's connection open and
        # silent; the liveness read finds it out.
        leader = self.etcd.leader()
        frozen = next(i for i in range(3) if i != leader)
        first = self.etcd.endpoints[frozen]
        endpoints = [first] + [e for e in self.etcd.endpoints if e != first]
        for n in "ab":
            cfg = self.config(n)
            cfg["storage"]["etcd"]["endpoints"] = endpoints
            self.nodes[n] = start_daemon(self, self.tmp, cfg, name=f"node-{n}")
        self.add("a", "shop", self.shop1)
        for n in "ab":
            self.wait_serial(n, "shop.test", self.shop1.serial)
        self.etcd.kill(frozen, signal.SIGSTOP)
        try:
            self.add("a", "shop", self.shop2, "--replace")  # gives up on the frozen member
            self.wait_serial("b", "shop.test", self.shop2.serial,
                             timeout=PROBE_EVERY_S + VISIBLE_WITHIN_S * 4)
        finally:
            self.etcd.kill(frozen, signal.SIGCONT)
        self.assertGreaterEqual(self.nodes["b"].count_lines(
            re.escape(f"etcd member {first} under the watch did not answer a read")), 1)

    def test_a_watch_behind_compaction_reads_everything_again(self):
        a = self.start_node("a")
        self.start_node("b")
        self.add("b", "shop", self.shop1)
        self.wait_serial("a", "shop.test", self.shop1.serial)
        # A stopped while every member restarts: its watch stream has ended
        # when it runs again, and resumes from a revision that the changes
        # made meanwhile and a compaction have taken away.
        a.send_signal(signal.SIGSTOP)
        try:
            for i in range(3):
                self.etcd.kill(i)
            self.etcd.start(0, 1, 2)
            self.add("b", "shop", self.shop2, "--replace")
            self.add("b", "shop", self.shop3, "--replace")
            self.etcd.compact(self.etcd.revision())
        finally:
            a.send_signal(signal.SIGCONT)
        self.wait_serial("a", "shop.test", self.shop3.serial, timeout=VISIBLE_WITHIN_S * 4)
        self.wait_metric("a", "tlsedge_fleet_storage_resyncs_total", 1)
        self.assertGreaterEqual(a.count_lines(r"fell behind etcd's compaction"), 1)


if __name__ == "__main__":
    unittest.main()
