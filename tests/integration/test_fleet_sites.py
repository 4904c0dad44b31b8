"""Sites managed at runtime, shared by the fleet (issue 20, docs/sites.md):
two tlsedge nodes on a real 3-member etcd cluster. Every check of what a
node serves is a real request (curl) or handshake (openssl s_client),
polled (bounded):

- a site created through node A's admin API is served by B with its store
  certificate (uploaded through A), kept in etcd as plain JSON and in each
  node's state directory, and listed by B as an API site; changed through
  B (a new host), A serves the new host; removed through A, neither node
  serves it and both copies are gone;
- a site that B's own YAML refuses (a host of a YAML site of B's) is
  served by A and left out by B alone (logged, counted), which serves its
  YAML site and the fleet's other sites and changes, also after a
  restart, until the site is removed through A;
- two sites claiming one host (as two nodes' PUTs at once can leave in
  etcd): every node serves the first by name and leaves out the other,
  serves the fleet's other changes meanwhile, and the one left out is
  removed through the API;
- a node restarted while etcd is down serves the API sites from its
  state directory; a change through it is refused meanwhile (500, "fleet
  storage unreachable") and nothing of it is served."""

import json
import os
import unittest

from clients import curl, curl_https
from config import respond_route, site
from fleet_nodes import PREFIX, VISIBLE_WITHIN_S, FleetNodes


