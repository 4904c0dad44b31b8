// renderMetrics (the text a scrape answers), WorkerStats::add (the fold of
// the workers' counters), LatencyHistogram, CertificateStates (expiry
// buckets, renewal failing) and the ACME part.
#include "daemon/metrics.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace tlsedge::daemon {
namespace {

constexpr time_t kNow = 1'800'000'000;
constexpr time_t kDay = CertificateStates::kDay;

bool hasLine(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(WorkerStatsFold, AddsEveryCounter) {
  proxy::WorkerStats a, b;
  a.acceptedTls = 3;
  b.acceptedTls = 4;
  a.handshakes[proxy::WorkerStats::kTls13][1] = 2;
  b.handshakes[proxy::WorkerStats::kTls13][1] = 5;
  a.sniLookups[proxy::WorkerStats::kWildcard] = 1;
  b.sniLookups[proxy::WorkerStats::kWildcard] = 1;
  proxy::WorkerStats::countResponse(a.siteCounts("shop"), 204);
  proxy::WorkerStats::countResponse(b.siteCounts("shop"), 503);
  proxy::WorkerStats::countResponse(b.siteCounts("blog"), 200);
  proxy::WorkerStats::countResponse(b.siteCounts("blog"), 99);   // not a status: not counted
  proxy::WorkerStats::countResponse(b.siteCounts("blog"), 600);  // neither
  a.requestLatency.observe(100);
  b.requestLatency.observe(3'000);
  b.handshakeLatency.observe(20'000'000);
  b.handshakeFailures = 7;
  b.upstreamErrors = 2;
  a.add(b);
  EXPECT_EQ(a.acceptedTls, 7u);
  EXPECT_EQ(a.handshakes[proxy::WorkerStats::kTls13][1], 7u);
  EXPECT_EQ(a.sniLookups[proxy::WorkerStats::kWildcard], 2u);
  EXPECT_EQ(a.sites["shop"][1], 1u);
  EXPECT_EQ(a.sites["shop"][4], 1u);
  EXPECT_EQ(a.sites["blog"][1], 1u);
  const proxy::WorkerStats::StatusCounts total = a.responses();
  EXPECT_EQ(total[1], 2u);
  EXPECT_EQ(total[4], 1u);
  EXPECT_EQ(total[0] + total[2] + total[3], 0u);
  EXPECT_EQ(a.requestLatency.total(), 2u);
  EXPECT_EQ(a.requestLatency.sumUs, 3'100u);
  EXPECT_EQ(a.handshakeLatency.counts.back(), 1u);  // above 10 s: +Inf
  EXPECT_EQ(a.handshakeFailures, 7u);
  EXPECT_EQ(a.upstreamErrors, 2u);
}

TEST(LatencyHistogram, BoundsAreInclusiveAndOrdered) {
  for (size_t i = 1; i < proxy::LatencyHistogram::kBoundsUs.size(); ++i) {
    EXPECT_LT(proxy::LatencyHistogram::kBoundsUs[i - 1], proxy::LatencyHistogram::kBoundsUs[i]);
  }
  proxy::LatencyHistogram h;
  h.observe(0);
  h.observe(250);  // le="0.00025" (Prometheus buckets are <=)
  h.observe(251);
  h.observe(10'000'000);
  h.observe(10'000'001);
  EXPECT_EQ(h.counts[0], 2u);
  EXPECT_EQ(h.counts[1], 1u);
  EXPECT_EQ(h.counts[proxy::LatencyHistogram::kBoundsUs.size() - 1], 1u);
  EXPECT_EQ(h.counts.back(), 1u);
  EXPECT_EQ(h.total(), 5u);
}

TEST(CertificateStates, BucketsDoNotOverlapAndOnlyTheSoonOnesGetASeries) {
  CertificateStates s;
  s.count("far", kNow + 90 * kDay, kNow);
  s.count("edge14", kNow + 14 * kDay, kNow);  // exactly 14 days left: expiring_14d
  s.count("five", kNow + 5 * kDay, kNow);
  s.count("hours", kNow + 3600, kNow);
  s.count("gone", kNow - 1, kNow);
  s.count("now", kNow, kNow);  // valid through not_after itself (RFC 5280): expiring_1d
  EXPECT_EQ(s.valid, 1u);
  EXPECT_EQ(s.expiring14d, 1u);
  EXPECT_EQ(s.expiring7d, 1u);
  EXPECT_EQ(s.expiring1d, 2u);
  EXPECT_EQ(s.expired, 1u);
  ASSERT_EQ(s.soon.size(), 5u);
  for (const auto& [name, when] : s.soon) EXPECT_NE(name, "far");
}

TEST(CertificateStates, RenewalFailingGetsASeriesWhateverItsExpiry) {
  CertificateStates s;
  s.count("far", kNow + 90 * kDay, kNow);
  s.count("far-failing", kNow + 60 * kDay, kNow, true);
  s.count("soon-failing", kNow + 3 * kDay, kNow, true);
  EXPECT_EQ(s.valid, 2u);  // the expiry states still partition the certificates
  EXPECT_EQ(s.expiring7d, 1u);
  EXPECT_EQ(s.renewalFailing, 2u);
  ASSERT_EQ(s.soon.size(), 2u);
  for (const auto& [name, when] : s.soon) EXPECT_NE(name, "far");
}

TEST(AcmeMetrics, RenewalFailingNamesOnlyStoredFailingSites) {
  AcmeMetrics a;
  acme::SiteStatus ok, failing, failingUnstored;
  ok.site = "ok";
  ok.certificate = "acme-ok";
  ok.stored = true;
  failing = ok;
  failing.site = "bad";
  failing.certificate = "acme-bad";
  failing.failures = 2;
  failingUnstored = failing;
  failingUnstored.site = "new";
  failingUnstored.certificate = "acme-new";
  failingUnstored.stored = false;  // nothing serving yet: nothing to fail renewing
  a.sites = {ok, failing, failingUnstored};
  EXPECT_EQ(a.renewalFailing(), std::set<std::string>{"acme-bad"});
}

TEST(RenderMetrics, NamesTypesAndFoldedValues) {
  MetricsInput in;
  in.traffic.acceptedTls = 12;
  in.traffic.acceptedPlain = 3;
  in.traffic.handshakes[proxy::WorkerStats::kTls12][0] = 4;
  in.traffic.handshakeFailures = 2;
  in.traffic.sniLookups[proxy::WorkerStats::kSiteFallback] = 6;
  proxy::WorkerStats::countResponse(in.traffic.siteCounts("shop"), 200);
  proxy::WorkerStats::countResponse(in.traffic.siteCounts(proxy::WorkerStats::kNoSite), 301);
  in.traffic.requestLatency.observe(700);
  in.traffic.requestLatency.observe(2'000'000);
  in.acme.ordersSucceeded = 3;
  in.acme.ordersFailed = {{"rateLimited", 2}, {"other", 1}};
  acme::SiteStatus site;
  site.site = "shop";
  site.failures = 4;
  site.nextRenewal = kNow + 60;
  in.acme.sites = {site};
  in.activeConnections = 9;
  in.workers = 2;
  in.reloadsFailed = 1;
  in.swaps.refused = 5;
  in.certificates.count("soon.example", kNow + 5 * kDay, kNow);
  in.certificates.count("far", kNow + 50 * kDay, kNow);
  in.version = "1.2.3";
  const std::string text = renderMetrics(in, 0);

  EXPECT_TRUE(hasLine(text, "# TYPE tlsedge_connections_accepted_total counter")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_connections_accepted_total{listener=\"https\"} 12")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_connections_accepted_total{listener=\"http\"} 3")) << text;
  EXPECT_TRUE(hasLine(text, "# TYPE tlsedge_connections_active gauge")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_connections_active 9")) << text;
  EXPECT_TRUE(hasLine(text,
                      "tlsedge_tls_handshakes_total{result=\"success\",resumed=\"false\","
                      "version=\"TLSv1.2\"} 4"))
      << text;
  EXPECT_TRUE(hasLine(text,
                      "tlsedge_tls_handshakes_total{result=\"failure\",resumed=\"false\","
                      "version=\"unknown\"} 2"))
      << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_sni_lookups_total{outcome=\"site_fallback\"} 6")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_http_requests_total{code=\"2xx\",site=\"shop\"} 1")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_http_requests_total{code=\"3xx\",site=\"(none)\"} 1")) << text;
  EXPECT_TRUE(hasLine(text, "# TYPE tlsedge_http_request_duration_seconds histogram")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_http_request_duration_seconds_bucket{le=\"0.0005\"} 0"))
      << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_http_request_duration_seconds_bucket{le=\"0.001\"} 1"))
      << text;  // cumulative
  EXPECT_TRUE(hasLine(text, "tlsedge_http_request_duration_seconds_bucket{le=\"2.5\"} 2")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_http_request_duration_seconds_bucket{le=\"+Inf\"} 2")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_http_request_duration_seconds_count 2")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_http_request_duration_seconds_sum 2.0007")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_tls_handshake_duration_seconds_count 0")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_acme_orders_total{result=\"success\"} 3")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_acme_orders_total{result=\"failure\"} 3")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_acme_order_failures_total{type=\"rateLimited\"} 2")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_acme_renewal_failures{site=\"shop\"} 4")) << text;
  EXPECT_TRUE(hasLine(
      text, "tlsedge_acme_next_renewal_seconds{site=\"shop\"} " + std::to_string(kNow + 60)))
      << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_certificates_renewal_failing 0")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_config_reloads_total{result=\"failure\"} 1")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_config_last_reload_successful 1")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_certificate_swaps_total{result=\"refused\"} 5")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_certificates{state=\"expiring_7d\"} 1")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_certificates{state=\"valid\"} 1")) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_certificate_not_after_seconds{name=\"soon.example\"} " +
                                std::to_string(kNow + 5 * kDay)))
      << text;
  EXPECT_EQ(text.find("name=\"far\""), std::string::npos) << text;
  EXPECT_TRUE(hasLine(text, "tlsedge_build_info{version=\"1.2.3\"} 1")) << text;
  // No /proc read in the input: no process metrics rather than zeros.
  EXPECT_EQ(text.find("process_"), std::string::npos) << text;
}

TEST(RenderMetrics, ProcessMetricsFromProcSelf) {
  MetricsInput in;
  in.process = readProcessStats();
  ASSERT_TRUE(in.process.ok);
  EXPECT_GT(in.process.residentBytes, 1024.0 * 1024);
  EXPECT_GE(in.process.openFds, 3);
  EXPECT_GT(in.process.startTimeSeconds, 1.6e9);
  const std::string text = renderMetrics(in, 0);
  EXPECT_TRUE(hasLine(text, "# TYPE process_cpu_seconds_total counter")) << text;
  EXPECT_TRUE(hasLine(text, "# TYPE process_resident_memory_bytes gauge")) << text;
}

}  // namespace
}  // namespace tlsedge::daemon
