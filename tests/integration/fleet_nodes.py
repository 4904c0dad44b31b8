"""The fixture of the fleet tests (test_fleet.py, test_fleet_sites.py):
a real etcd cluster and tlsedge nodes in fleet mode."""

import os
import time
import unittest
import urllib.error
import urllib.request

from clients import s_client, s_client_leaf
from common import make_tempdir, run, sanitizer, tlsedge_bin
from config import base_config, respond_route, site
from daemon import start_daemon
from etcd import EtcdCluster
from pki import Certs
from scrape import scrape, value

VISIBLE_WITHIN_S = 10.0 if sanitizer() else 5.0  # bounds; the benchmark measures
PROBE_EVERY_S = 10.0  # fleet/etcd_watch.h, kProbeEvery
PREFIX = "/tlsedge-it"
SEALED = b"tlsedge-sealed\x01"


def leaf_pem(leaf):
    """The first certificate of a leaf's chain file, PEM, without its END line."""
    with open(leaf.cert, "rb") as f:
        return f.read().split(b"-----END CERTIFICATE-----")[0]


class FleetNodes(unittest.TestCase):
    """A 3-member etcd cluster (TLS, client certificates), a fleet key, test
    certificates, and tlsedge nodes started on demand sharing etcd; the
    helpers the fleet tests poll and check nodes with. No tests of its own."""

    def setUp(self):
        self.tmp = make_tempdir(self)
        self.etcd = EtcdCluster(self.tmp, members=3, tls=True)
        self.addCleanup(self.etcd.stop)
        self.certs = Certs(os.path.join(self.tmp, "pki"))
        c = self.certs
        self.default = c.leaf("default", ["default.test"])
        self.shop1 = c.leaf("shop1", ["shop.test"])
        self.shop2 = c.leaf("shop2", ["shop.test"])
        self.shop3 = c.leaf("shop3", ["shop.test"])
        self.spare = c.leaf("spare", ["spare.test"])
        self.key_file = os.path.join(self.tmp, "fleet.key")
        res = run([tlsedge_bin(), "fleet-key", "new", "--id", "it1"])
        self.assertEqual(res.returncode, 0, res.stderr)
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(res.stdout)
        self.nodes = {}
        self.ticket_key_rotation = None

    def config(self, name):
        cfg = base_config(
            os.path.join(self.tmp, f"state-{name}"),
            certificates={"default": self.default},
            default_certificate="default",
            ticket_key_rotation=self.ticket_key_rotation,
            sites=[site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")])])
        cfg["storage"] = {"etcd": {
            "endpoints": self.etcd.endpoints,
            "prefix": PREFIX,
            "tls": {"ca": self.etcd.ca_cert, "cert": self.etcd.client_cert,
                    "key": self.etcd.client_key},
            "key_file": self.key_file,
        }}
        return cfg

    def start_node(self, name):
        d = start_daemon(self, self.tmp, self.config(name), name=f"node-{name}")
        self.nodes[name] = d
        return d

    def cert(self, node, *args, expect=0):
        res = run([tlsedge_bin(), "cert", *args, "-c", self.nodes[node].config_path], timeout=60)
        self.assertEqual(res.returncode, expect,
                         f"cert {args} on {node}: exit {res.returncode}\n{res.stdout}\n{res.stderr}")
        return res

    def add(self, node, name, leaf, *extra, expect=0):
        return self.cert(node, "add", name, "--cert", leaf.cert, "--key", leaf.key, *extra,
                         expect=expect)

    def serial(self, node, sni):
        return s_client_leaf(s_client(self.nodes[node].https_port, sni,
                                      ca=self.certs.ca_cert))[0]

    def wait_for(self, node, what, read, want, timeout):
        """Polls read() (bounded) until it returns `want`; fails naming `what`."""
        deadline = time.monotonic() + timeout
        seen = read()
        while seen != want:
            if time.monotonic() > deadline:
                self.fail(f"node {node}: {what} is {seen!r}, not {want!r} after {timeout}s\n"
                          f"{self.nodes[node].log()}")
            time.sleep(0.02)
            seen = read()

    def wait_serial(self, node, sni, serial, timeout=VISIBLE_WITHIN_S):
        self.wait_for(node, f"the serial served for {sni}", lambda: self.serial(node, sni),
                      serial, timeout)

    def wait_file(self, node, name, present, timeout=VISIBLE_WITHIN_S):
        path = os.path.join(self.tmp, f"state-{node}", "certs", name, "fullchain.pem")
        self.wait_for(node, f"{path} present", lambda: os.path.exists(path), present, timeout)

    def metric(self, node, name):
        return value(scrape(self.nodes[node].metrics_address), name)

    def readyz(self, node):
        host, port = self.nodes[node].metrics_address
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric_labelled(self, node, name, **labels):
        return value(scrape(self.nodes[node].metrics_address), name, **labels)

    def wait_metric(self, node, name, want, timeout=VISIBLE_WITHIN_S * 4):
        self.wait_for(node, name, lambda: self.metric(node, name), want, timeout)
