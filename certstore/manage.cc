#include "certstore/manage.h"

#include <algorithm>

#include "base/ascii.h"
#include "base/time.h"
#include "certstore/binding.h"
#include "certstore/files.h"
#include "certstore/json.h"
#include "certstore/selector.h"
#include "certstore/x509_text.h"

namespace tlsedge::certstore {
namespace {

constexpr time_t kDaySeconds = 86400;

using Json = nlohmann::ordered_json;

std::string joinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += (out.empty() ? "" : "\n") + line;
  return out;
}

CertListEntry entryFor(CertInfo info, const CertificateUsers& users, const conf::Config& config,
                       time_t now) {
  CertListEntry entry;
  entry.sites = users.sites(info.name);
  entry.isDefault = config.tls.defaultCertificate == info.name;
  const time_t left = info.notAfter - now;
  entry.expired = left < 0;
  entry.daysLeft = static_cast<long>(left >= 0 ? left / kDaySeconds : -((-left) / kDaySeconds));
  entry.expiring = !entry.expired && left <= kExpiringDays * kDaySeconds;
  entry.info = std::move(info);
  return entry;
}

Json toJsonValue(const CertListEntry& entry) {
  const CertInfo& info = entry.info;
  if (entry.pending) {
    return Json{{"name", info.name},
                {"pending", true},
                {"dns_names", info.dnsNames},
                {"key", info.keyType},
                {"requested", utc::format(entry.requested)}};
  }
  return Json{{"name", info.name},
              {"subject", info.subject},
              {"dns_names", info.dnsNames},
              {"ip_addresses", info.ipAddresses},
              {"issuer", info.issuer},
              {"issuer_cn", info.issuerCn},
              {"serial", info.serialHex},
              {"sha256", info.sha256Fingerprint},
              {"not_before", utc::format(info.notBefore)},
              {"not_after", utc::format(info.notAfter)},
              {"days_left", entry.daysLeft},
              {"expired", entry.expired},
              {"expiring", entry.expiring},
              {"chain_length", info.chainLength},
              {"key", info.keyType},
              {"source", certSourceName(info.meta.source)},
              {"sites", entry.sites},
              {"default", entry.isDefault},
              {"pending", false}};
}

// A name `certificates:` defines (other than as a store entry) is not the store's.
Status checkNotConfigured(const conf::Config& config, const std::string& name) {
  if (config.findCertificate(name) != nullptr && !configListsStoreEntry(config, name)) {
    return makeError("certificate `" + name + "` is already defined in `certificates:` of " +
                         config.sourceName + "; choose another name",
                     ErrorKind::kConflict);
  }
  return Ok{};
}

AddOutcome addOutcome(const CertificateStore& store, const std::string& name, AddResult added) {
  AddOutcome out;
  out.name = name;
  out.directory = store.directory() + "/" + name;
  out.dnsNames = added.credentials->dnsNames;
  out.serialHex = added.credentials->serialHex;
  out.notAfter = added.credentials->notAfter;
  out.notes = added.notes;
  out.replaced = added.replaced;
  out.credentials = added.credentials;
  return out;
}

// `rm NAME` of a pending request: removes it, and only it should a
// certificate NAME be stored too (what a crash between storing the
// certificate and removing the request leaves). Returns whether it did.
Result<bool> removePendingRequest(const CertificateStore& store, const std::string& name) {
  auto pending = store.pendingContains(name);
  if (!pending) return pending.error();
  if (!*pending) return false;
  if (Status removed = store.removePending(name); !removed.ok()) return removed.error();
  return true;
}

Error noCertificate(const CertificateStore& store, const std::string& name) {
  return makeError("no certificate named `" + name + "` in " + store.directory(),
                   ErrorKind::kNotFound);
}

}  // namespace

std::string toJson(const CertListEntry& entry) { return jsonText(toJsonValue(entry)); }

std::string toJson(const std::vector<CertListEntry>& entries) {
  Json list = Json::array();
  for (const CertListEntry& entry : entries) list.push_back(toJsonValue(entry));
  return jsonText(list);
}

