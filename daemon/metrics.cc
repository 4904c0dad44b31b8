#include "daemon/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace tlsedge::daemon {
namespace {

using prometheus::Labels;

double toDouble(uint64_t value) { return static_cast<double>(value); }

// One family per name, series added as the scrape finds them.
class Families {
 public:
  prometheus::Family<prometheus::Counter>& counter(const std::string& name,
                                                   const std::string& help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry_);
  }
  prometheus::Family<prometheus::Gauge>& gauge(const std::string& name, const std::string& help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry_);
  }
  void count(const std::string& name, const std::string& help, uint64_t value) {
    counter(name, help).Add({}).Increment(toDouble(value));
  }
  void set(const std::string& name, const std::string& help, double value) {
    gauge(name, help).Add({}).Set(value);
  }
  // A LatencyHistogram, in seconds.
  void histogram(const std::string& name, const std::string& help,
                 const proxy::LatencyHistogram& h) {
    prometheus::Histogram::BucketBoundaries bounds;
    for (uint64_t us : proxy::LatencyHistogram::kBoundsUs)
      bounds.push_back(static_cast<double>(us) / 1e6);
    std::vector<double> counts(h.counts.begin(), h.counts.end());
    prometheus::BuildHistogram()
        .Name(name)
        .Help(help)
        .Register(registry_)
        .Add({}, std::move(bounds))
        .ObserveMultiple(counts, static_cast<double>(h.sumUs) / 1e6);
  }
  std::string text() const { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

 private:
  prometheus::Registry registry_;
};

void addHttp2(Families& f, const proxy::WorkerStats& t);
void addClientLimits(Families& f, const proxy::WorkerStats& t);

