// Metrics: what a scrape reports, gathered into MetricsInput, and its
// Prometheus text rendering (prometheus-cpp core: a Registry filled at
// scrape time, rendered by prometheus::TextSerializer). Every metric is
// documented in docs/metrics.md.
//
// Pure functions but for readProcessStats() (reads /proc/self). The scrape
// itself (asking each worker for its WorkerStats) is daemon/metrics_endpoint.h.
//
// Thread: control loop (any thread for the pure ones).
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "acme/manager.h"
#include "acme/status.h"
#include "admin/access.h"
#include "certstore/certificate_watcher.h"
#include "certstore/selector.h"
#include "fleet/replica.h"
#include "proxy/worker_stats.h"

namespace tlsedge::daemon {

// Certificates of a snapshot by how long they have left. The states do not
// overlap: a certificate is in exactly one of them (see docs/metrics.md).
struct CertificateStates {
  static constexpr time_t kDay = 24 * 3600;
  uint64_t valid = 0;        // more than 14 days left
  uint64_t expiring14d = 0;  // 7 days < left <= 14 days
  uint64_t expiring7d = 0;   // 1 day < left <= 7 days
  uint64_t expiring1d = 0;   // 0 <= left <= 1 day (valid through not_after)
  uint64_t expired = 0;      // not_after < now
  // Whose ACME renewal is failing, whatever their expiry state (also
  // counted in one of the above).
  uint64_t renewalFailing = 0;
  // Name and not_after of every certificate with 14 days or less left
  // (expired ones included) or whose renewal is failing, by name.
  std::vector<std::pair<std::string, time_t>> soon;

  void count(const std::string& name, time_t notAfter, time_t now, bool failing = false);
};

// Every certificate of `selector` (by name, each once) at `now`;
// `renewalFailing`: names of certificates whose ACME renewal is failing.
CertificateStates certificateStates(const certstore::Selector& selector, time_t now,
                                    const std::set<std::string>& renewalFailing = {});

// The ACME manager's part of a scrape: order counts and per-site status.
struct AcmeMetrics {
  uint64_t ordersSucceeded = 0;
  std::map<std::string, uint64_t> ordersFailed;  // by problem kind (acme::Problem::kind)
  std::vector<acme::SiteStatus> sites;

  // The store entries of sites whose last order failed (failures > 0) and
  // that have a certificate serving.
  std::set<std::string> renewalFailing() const;
};
AcmeMetrics acmeMetrics(const acme::Manager& manager);

struct ProcessStats {
  bool ok = false;  // false: /proc/self could not be read (nothing is reported)
  double residentBytes = 0;
  double openFds = 0;
  double cpuSeconds = 0;        // user + system
  double startTimeSeconds = 0;  // since the Unix epoch
};

// From /proc/self/stat, /proc/self/fd and /proc/stat (btime).
ProcessStats readProcessStats();

struct MetricsInput {
  proxy::WorkerStats traffic;             // every answering worker's, added up
  uint64_t activeConnections = 0;         // of the answering workers
  uint64_t workers = 0;                   // running
  uint64_t workersUnanswered = 0;         // did not answer the scrape in time
  certstore::CertificateSwapStats swaps;  // the certificate watcher's
  uint64_t reloadsSucceeded = 0;          // SIGHUP reloads applied
  uint64_t reloadsFailed = 0;             // refused (the running configuration stayed)
  bool lastReloadSucceeded = true;        // the last reload was applied (or none was tried)
  CertificateStates certificates;         // filled by renderMetrics from `served` when set
  // The snapshot being served and the certificates whose renewal fails:
  // their states are counted (O(certificates)) where the text is rendered,
  // off the control loop (MetricsEndpoint).
  std::shared_ptr<const certstore::Selector> served;
  std::set<std::string> renewalFailing;
  uint64_t storeGeneration = 0;  // certificate snapshots published since start
  AcmeMetrics acme;
  admin::Access::Counters adminRefused;           // the management listener's (zero without one)
  std::optional<fleet::ReplicaStats> fleet;       // fleet mode only: the certificates' replica
  std::optional<fleet::ReplicaStats> fleetSites;  // and the sites' (fleet mode)
  uint64_t fleetSitesRefused = 0;  // copied sites left out here (SitesApi::storedRefused)
  uint64_t etcdRequests = 0;       // unary etcd calls (fleet mode)
  uint64_t etcdWatchStreams = 0;   // etcd watch streams opened (fleet mode)
  ProcessStats process;
  std::string version;  // build info
};

// The Prometheus text exposition format (version 0.0.4). With
// `input.served` set, counts its certificates' states at `now` first.
std::string renderMetrics(MetricsInput input, time_t now);

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace tlsedge::daemon