std::string toJson(const AddOutcome& outcome) {
  return jsonText(Json{{"name", outcome.name},
                       {"directory", outcome.directory},
                       {"dns_names", outcome.dnsNames},
                       {"serial", outcome.serialHex},
                       {"not_after", utc::format(outcome.notAfter)},
                       {"notes", outcome.notes},
                       {"replaced", outcome.replaced}});
}

std::string toJson(const WhichOutcome& outcome) {
  return jsonText(Json{{"host", outcome.host},
                       {"certificate", outcome.name},
                       {"serial", outcome.serialHex},
                       {"sha256", outcome.sha256Fingerprint},
                       {"how", outcome.how},
                       {"site", outcome.site}});
}

Result<AddOutcome> addCertificate(const CertificateStore& store, const conf::Config& config,
                                  const std::string& name, const std::string& chainPath,
                                  const std::string& keyPath, bool replace, time_t now) {
  if (keyPath.empty()) {
    auto chain = readFile(chainPath);
    if (!chain.ok()) return chain.error();
    return completeCertificatePem(store, config, name, *chain, now, chainPath);
  }
  auto chain = readFile(chainPath);
  auto key = readFile(keyPath);
  std::vector<std::string> problems;
  if (!chain.ok()) problems.push_back(chain.error().message);
  if (!key.ok()) problems.push_back(key.error().message);
  if (!problems.empty()) return makeError(joinLines(problems));
  return addCertificatePem(store, config, name, *chain, *key, replace, now, chainPath, keyPath);
}

Result<AddOutcome> addCertificatePem(const CertificateStore& store, const conf::Config& config,
                                     const std::string& name, const std::string& chainPem,
                                     const std::string& keyPem, bool replace, time_t now,
                                     const std::string& chainSource, const std::string& keySource) {
  if (Status free = checkNotConfigured(config, name); !free.ok()) return free.error();
  auto added =
      store.add(name, chainPem, keyPem, replace, CertSource::kUpload, now, chainSource, keySource);
  if (!added.ok()) return added.error();
  return addOutcome(store, name, std::move(*added));
}

Result<AddOutcome> completeCertificatePem(const CertificateStore& store, const conf::Config& config,
                                          const std::string& name, const std::string& chainPem,
                                          time_t now, const std::string& chainSource) {
  if (Status free = checkNotConfigured(config, name); !free.ok()) return free.error();
  auto added = store.complete(name, chainPem, now, chainSource);
  if (!added.ok()) return added.error();
  return addOutcome(store, name, std::move(*added));
}

Result<PendingRequest> requestCertificate(const CertificateStore& store, const conf::Config& config,
                                          const std::string& name,
                                          const std::vector<std::string>& hosts,
                                          const std::string& keyType, time_t now,
                                          const std::string& subject) {
  auto type = newKeyTypeFromName(keyType);
  if (!type.ok()) return type.error();
  if (Status free = checkNotConfigured(config, name); !free.ok()) return free.error();
  return store.request(name, hosts, *type, now, subject);
}

std::string toJson(const PendingRequest& request) {
  return jsonText(Json{{"name", request.name},
                       {"hosts", request.hosts},
                       {"key_type", request.keyType},
                       {"subject", request.subject},
                       {"requested", utc::format(request.requested)},
                       {"csr", request.csrPem}});
}

void CertificateUsers::add(const std::string& name, const std::string& site) {
  std::vector<std::string>& sites = byName_[name];
  if (std::find(sites.begin(), sites.end(), site) == sites.end()) sites.push_back(site);
}

void CertificateUsers::addNamingSites(const conf::Config& config) {
  for (const conf::Site& site : config.sites) {
    for (const std::string& name : site.certificates) add(name, site.name);
    if (!site.fallbackCertificate.empty()) add(site.fallbackCertificate, site.name);
  }
}

