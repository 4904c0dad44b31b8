"""A real Prometheus server scrapes tlsedge's /metrics on loopback; the
scraped series are read back through Prometheus's HTTP API: the target is
up, handshakes and per-site requests move by what was sent, the latency
histograms have those requests, and docs/prometheus/alerts.yml loads and
evaluates (a certificate with 5 days left makes its alert pending)."""

import os
import unittest

from clients import https_request
from common import make_tempdir
from config import base_config, respond_route, site
from daemon import start_daemon
from pki import Certs
from prometheus import ALERTS, Prometheus


def total(result):
    return sum(v for _, v in result)


class PrometheusScrapeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        later = cls.certs.leaf("later", ["a.test"], days=30)
        soon = cls.certs.leaf("soon", ["soon.test"], days=5)
        cfg = base_config(
            os.path.join(cls.tmp, "state"), certificates={"later": later, "soon": soon},
            sites=[site("a", ["a.test"], [respond_route("/", 200, "hello\n")], "later"),
                   site("soon", ["soon.test"], [respond_route("/", 200, "soon\n")], "soon")])
        cls.daemon = start_daemon(cls, cls.tmp, cfg)
        if cls.daemon.metrics_address is None:
            raise AssertionError(f"no metrics listening line\n{cls.daemon.log()}")
        host, port = cls.daemon.metrics_address
        cls.prom = Prometheus(cls, cls.tmp, [f"{host}:{port}"], rule_files=[ALERTS])
        cls.instance = f"{host}:{port}"

    def test_target_is_up(self):
        result = self.prom.wait_for('up{job="tlsedge"}', lambda r: total(r) == 1)
        self.assertEqual(result[0][0]["instance"], self.instance)
        targets = self.prom.api("targets")["activeTargets"]
        self.assertEqual([t["health"] for t in targets], ["up"], targets)

    def test_handshakes_requests_and_latency_reach_prometheus(self):
        # Wait for a first scrape so the increase is measured from it.
        self.prom.wait_for('tlsedge_workers', lambda r: total(r) == 2)
        before = total(self.prom.query('sum(tlsedge_tls_handshakes_total{result="success"})'))
        n = 4
        for _ in range(n):
            self.assertEqual(https_request(self.daemon.https_port, "a.test",
                                           ca=self.certs.ca_cert).status, 200)
        self.prom.wait_for('sum(tlsedge_tls_handshakes_total{result="success"})',
                           lambda r: total(r) >= before + n)
        requests = self.prom.wait_for(
            'tlsedge_http_requests_total{site="a",code="2xx"}', lambda r: total(r) >= n)
        self.assertEqual(requests[0][0]["instance"], self.instance)
        self.prom.wait_for('tlsedge_http_request_duration_seconds_count', lambda r: total(r) >= n)
        self.prom.wait_for('tlsedge_tls_handshake_duration_seconds_count',
                           lambda r: total(r) >= n)
        # Buckets are cumulative: every request is in +Inf, and on loopback
        # a `respond` route is answered within 10 s.
        bucket = "tlsedge_http_request_duration_seconds_bucket"
        inf = total(self.prom.query(bucket + '{le="+Inf"}'))
        ten = total(self.prom.query(bucket + '{le=~"10|10.0"}'))
        self.assertGreaterEqual(inf, n)
        self.assertEqual(ten, inf)
        q = self.prom.query(
            'histogram_quantile(0.5, rate(tlsedge_http_request_duration_seconds_bucket[1m]))')
        self.assertEqual(len(q), 1, q)

    def test_certificate_expiry_series_and_alert(self):
        series = self.prom.wait_for('tlsedge_certificate_not_after_seconds',
                                    lambda r: len(r) == 1)
        self.assertEqual(series[0][0]["name"], "soon")
        # The rules file loaded and evaluates: the 5-day certificate's alert
        # is pending (its `for: 5m` has not passed), the others are silent.
        groups = self.prom.api("rules")["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        self.assertIn("TlsedgeCertificateExpiringVerySoon", rules)
        self.assertTrue(all(r["health"] != "err" for r in rules.values()), rules)
        alerts = self.prom.wait_for('ALERTS{alertname="TlsedgeCertificateExpiringVerySoon"}',
                                    lambda r: len(r) == 1)
        labels = alerts[0][0]
        self.assertEqual((labels["name"], labels["alertstate"], labels["severity"]),
                         ("soon", "pending", "critical"))
        others = self.prom.query('ALERTS{alertname!="TlsedgeCertificateExpiringVerySoon"}')
        self.assertEqual(others, [])


if __name__ == "__main__":
    unittest.main()
