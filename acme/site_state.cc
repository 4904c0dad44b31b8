#include "acme/site_state.h"

#include <nlohmann/json.hpp>

#include "certstore/json.h"

namespace tlsedge::acme {

std::string savedSiteKey(const std::string& site) { return "acme/sites/" + site + ".json"; }

Result<std::optional<SavedSite>> loadSavedSite(const certstore::Storage& storage,
                                               const std::string& site) {
  const std::string path = storage.describe(savedSiteKey(site));
  auto text = storage.load(savedSiteKey(site));
  if (!text && text.error().kind == ErrorKind::kNotFound) return std::optional<SavedSite>();
  if (!text) return text.error();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return makeError(path + ": not a JSON object");
  try {
    SavedSite s;
    s.directory = j.value("directory", "");
    s.settings = j.value("settings", "");
    s.hosts = j.value("hosts", std::vector<std::string>{});
    s.orderUrl = j.value("order", "");
    s.failures = j.value("failures", 0);
    s.lastError = j.value("last_error", "");
    s.lastErrorAt = j.value("last_error_at", time_t{0});
    s.retryDelaySeconds = j.value("retry_delay_seconds", int64_t{0});
    s.backoffUntil = j.value("backoff_until", time_t{0});
    s.revokedSerial = j.value("revoked_serial", "");
    return std::optional<SavedSite>(std::move(s));
  } catch (const nlohmann::json::exception& e) {
    return makeError(path + ": " + e.what());
  }
}

Status saveSite(certstore::Storage& storage, const std::string& site, const SavedSite& s) {
  nlohmann::json j = {{"directory", s.directory},
                      {"settings", s.settings},
                      {"hosts", s.hosts},
                      {"order", s.orderUrl},
                      {"failures", s.failures},
                      {"last_error", s.lastError},
                      {"last_error_at", s.lastErrorAt},
                      {"retry_delay_seconds", s.retryDelaySeconds},
                      {"backoff_until", s.backoffUntil},
                      {"revoked_serial", s.revokedSerial}};
  return storage.store(savedSiteKey(site), certstore::jsonText(j, 2) + "\n",
                       certstore::Storage::Secrecy::kSecret);
}

}  // namespace tlsedge::acme