void addTraffic(Families& f, const MetricsInput& in) {
  const proxy::WorkerStats& t = in.traffic;
  auto& accepted = f.counter("tlsedge_connections_accepted_total",
                             "Client connections accepted, by listener kind.");
  accepted.Add({{"listener", "https"}}).Increment(toDouble(t.acceptedTls));
  accepted.Add({{"listener", "http"}}).Increment(toDouble(t.acceptedPlain));
  f.set("tlsedge_connections_active", "Client connections open now (answering workers).",
        toDouble(in.activeConnections));

  auto& handshakes = f.counter("tlsedge_tls_handshakes_total",
                               "TLS handshakes finished, by result, version and resumption.");
  const char* versions[proxy::WorkerStats::kTlsVersions] = {"TLSv1.2", "TLSv1.3"};
  for (size_t v = 0; v < proxy::WorkerStats::kTlsVersions; ++v) {
    for (size_t r = 0; r < 2; ++r) {
      handshakes
          .Add({{"result", "success"}, {"version", versions[v]}, {"resumed", r ? "true" : "false"}})
          .Increment(toDouble(t.handshakes[v][r]));
    }
  }
  handshakes.Add({{"result", "failure"}, {"version", "unknown"}, {"resumed", "false"}})
      .Increment(toDouble(t.handshakeFailures));
  handshakes.Add({{"result", "timeout"}, {"version", "unknown"}, {"resumed", "false"}})
      .Increment(toDouble(t.handshakeTimeouts));

  auto& sni = f.counter("tlsedge_sni_lookups_total",
                        "Certificate selections for a TLS ClientHello, by outcome.");
  const char* outcomes[proxy::WorkerStats::kSniOutcomes] = {"exact", "wildcard", "site_fallback",
                                                            "default", "miss"};
  for (size_t i = 0; i < proxy::WorkerStats::kSniOutcomes; ++i) {
    sni.Add({{"outcome", outcomes[i]}}).Increment(toDouble(t.sniLookups[i]));
  }

  auto& requests = f.counter("tlsedge_http_requests_total",
                             "HTTP requests answered, by site and status class of the response.");
  for (const auto& [site, counts] : t.sites) {
    for (size_t i = 0; i < counts.size(); ++i) {
      requests.Add({{"site", site}, {"code", std::to_string(i + 1) + "xx"}})
          .Increment(toDouble(counts[i]));
    }
  }
  f.histogram("tlsedge_http_request_duration_seconds",
              "From the request head parsed to the last response byte queued, seconds.",
              t.requestLatency);
  f.histogram("tlsedge_tls_handshake_duration_seconds",
              "From accept to the TLS handshake done (client round trips included), seconds; "
              "successful handshakes only.",
              t.handshakeLatency);
  f.histogram("tlsedge_upstream_response_duration_seconds",
              "From the request head parsed to the origin's response head (connecting, sending "
              "the request, the origin's time), seconds; proxied requests only.",
              t.upstreamLatency);
  auto& timeouts = f.counter("tlsedge_client_timeouts_total",
                             "Client connections cut short by a limits timeout, by phase.");
  timeouts.Add({{"phase", "header"}}).Increment(toDouble(t.headerTimeouts));
  timeouts.Add({{"phase", "body"}}).Increment(toDouble(t.bodyTimeouts));
  timeouts.Add({{"phase", "send"}}).Increment(toDouble(t.sendTimeouts));
  timeouts.Add({{"phase", "idle"}}).Increment(toDouble(t.idleTimeouts));
  f.count("tlsedge_upstream_errors_total",
          "Origin exchanges that failed (connect, read, send, timeout) before or during the "
          "response.",
          t.upstreamErrors);
  auto& proxy = f.counter("tlsedge_proxy_protocol_headers_total",
                          "PROXY protocol headers on listeners with proxy_protocol, by result: "
                          "accepted, malformed (or missing from a trusted source: the connection "
                          "is closed), untrusted (sent by a source not in "
                          "proxy_protocol.trusted: closed).");
  const char* const kProxyResults[] = {"accepted", "malformed", "untrusted"};
  for (size_t i = 0; i < t.proxyHeaders.size(); ++i) {
    proxy.Add({{"result", kProxyResults[i]}}).Increment(toDouble(t.proxyHeaders[i]));
  }
  auto& connections = f.counter(
      "tlsedge_upstream_connections_total",
      "Origin connections an exchange used, by how: opened (a connect started) or reused (an "
      "idle pooled connection taken).");
  connections.Add({{"how", "opened"}}).Increment(toDouble(t.upstreamConnectionsOpened));
  connections.Add({{"how", "reused"}}).Increment(toDouble(t.upstreamConnectionsReused));
  auto& invalid = f.counter("tlsedge_upstream_invalid_responses_total",
                            "Origin responses refused (502) or cut (connection closed), by "
                            "reason: a head over max_response_header_size or "
                            "max_response_headers, not valid HTTP/1.1, bytes after a complete "
                            "response (never relayed).");
  const char* const kReasons[] = {"head_too_large", "malformed", "bytes_after_response"};
  for (size_t i = 0; i < t.upstreamInvalidResponses.size(); ++i) {
    invalid.Add({{"reason", kReasons[i]}}).Increment(toDouble(t.upstreamInvalidResponses[i]));
  }
  f.count("tlsedge_redirects_total", "Redirects from http to https sent.", t.redirects);
  f.count("tlsedge_misdirected_requests_total",
          "Requests answered 421: the name is not covered by the certificate the connection's "
          "handshake served (a coalesced HTTP/2 connection).",
          t.misdirected);
  f.count("tlsedge_acme_challenges_served_total", "ACME http-01 key authorizations served.",
          t.challengesServed);
  f.count("tlsedge_accept_pauses_total",
          "Times accepting paused at limits.max_connections or limits.max_handshakes.",
          t.acceptPauses);
  addClientLimits(f, t);
  addHttp2(f, t);
}

void addClientLimits(Families& f, const proxy::WorkerStats& t) {
  auto& limited = f.counter("tlsedge_client_limited_total",
                            "What limits.per_client refused, by limit: connections, handshakes "
                            "and connection_rate (the connection was reset at once), "
                            "request_rate (the request was answered 429).");
  for (size_t i = 0; i < proxy::ClientTable::kLimits; ++i) {
    limited.Add({{"limit", proxy::ClientTable::kLimitNames[i]}})
        .Increment(toDouble(t.clientLimited[i]));
  }
  f.set("tlsedge_clients_tracked",
        "Clients (addresses, IPv6 networks) the per-client limits hold an entry for, in all "
        "workers.",
        toDouble(t.clientsTracked));
  f.count("tlsedge_client_evictions_total",
          "Idle clients forgotten for room (limits.per_client.table_size).", t.clientEvictions);
}