class FleetSitesTest(FleetNodes):

    def setUp(self):
        super().setUp()
        self.news = self.certs.leaf("news", ["news.test", "www.news.test"])

    def config(self, name):
        cfg = super().config(name)
        if name == "b":  # B alone serves local.test (default certificate), from its YAML
            cfg["sites"].append(site("local", ["local.test"], [respond_route("/", 200, "b\n")]))
        return cfg

    def api(self, node, method, name="", body=None):
        """The admin API of `node` over its Unix socket: (status, JSON)."""
        sock = os.path.join(self.tmp, f"state-{node}", "admin.sock")
        args = ["--unix-socket", sock, "-w", "\n%{http_code}", "-X", method]
        if body is not None:
            args += ["--data-binary", json.dumps(body)]
        res = curl([*args, "http://tlsedge/v1/sites" + (f"/{name}" if name else "")])
        text, _, code = res.stdout.rpartition("\n")
        return int(code), json.loads(text) if text else None

    def get(self, node, host, verify=True):
        """(status, body) of https://HOST/ on `node`; status 0 when the
        handshake fails (no certificate for HOST, unless not `verify`)."""
        _, status, body = curl_https(self.nodes[node].https_port, host, ca=self.certs.ca_cert,
                                     extra=[] if verify else ["-k"], verbose=False)
        return status, body

    def wait_get(self, node, host, want, timeout=VISIBLE_WITHIN_S, verify=True):
        self.wait_for(node, f"GET https://{host}/", lambda: self.get(node, host, verify), want,
                      timeout)

    def news_site(self, hosts):
        return {"hosts": hosts, "tls": {"certificate": "news"},
                "routes": [{"path": "/", "respond": {"status": 200, "body": "news\n"}}]}

    def site_file(self, node, name):
        return os.path.join(self.tmp, f"state-{node}", "sites", name, "site.json")

    def two_nodes_with_news(self):
        """Nodes A and B; the store certificate `news` uploaded through A;
        site `news` (news.test, bound to it) created through A's admin API
        and served by B."""
        for n in "ab":
            self.start_node(n)
        self.add("a", "news", self.news)
        for n in "ab":  # a site binding it is checked against the node's copy
            self.wait_file(n, "news", True)
        status, made = self.api("a", "PUT", "news", self.news_site(["news.test"]))
        self.assertEqual(status, 201, made)
        self.wait_get("b", "news.test", (200, "news\n"))

    def test_a_site_changed_through_one_node_is_served_by_every_node(self):
        self.two_nodes_with_news()
        for n in "ab":
            self.wait_get(n, "news.test", (200, "news\n"))
            self.wait_for(n, "the site's copy", lambda: os.path.exists(self.site_file(n, "news")),
                          True, VISIBLE_WITHIN_S)
        self.assertEqual(self.serial("b", "news.test"), self.news.serial)
        stored = json.loads(self.etcd.get(f"{PREFIX}/sites/news/site.json"))
        self.assertEqual(stored["hosts"], ["news.test"])
        status, listed = self.api("b", "GET")
        self.assertEqual({(s["name"], s["source"]) for s in listed},
                         {("shop", "config"), ("local", "config"), ("news", "api")})

        # Changed through B: A serves the new host.
        status, _ = self.api("b", "PUT", "news", self.news_site(["news.test", "www.news.test"]))
        self.assertEqual(status, 200)
        for n in "ab":
            self.wait_get(n, "www.news.test", (200, "news\n"))

        # Removed through A: served by neither, and both copies are gone.
        self.assertEqual(self.api("a", "DELETE", "news")[0], 200)
        for n in "ab":
            self.wait_get(n, "news.test", (0, ""))
            self.wait_for(n, "the site's copy", lambda: os.path.exists(self.site_file(n, "news")),
                          False, VISIBLE_WITHIN_S)
            self.assertEqual(self.api(n, "GET", "news")[0], 404)
        self.assertEqual(self.etcd.range_prefix(f"{PREFIX}/sites/".encode()), [])

    def test_a_site_one_node_refuses_is_left_out_there_alone(self):
        self.two_nodes_with_news()
        b = self.nodes["b"]
        # local.test is a YAML site of B's only: A takes it, B leaves it out.
        taken = {"hosts": ["local.test"], "routes": [{"path": "/", "respond": {"status": 200}}]}
        self.assertEqual(self.api("a", "PUT", "taker", taken)[0], 201)
        left_out = r"sites: 1 of those \S+/sites holds are not served \(the others are\): .*local\.test"
        self.wait_for("b", "the site left out", lambda: b.count_lines(left_out) >= 1, True,
                      VISIBLE_WITHIN_S)
        self.assertEqual(self.metric("b", "tlsedge_fleet_sites_refused"), 1)
        self.assertEqual(self.metric("a", "tlsedge_fleet_sites_refused"), 0)
        self.assertEqual(self.get("b", "local.test", verify=False), (200, "b\n"))
        self.assertEqual(self.get("b", "news.test"), (200, "news\n"))
        self.assertEqual(self.api("b", "GET", "taker")[0], 404)
        # The fleet's other changes reach B meanwhile.
        self.assertEqual(self.api("a", "PUT", "news", self.news_site(["www.news.test"]))[0], 200)
        self.wait_get("b", "www.news.test", (200, "news\n"))
        # Restarted, B starts with the sites that fit (not refused whole).
        b.stop()
        b = self.start_node("b")
        self.assertEqual(b.count_lines(left_out), 1, b.log())
        self.assertEqual(self.get("b", "local.test", verify=False), (200, "b\n"))
        self.assertEqual(self.get("b", "www.news.test"), (200, "news\n"))
        self.assertEqual(self.metric("b", "tlsedge_fleet_sites_refused"), 1)
        # Removed through A: nothing is left out any more.
        self.assertEqual(self.api("a", "DELETE", "taker")[0], 200)
        self.wait_for("b", "the metric", lambda: self.metric("b", "tlsedge_fleet_sites_refused"),
                      0, VISIBLE_WITHIN_S)
        self.assertEqual(self.get("b", "local.test", verify=False), (200, "b\n"))

    def test_two_sites_claiming_one_host_the_first_by_name_wins_on_every_node(self):
        # As two nodes' PUTs at once can leave in etcd (each checked against
        # what its node served): written here straight into etcd.
        self.two_nodes_with_news()
        claim = {"hosts": ["news.test"], "routes": [{"path": "/", "respond": {"body": "zz\n"}}]}
        self.etcd.put(f"{PREFIX}/sites/zz/site.json", json.dumps(claim))
        for n in "ab":
            self.wait_for(n, "the site left out",
                          lambda: self.metric(n, "tlsedge_fleet_sites_refused"), 1,
                          VISIBLE_WITHIN_S)
            self.assertEqual(self.get(n, "news.test"), (200, "news\n"))  # `news` < `zz`
        # The fleet's other changes go on; the one left out is removed
        # through the API like any other.
        other = {"hosts": ["other.test"], "routes": [{"path": "/", "respond": {"body": "o\n"}}]}
        self.assertEqual(self.api("a", "PUT", "other", other)[0], 201)
        self.wait_get("b", "other.test", (200, "o\n"), verify=False)
        self.assertEqual(self.api("b", "DELETE", "zz")[0], 200)
        for n in "ab":
            self.wait_for(n, "nothing left out",
                          lambda: self.metric(n, "tlsedge_fleet_sites_refused"), 0,
                          VISIBLE_WITHIN_S)
        self.assertEqual(self.etcd.range_prefix(f"{PREFIX}/sites/zz/".encode()), [])

    def test_a_node_restarted_while_etcd_is_down_serves_its_copy(self):
        self.two_nodes_with_news()
        self.wait_for("b", "the site's copy", lambda: os.path.exists(self.site_file("b", "news")),
                      True, VISIBLE_WITHIN_S)
        self.nodes["b"].stop()
        for i in range(3):
            self.etcd.kill(i)
        self.start_node("b")
        self.assertEqual(self.get("b", "news.test"), (200, "news\n"))
        # A change cannot be kept meanwhile: refused, nothing served.
        status, error = self.api("b", "PUT", "more", self.news_site(["www.news.test"]))
        self.assertEqual(status, 500, error)
        self.assertIn("fleet storage unreachable", error["error"])
        self.assertEqual(self.get("b", "www.news.test"), (0, ""))
        self.assertEqual(self.api("b", "GET", "more")[0], 404)


if __name__ == "__main__":
    unittest.main()
