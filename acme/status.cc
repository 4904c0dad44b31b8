#include "acme/status.h"

#include <nlohmann/json.hpp>

#include "acme/ari.h"
#include "acme/manager.h"
#include "acme/schedule.h"
#include "base/time.h"
#include "certstore/json.h"
#include "certstore/store.h"

namespace tlsedge::acme {
namespace {

nlohmann::json timeJson(time_t t) {
  return t == 0 ? nlohmann::json() : nlohmann::json(utc::format(t));
}

std::string relative(time_t t, time_t now) {
  const int64_t d = static_cast<int64_t>(t) - now;
  const int64_t a = d < 0 ? -d : d;
  const std::string span = a >= 2 * 86400  ? std::to_string(a / 86400) + " d"
                           : a >= 2 * 3600 ? std::to_string(a / 3600) + " h"
                           : a >= 120      ? std::to_string(a / 60) + " min"
                                           : std::to_string(a) + " s";
  return d >= 0 ? "in " + span : span + " ago";
}

}  // namespace

StoredCertificate readStoredCertificate(const certstore::StoragePtr& storage,
                                        const std::string& site) {
  StoredCertificate out;
  SiteStatus& s = out.status;
  s.site = site;
  s.certificate = certificateNameFor(site);
  const certstore::CertificateStore store(storage);
  if (auto there = store.contains(s.certificate); !there || !*there) return out;
  out.info = store.inspect(s.certificate);
  if (!out.info) return out;
  s.stored = true;
  s.serialHex = out.info->serialHex;
  s.notAfter = out.info->notAfter;
  auto chain = store.chainPem(s.certificate);
  if (auto id = chain ? ariCertId(*chain) : Result<std::string>(chain.error())) out.certId = *id;
  return out;
}

SiteStatus storeStatus(const certstore::StoragePtr& storage, const std::string& site) {
  return readStoredCertificate(storage, site).status;
}

std::vector<SiteStatus> storeStatuses(const conf::Config& config,
                                      const certstore::StoragePtr& storage) {
  std::vector<SiteStatus> out;
  for (const conf::Site& site : config.sites) {
    if (site.acme) out.push_back(storeStatus(storage, site.name));
  }
  return out;
}

std::string statusJson(const std::vector<SiteStatus>& sites) {
  nlohmann::json list = nlohmann::json::array();
  for (const SiteStatus& s : sites) {
    nlohmann::json j = {{"site", s.site},
                        {"certificate", s.certificate},
                        {"stored", s.stored},
                        {"serial", s.stored ? nlohmann::json(s.serialHex) : nlohmann::json()},
                        {"not_after", timeJson(s.notAfter)},
                        {"schedule_known", s.scheduleKnown}};
    if (s.scheduleKnown) {
      j["in_flight"] = s.inFlight;
      j["next_renewal"] = timeJson(s.nextRenewal);
      j["next_reason"] = s.nextReason;
      j["ari_window"] = s.ariWindowStart == 0
                            ? nlohmann::json()
                            : nlohmann::json{{"start", utc::format(s.ariWindowStart)},
                                             {"end", utc::format(s.ariWindowEnd)}};
      j["consecutive_failures"] = s.failures;
      j["last_error"] = s.lastError.empty() ? nlohmann::json() : nlohmann::json(s.lastError);
      j["last_error_at"] = timeJson(s.lastErrorAt);
      j["retry_delay_seconds"] = s.retryDelaySeconds;
      j["order_lock"] = s.lockHolder.empty() ? nlohmann::json() : nlohmann::json(s.lockHolder);
    }
    list.push_back(std::move(j));
  }
  return certstore::jsonText(nlohmann::json{{"sites", list}});
}

std::string statusText(const std::vector<SiteStatus>& sites, time_t now) {
  if (sites.empty()) return "no site has tls: { acme: true }\n";
  std::string out;
  for (const SiteStatus& s : sites) {
    out += "site " + s.site + "\n  certificate:  " + s.certificate;
    if (s.stored) {
      out += " (serial " + s.serialHex + ")\n  not after:    " + utc::format(s.notAfter) + " (" +
             relative(s.notAfter, now) + ")\n";
    } else {
      out += " (not issued yet)\n";
    }
    if (!s.scheduleKnown) {
      out += "  next renewal: unknown (no daemon answers on the admin socket)\n";
      continue;
    }
    if (s.inFlight) {
      out += "  next renewal: ordering now\n";
    } else if (s.nextRenewal != 0) {
      out += "  next renewal: " + utc::format(s.nextRenewal) + " (" + relative(s.nextRenewal, now) +
             "; " + s.nextReason + ")\n";
    } else {
      out += "  next renewal: none planned (" + s.nextReason + ")\n";
    }
    if (!s.lockHolder.empty()) out += "  order lock:   node " + s.lockHolder + "\n";
    if (s.ariWindowStart != 0) {
      out += "  ARI window:   " + utc::format(s.ariWindowStart) + " .. " +
             utc::format(s.ariWindowEnd) + "\n";
    }
    if (!s.lastError.empty()) {
      out += "  last error:   " + utc::format(s.lastErrorAt) + ": " + s.lastError + "\n";
    }
    if (s.failures > 0) {
      out += "  failures:     " + std::to_string(s.failures) + " in a row, retry delay " +
             std::to_string(s.retryDelaySeconds) + " s\n";
    }
  }
  return out;
}

}  // namespace tlsedge::acme