void addHttp2(Families& f, const proxy::WorkerStats& t) {
  using W = proxy::WorkerStats;
  auto& byProtocol = f.counter("tlsedge_http_requests_by_protocol_total",
                               "HTTP request heads received, by the protocol that carried them.");
  const char* protocols[W::kProtocols] = {"HTTP/1.0", "HTTP/1.1", "HTTP/2"};
  for (size_t i = 0; i < W::kProtocols; ++i) {
    byProtocol.Add({{"protocol", protocols[i]}}).Increment(toDouble(t.requests[i]));
  }
  f.count("tlsedge_http2_connections_total", "Client connections that negotiated HTTP/2 (h2).",
          t.http2Connections);
  f.count("tlsedge_http2_streams_total", "HTTP/2 streams opened by clients.", t.http2Streams);
  f.set("tlsedge_http2_streams_open", "HTTP/2 streams open now.",
        toDouble(t.http2Streams - t.http2StreamsClosed));
  auto& resets = f.counter("tlsedge_http2_resets_total", "HTTP/2 RST_STREAM frames, by direction.");
  resets.Add({{"direction", "received"}}).Increment(toDouble(t.http2ResetsReceived));
  resets.Add({{"direction", "sent"}}).Increment(toDouble(t.http2ResetsSent));
  auto& goaways = f.counter("tlsedge_http2_goaways_total",
                            "HTTP/2 GOAWAY frames sent, by cause: drain (reload, upgrade, "
                            "shutdown), idle (keepalive_timeout), calm (too many stream resets "
                            "and errors: ENHANCE_YOUR_CALM), protocol (the peer broke HTTP/2).");
  f.count("tlsedge_http2_floods_total",
          "HTTP/2 connections closed at once: frames whose answers the client does not read "
          "(SETTINGS, PING) piled up, or a header block far past the limit (an HPACK bomb).",
          t.http2Floods);
  const char* causes[W::kGoaways] = {"drain", "idle", "calm", "protocol"};
  for (size_t i = 0; i < W::kGoaways; ++i) {
    goaways.Add({{"cause", causes[i]}}).Increment(toDouble(t.http2Goaways[i]));
  }
}

void addAcme(Families& f, const AcmeMetrics& acme) {
  auto& orders =
      f.counter("tlsedge_acme_orders_total", "ACME certificate orders ended, by result.");
  uint64_t failed = 0;
  for (const auto& [kind, n] : acme.ordersFailed) failed += n;
  orders.Add({{"result", "success"}}).Increment(toDouble(acme.ordersSucceeded));
  orders.Add({{"result", "failure"}}).Increment(toDouble(failed));
  auto& failures = f.counter(
      "tlsedge_acme_order_failures_total",
      "Failed ACME orders, by the CA's problem type (RFC 8555 section 6.7; other: none given).");
  for (const auto& [kind, n] : acme.ordersFailed) {
    failures.Add({{"type", kind}}).Increment(toDouble(n));
  }
  auto& consecutive =
      f.gauge("tlsedge_acme_renewal_failures",
              "Consecutive failed orders of each ACME site (0: the last succeeded).");
  auto& next = f.gauge("tlsedge_acme_next_renewal_seconds",
                       "When each ACME site's next order is planned (Unix time).");
  for (const auto& s : acme.sites) {
    consecutive.Add({{"site", s.site}}).Set(s.failures);
    if (s.nextRenewal != 0) next.Add({{"site", s.site}}).Set(static_cast<double>(s.nextRenewal));
  }
}