CertificateUsers CertificateUsers::fromFiles(const conf::Config& config, time_t now) {
  CertificateUsers users;
  users.addNamingSites(config);
  // Problems of the configuration do not hide the list: bindings are best effort.
  const ResolvedCertificates resolved = resolveCertificates(config, now, nullptr);
  for (const HostBinding& binding : resolved.hosts) {
    if (binding.credentials) users.add(binding.credentials->name, binding.site);
  }
  return users;
}

CertificateUsers CertificateUsers::fromSnapshot(const conf::Config& config,
                                                const Selector& served) {
  CertificateUsers users;
  users.addNamingSites(config);
  for (const conf::Site& site : config.sites) {
    for (const std::string& host : site.hosts) {
      const Selector::HostCredentials* bound = served.hostIndex().find(host);
      if (bound == nullptr) continue;
      for (const CredentialsPtr& credentials : {bound->ecdsa, bound->rsa}) {
        if (credentials) users.add(credentials->name, site.name);
      }
    }
  }
  return users;
}

const std::vector<std::string>& CertificateUsers::sites(const std::string& name) const {
  static const std::vector<std::string> kNone;
  auto it = byName_.find(name);
  return it == byName_.end() ? kNone : it->second;
}

Result<std::vector<CertListEntry>> listCertificates(const CertificateStore& store,
                                                    const conf::Config& config,
                                                    const CertificateUsers& users, time_t now) {
  auto names = store.names();
  if (!names.ok()) return names.error();
  std::vector<CertListEntry> out;
  out.reserve(names->size());
  for (const std::string& name : *names) {
    auto info = store.inspect(name);
    if (!info.ok()) {
      CertListEntry broken;
      broken.info.name = name;
      broken.info.keyType = info.error().message;
      out.push_back(std::move(broken));
      continue;
    }
    out.push_back(entryFor(std::move(*info), users, config, now));
  }
  auto pendingNames = store.pendingNames();
  if (!pendingNames.ok()) return pendingNames.error();
  for (const std::string& name : *pendingNames) {
    CertListEntry entry;
    entry.pending = true;
    entry.info.name = name;
    if (auto request = store.pending(name); request.ok()) {
      entry.info.dnsNames = request->hosts;
      entry.info.keyType = request->keyType;
      entry.requested = request->requested;
    } else {
      entry.info.keyType = request.error().message;
    }
    out.push_back(std::move(entry));
  }
  return out;
}

Result<std::vector<CertListEntry>> listCertificates(const CertificateStore& store,
                                                    const conf::Config& config, time_t now) {
  return listCertificates(store, config, CertificateUsers::fromFiles(config, now), now);
}

Result<CertListEntry> showCertificate(const CertificateStore& store, const conf::Config& config,
                                      const CertificateUsers& users, const std::string& name,
                                      time_t now) {
  auto info = store.inspect(name);
  if (!info.ok()) return info.error();
  return entryFor(std::move(*info), users, config, now);
}

Result<CertListEntry> showCertificate(const CertificateStore& store, const conf::Config& config,
                                      const std::string& name, time_t now) {
  return showCertificate(store, config, CertificateUsers::fromFiles(config, now), name, now);
}

Status removeCertificate(const CertificateStore& store, const conf::Config& config,
                         const CertificateUsers& users, const std::string& name) {
  auto request = removePendingRequest(store, name);
  if (!request) return request.error();
  if (*request) return Ok{};
  auto there = store.contains(name);
  if (!there) return there.error();
  if (!*there) return noCertificate(store, name);
  // Who uses it, where each is changed: the YAML, or the admin API.
  std::string yaml, api;
  for (const std::string& site : users.sites(name)) {
    const bool fromApi = std::any_of(config.sites.begin(), config.sites.end(),
                                     [&](const conf::Site& s) { return s.name == site && s.api; });
    std::string& list = fromApi ? api : yaml;
    list += (list.empty() ? "site `" : ", site `") + site + "`";
  }
  if (config.tls.defaultCertificate == name) {
    yaml += (yaml.empty() ? "" : ", ") + std::string("tls.default_certificate");
  }
  if (yaml.empty() && api.empty()) return store.remove(name);
  std::string why = "certificate `" + name + "` is in use by ";
  if (!yaml.empty()) why += yaml + " in " + config.sourceName;
  if (!api.empty()) why += (yaml.empty() ? "" : " and by ") + api + " of the admin API";
  why += "; change ";
  if (!yaml.empty()) why += "the configuration";
  if (!api.empty()) {
    why += std::string(yaml.empty() ? "" : " and ") +
           "the API's sites (`tlsedge site put` or `tlsedge site rm`, or /v1/sites)";
  }
  return makeError(why + " first", ErrorKind::kInUse);
}

