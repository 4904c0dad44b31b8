// acme::SiteStatus: what `tlsedge acme status` and GET /v1/acme show for
// one `tls: { acme: true }` site. The daemon's manager fills in the schedule
// and the failures; without a daemon, storeStatus() reads only the store
// (the schedule is then unknown).
//
// Thread: the control loop (manager) or a CLI process (store only).
#pragma once

#include <ctime>
#include <string>
#include <vector>

#include "base/result.h"
#include "certstore/storage.h"
#include "certstore/store.h"
#include "conf/config.h"

namespace tlsedge::acme {

struct SiteStatus {
  std::string site;
  std::string certificate;  // the store entry, acme-<site>
  bool stored = false;      // the entry exists and reads
  std::string serialHex;
  time_t notAfter = 0;
  bool scheduleKnown = false;  // false: read from the store, no daemon
  bool inFlight = false;       // an order is running
  time_t nextRenewal = 0;      // wall time of the next order; 0: none planned
  std::string nextReason;      // why then: "a third of the lifetime left", "ARI window", ...
  time_t ariWindowStart = 0, ariWindowEnd = 0;  // 0: no renewalInfo
  int failures = 0;                             // consecutive
  std::string lastError;                        // the CA's problem, as logged
  time_t lastErrorAt = 0;
  int64_t retryDelaySeconds = 0;  // after the last failure
  // Fleet mode: the node holding the site's order lock, as last seen ("":
  // none seen; this node's name while it orders).
  std::string lockHolder;
};

// What the store holds of a site's certificate: the status's store side
// (certificate, stored, serial, not-after), the entry itself (for the
// schedule: names, lifetime) and its ARI certId. Blocking reads: the manager
// makes them on its lane (libuv's thread pool).
struct StoredCertificate {
  SiteStatus status;
  Result<certstore::CertInfo> info = Error{};  // the entry, or why not
  std::string certId;                          // ARI certId; empty: none or unreadable
};
StoredCertificate readStoredCertificate(const certstore::StoragePtr& storage,
                                        const std::string& site);
// Its status part alone.
SiteStatus storeStatus(const certstore::StoragePtr& storage, const std::string& site);
// storeStatus for every ACME site of `config`, in its order.
std::vector<SiteStatus> storeStatuses(const conf::Config& config,
                                      const certstore::StoragePtr& storage);

// JSON: {"sites": [{...}]}, times as RFC 3339 (null when unknown).
std::string statusJson(const std::vector<SiteStatus>& sites);
// The text `tlsedge acme status` prints; `now` for "in 3 d" hints.
std::string statusText(const std::vector<SiteStatus>& sites, time_t now);

}  // namespace tlsedge::acme