void addControl(Families& f, const MetricsInput& in) {
  auto& swaps = f.counter("tlsedge_certificate_swaps_total",
                          "Certificate file changes seen by the watcher, by result.");
  swaps.Add({{"result", "swapped"}}).Increment(toDouble(in.swaps.swapped));
  swaps.Add({{"result", "refused"}}).Increment(toDouble(in.swaps.refused));
  swaps.Add({{"result", "deferred"}}).Increment(toDouble(in.swaps.deferred));
  swaps.Add({{"result", "unchanged"}}).Increment(toDouble(in.swaps.unchanged));
  auto& store = f.counter("tlsedge_certificate_store_changes_total",
                          "State directory store entry changes seen by the watcher, by result.");
  store.Add({{"result", "applied"}}).Increment(toDouble(in.swaps.storeApplied));
  store.Add({{"result", "refused"}}).Increment(toDouble(in.swaps.storeRefused));
  store.Add({{"result", "unchanged"}}).Increment(toDouble(in.swaps.storeUnchanged));
  auto& reloads = f.counter("tlsedge_config_reloads_total", "SIGHUP reloads, by result.");
  reloads.Add({{"result", "success"}}).Increment(toDouble(in.reloadsSucceeded));
  reloads.Add({{"result", "failure"}}).Increment(toDouble(in.reloadsFailed));
  auto& refused = f.counter("tlsedge_admin_refused_total",
                            "Requests the HTTPS management API refused, by reason: "
                            "unauthenticated (401), forbidden (403, out of scope), "
                            "rate_limited (429, too many failures from the address).");
  refused.Add({{"reason", "unauthenticated"}}).Increment(toDouble(in.adminRefused.unauthenticated));
  refused.Add({{"reason", "forbidden"}}).Increment(toDouble(in.adminRefused.forbidden));
  refused.Add({{"reason", "rate_limited"}}).Increment(toDouble(in.adminRefused.rateLimited));
  f.set("tlsedge_config_last_reload_successful",
        "1 if the last SIGHUP reload was applied (or none was tried), 0 if it was refused.",
        in.lastReloadSucceeded ? 1 : 0);

  if (in.fleet) {
    const fleet::ReplicaStats& r = *in.fleet;
    const fleet::ReplicaStats sites = in.fleetSites.value_or(fleet::ReplicaStats{});
    f.set("tlsedge_fleet_storage_connected",
          "1 while the node's copies (certificates, and the admin API's sites) are in sync "
          "with the fleet's etcd and watching it, 0 while etcd cannot be reached (the node "
          "serves what its state directory holds).",
          r.connected && (!in.fleetSites || sites.connected) ? 1 : 0);
    f.set("tlsedge_fleet_sites_refused",
          "Sites of the admin API copied from the fleet that this node leaves out: they do not "
          "fit its configuration or name a certificate it lacks (its log says why); the "
          "others are served.",
          toDouble(in.fleetSitesRefused));
    f.set("tlsedge_fleet_storage_revision", "The etcd revision the node's store reflects.",
          toDouble(r.revision));
    f.count("tlsedge_fleet_storage_full_reads_total",
            "Full reads of the fleet's store: at start unless the state directory's copy "
            "resumes from the revision it recorded, and when the watch fell behind compaction "
            "(those also in ..._resyncs_total).",
            r.fullSyncs);
    f.count("tlsedge_fleet_storage_resyncs_total",
            "Full reads because the watch's revision had been compacted away.", r.resyncs);
    f.count("tlsedge_fleet_storage_entries_written_total",
            "Certificate entries the replica wrote to or removed from the state directory.",
            r.written);
    f.count("tlsedge_fleet_storage_failures_total",
            "Failed reads and watches of etcd, and entries (certificates, sites) that could not "
            "be copied.",
            r.failures + sites.failures);
    auto& requests = f.counter("tlsedge_fleet_etcd_requests_total",
                               "Requests this node made to etcd, by kind: unary calls (range, "
                               "txn, lease; each endpoint tried counts) and watch streams opened.");
    requests.Add({{"kind", "unary"}}).Increment(toDouble(in.etcdRequests));
    requests.Add({{"kind", "watch"}}).Increment(toDouble(in.etcdWatchStreams));
  }

  f.set("tlsedge_certificate_store_generation",
        "Certificate snapshots published to the workers since start (1: the one loaded at "
        "start); each hot swap and each reload publishes one.",
        toDouble(in.storeGeneration));

  const CertificateStates& c = in.certificates;
  auto& states = f.gauge("tlsedge_certificates",
                         "Certificates being served, by expiry state (states do not overlap).");
  states.Add({{"state", "valid"}}).Set(toDouble(c.valid));
  states.Add({{"state", "expiring_14d"}}).Set(toDouble(c.expiring14d));
  states.Add({{"state", "expiring_7d"}}).Set(toDouble(c.expiring7d));
  states.Add({{"state", "expiring_1d"}}).Set(toDouble(c.expiring1d));
  states.Add({{"state", "expired"}}).Set(toDouble(c.expired));
  f.set("tlsedge_certificates_renewal_failing",
        "Certificates being served whose ACME renewal is failing (also in tlsedge_certificates).",
        toDouble(c.renewalFailing));
  auto& notAfter = f.gauge(
      "tlsedge_certificate_not_after_seconds",
      "Expiry (Unix time) of each certificate with 14 days or less left or failing renewal.");
  for (const auto& [name, when] : c.soon) {
    notAfter.Add({{"name", name}}).Set(static_cast<double>(when));
  }

  addAcme(f, in.acme);

  f.set("tlsedge_workers", "Worker threads running.", toDouble(in.workers));
  f.set("tlsedge_metrics_workers_unanswered",
        "Workers that did not answer this scrape in time (their counters are missing from it).",
        toDouble(in.workersUnanswered));
  f.gauge("tlsedge_build_info", "Build information; the value is always 1.")
      .Add({{"version", in.version}})
      .Set(1);
  if (in.process.ok) {
    f.set("process_resident_memory_bytes", "Resident memory size in bytes.",
          in.process.residentBytes);
    f.set("process_open_fds", "Open file descriptors.", in.process.openFds);
    f.counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.")
        .Add({})
        .Increment(in.process.cpuSeconds);
    f.set("process_start_time_seconds", "Start time of the process since the Unix epoch, seconds.",
          in.process.startTimeSeconds);
  }
}

}  // namespace