Status removeCertificate(const CertificateStore& store, const conf::Config& config,
                         const std::string& name, time_t now) {
  auto request = removePendingRequest(store, name);
  if (!request) return request.error();
  if (*request) return Ok{};
  auto there = store.contains(name);  // before the whole store is read for its users
  if (!there) return there.error();
  if (!*there) return noCertificate(store, name);
  return removeCertificate(store, config, CertificateUsers::fromFiles(config, now), name);
}

Result<WhichOutcome> whichCertificate(const conf::Config& config, const std::string& host,
                                      time_t now) {
  ResolvedCertificates resolved = resolveCertificates(config, now, nullptr);
  if (!resolved.errors.empty()) return makeError(joinLines(resolved.errors));
  auto selector =
      Selector::fromBindings(resolved, config.tls.unknownSni == conf::UnknownSni::kReject);
  return whichFromSelector(config, *selector, host);
}

Result<WhichOutcome> whichFromSelector(const conf::Config& config, const Selector& selector,
                                       const std::string& host) {
  Selector::Choice choice = selector.select(host);
  WhichOutcome out;
  out.host = host;
  if (choice.credentials == nullptr) {
    return makeError("`" + host + "`: no certificate; the handshake is refused (" +
                     (config.tls.defaultCertificate.empty() ? "no tls.default_certificate"
                                                            : "tls.unknown_sni: reject") +
                     ")");
  }
  out.name = choice.credentials->name;
  out.serialHex = choice.credentials->serialHex;
  out.sha256Fingerprint = choice.credentials->sha256Fingerprint;
  std::string lower = ascii::lowered(host);
  if (!lower.empty() && lower.back() == '.') lower.pop_back();
  std::string wildcard;
  if (size_t dot = lower.find('.'); dot != std::string::npos) wildcard = "*" + lower.substr(dot);
  // The site with configured host `key`, or null.
  auto siteWithHost = [&config](const std::string& key) -> const conf::Site* {
    for (const conf::Site& site : config.sites) {
      if (std::find(site.hosts.begin(), site.hosts.end(), key) != site.hosts.end()) return &site;
    }
    return nullptr;
  };
  switch (choice.outcome) {
    case Selector::Outcome::kExact:
    case Selector::Outcome::kWildcard: {
      out.how = choice.outcome == Selector::Outcome::kExact ? "exact" : "wildcard";
      // Which site's host matched, and how the site binds it: its own
      // tls.certificate, else the store's newest covering one or the default.
      const conf::Site* site =
          siteWithHost(choice.outcome == Selector::Outcome::kExact ? lower : wildcard);
      if (site != nullptr) {
        out.site = site->name;
        if (site->certificates.empty()) {
          out.how += out.name == config.tls.defaultCertificate ? ", default" : ", store";
        }
      }
      break;
    }
    case Selector::Outcome::kSiteFallback: {
      out.how = "fallback";
      // The exact site host first, as the Selector looks them up.
      const conf::Site* site = siteWithHost(lower);
      if (site == nullptr) site = siteWithHost(wildcard);
      if (site != nullptr) out.site = site->name;
      break;
    }
    case Selector::Outcome::kDefault:
      out.how = "default";
      break;
    case Selector::Outcome::kMiss:
      break;
  }
  return out;
}

}  // namespace tlsedge::certstore