void CertificateStates::count(const std::string& name, time_t notAfter, time_t now, bool failing) {
  const time_t left = notAfter - now;
  if (failing) ++renewalFailing;
  if (left > 14 * kDay) {
    ++valid;
    if (failing) soon.emplace_back(name, notAfter);
    return;
  }
  if (left < 0) {  // valid through notAfter itself, as validation and `cert list` say
    ++expired;
  } else if (left <= kDay) {
    ++expiring1d;
  } else if (left <= 7 * kDay) {
    ++expiring7d;
  } else {
    ++expiring14d;
  }
  soon.emplace_back(name, notAfter);
}

CertificateStates certificateStates(const certstore::Selector& selector, time_t now,
                                    const std::set<std::string>& renewalFailing) {
  CertificateStates states;
  selector.nameIndex().forEach(
      [&](const std::string& name, const certstore::Selector::NamedPtr& named) {
        if (named != nullptr && named->credentials != nullptr) {
          states.count(name, named->credentials->notAfter, now, renewalFailing.contains(name));
        }
      });
  std::sort(states.soon.begin(), states.soon.end());
  return states;
}

std::set<std::string> AcmeMetrics::renewalFailing() const {
  std::set<std::string> names;
  for (const auto& s : sites) {
    if (s.failures > 0 && s.stored) names.insert(s.certificate);
  }
  return names;
}

AcmeMetrics acmeMetrics(const acme::Manager& manager) {
  AcmeMetrics out;
  out.ordersSucceeded = manager.orderCounts().succeeded;
  out.ordersFailed = manager.orderCounts().failed;
  out.sites = manager.status();
  return out;
}

namespace {

// /proc/self/stat, /proc/stat and /proc/self/fd: see proc(5).
ProcessStats readProcFiles() {
  ProcessStats out;
  std::ifstream statFile("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(statFile)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return out;
  // After "pid (comm)": state is field 3; utime 14, stime 15, starttime 22,
  // rss 24 (pages).
  std::istringstream fields(stat.substr(paren + 1));
  std::vector<std::string> f{"", ""};  // fields 1 and 2 come before; index = field number - 1
  std::string word;
  while (fields >> word) f.push_back(word);
  if (f.size() < 24) return out;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  out.cpuSeconds = (std::stod(f[13]) + std::stod(f[14])) / ticks;
  out.residentBytes = std::stod(f[23]) * page;
  std::ifstream procStat("/proc/stat");
  std::string key;
  double bootTime = 0;
  while (procStat >> key) {
    if (key == "btime") {
      procStat >> bootTime;
      break;
    }
    procStat.ignore(1 << 20, '\n');
  }
  out.startTimeSeconds = bootTime + std::stod(f[21]) / ticks;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    double n = 0;
    while (dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(dir);
    out.openFds = n - 1;  // not the directory being listed
  }
  out.ok = true;
  return out;
}

}  // namespace

ProcessStats readProcessStats() {
  try {
    return readProcFiles();
  } catch (const std::exception&) {  // a field that is not a number: report nothing
    return ProcessStats{};
  }
}

std::string renderMetrics(MetricsInput input, time_t now) {
  if (input.served != nullptr) {
    input.certificates = certificateStates(*input.served, now, input.renewalFailing);
  }
  Families families;
  addTraffic(families, input);
  addControl(families, input);
  return families.text();
}

}  // namespace tlsedge::daemon
