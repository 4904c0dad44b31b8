#include "certstore/store_bindings.h"

#include <algorithm>

#include "certstore/binding.h"
#include "certstore/store.h"

namespace tlsedge::certstore {
namespace {

// The SAN keys that can cover `host`: itself, and `*.parent` for a host one
// label under parent (a site host `*.p` is its own key).
std::vector<std::string> sanKeys(const std::string& host) {
  std::vector<std::string> keys{host};
  size_t dot = host.find('.');
  if (host[0] != '*' && dot != std::string::npos && dot > 0 && dot + 1 < host.size()) {
    keys.push_back("*" + host.substr(dot));
  }
  return keys;
}

// The name a host is bound to in the host index ("" if none). Unbound site
// hosts have one certificate, never a pair.
std::string boundName(const Selector& snapshot, const std::string& host) {
  const Selector::HostCredentials* bound = snapshot.hostIndex().find(host);
  if (bound == nullptr) return "";
  const CredentialsPtr& c = bound->ecdsa != nullptr ? bound->ecdsa : bound->rsa;
  return c != nullptr ? c->name : "";
}

bool isStoreName(const conf::Config& config, const std::string& name) {
  return config.findCertificate(name) == nullptr || configListsStoreEntry(config, name);
}

}  // namespace

StoreBindings StoreBindings::build(conf::ConfigPtr config, const Selector& snapshot) {
  StoreBindings out;
  out.config_ = std::move(config);
  for (const conf::Site& site : out.config_->sites) {
    if (!site.certificates.empty()) {
      for (const std::string& name : site.certificates) out.boundBy_[name].push_back(&site);
      continue;
    }
    for (const std::string& host : site.hosts) {
      out.unbound_[host].site = &site;
      for (std::string& key : sanKeys(host)) out.bySan_[std::move(key)].push_back(host);
    }
  }
  snapshot.nameIndex().forEach([&](const std::string& name, const Selector::NamedPtr& named) {
    if (!isStoreName(*out.config_, name)) return;
    const Credentials& c = *named->credentials;
    for (const auto* sans : {&c.dnsNames, &c.ipAddresses}) {
      for (const std::string& san : *sans) {
        auto it = out.bySan_.find(san);
        if (it == out.bySan_.end()) continue;
        for (const std::string& host : it->second) {
          if (c.covers(host)) out.unbound_[host].covers.insert(name);
        }
      }
    }
  });
  return out;
}

std::vector<std::string> StoreBindings::storeNames(const Selector& snapshot) const {
  std::vector<std::string> names;
  snapshot.nameIndex().forEach([&](const std::string& name, const Selector::NamedPtr&) {
    if (isStoreName(*config_, name)) names.push_back(name);
  });
  return names;
}

std::set<std::string> StoreBindings::covers(const std::string& host) const {
  auto it = unbound_.find(host);
  return it == unbound_.end() ? std::set<std::string>{} : it->second.covers;
}

std::string StoreBindings::inUse(const std::string& name) const {
  std::string why;
  auto add = [&why](const std::string& what) { why += (why.empty() ? "" : ", ") + what; };
  if (config_->tls.defaultCertificate == name) add("tls.default_certificate");
  for (const conf::Site& site : config_->sites) {
    if (site.fallbackCertificate == name)
      add("tls.fallback_certificate of site `" + site.name + "`");
  }
  if (auto it = boundBy_.find(name); it != boundBy_.end()) {
    for (const conf::Site* site : it->second) {
      if (site->fallbackCertificate.empty()) add("tls.certificate of site `" + site->name + "`");
    }
  }
  return why;
}

Result<std::string> StoreBindings::best(const Selector& snapshot, const std::string& host,
                                        const Unbound& unbound, const std::set<std::string>& covers,
                                        time_t now) const {
  const Credentials* chosen = nullptr;
  for (const std::string& name : covers) {
    const Credentials* c = snapshot.credentials(name);
    if (c == nullptr || c->notAfter < now || c->notBefore > now) continue;  // expired
    if (chosen == nullptr || newerCertificate(*c, *chosen)) chosen = c;
  }
  if (chosen != nullptr) return chosen->name;
  if (!unbound.site->fallbackCertificate.empty()) return std::string();
  const std::string& defaultName = config_->tls.defaultCertificate;
  if (!defaultName.empty() && snapshot.credentials(defaultName) != nullptr) return defaultName;
  // An ACME site pending (re)issuance: refused until its certificate comes.
  if (unbound.site->acme) return std::string();
  return makeError("site `" + unbound.site->name + "` would have no certificate for `" + host +
                   "` (no store certificate covers it, no tls.fallback_certificate, no "
                   "tls.default_certificate)");
}

Result<StoreBindings::Applied> StoreBindings::apply(const std::shared_ptr<const Selector>& current,
                                                    const std::string& name, CredentialsPtr loaded,
                                                    time_t now) {
  const conf::Config& config = *config_;
  const std::string storeDir = CertificateStore::local(config).directory();
  if (!isStoreName(config, name)) {
    if (loaded == nullptr) return Applied{current, {}};  // the config's own serves on
    return makeError("certificate `" + name + "` is defined twice: in `certificates:` of " +
                     config.sourceName + " and in " + storeDir + "/" + name +
                     "; the one of the configuration keeps serving");
  }
  const Credentials* old = current->credentials(name);
  if (loaded == nullptr) {
    if (old == nullptr) return Applied{current, {}};
    if (std::string why = inUse(name); !why.empty()) {
      return makeError("certificate `" + name + "` was removed from " + storeDir +
                       " but is in use (" + why +
                       "): the previous certificate keeps serving; put it back, or change the "
                       "configuration and reload");
    }
  }

  // The unbound hosts the old or the new certificate can cover.
  std::vector<std::string> affected;
  for (const Credentials* c : {old, loaded.get()}) {
    if (c == nullptr) continue;
    for (const auto* sans : {&c->dnsNames, &c->ipAddresses}) {
      for (const std::string& san : *sans) {
        auto it = bySan_.find(san);
        if (it != bySan_.end())
          affected.insert(affected.end(), it->second.begin(), it->second.end());
      }
    }
  }
  std::sort(affected.begin(), affected.end());
  affected.erase(std::unique(affected.begin(), affected.end()), affected.end());

  Applied out;
  out.snapshot = loaded ? current->withCertificate(loaded) : current->withoutCertificate(name);
  if (auto it = boundBy_.find(name); it != boundBy_.end()) {
    for (const conf::Site* site : it->second) {
      bool complete = true;
      for (const std::string& n : site->certificates) {
        complete = complete && out.snapshot->credentials(n) != nullptr;
      }
      for (const std::string& host : site->hosts) {
        // Appeared (the site leaves its fallback) or gone (to its fallback).
        if (loaded && old == nullptr && complete) {
          out.snapshot = out.snapshot->withHostNames(host, site->certificates);
        } else if (loaded == nullptr) {
          out.snapshot = out.snapshot->withoutHost(host);  // its pair partner too
        } else {
          continue;
        }
        out.hosts.push_back(host);
      }
    }
  }

  // New cover sets and best certificates, committed only if all succeed.
  std::vector<std::pair<std::string, std::set<std::string>>> newCovers;
  for (const std::string& host : affected) {
    const Unbound& unbound = unbound_.at(host);
    std::set<std::string> covers = unbound.covers;
    covers.erase(name);
    if (loaded && loaded->covers(host)) covers.insert(name);
    auto chosen = best(*out.snapshot, host, unbound, covers, now);
    if (!chosen.ok()) {
      return makeError(
          "certificate `" + name + "` " + (loaded ? "replaced" : "removed") +
          ": refused, the previous certificates keep serving: " + chosen.error().message);
    }
    const std::string bound = boundName(*out.snapshot, host);
    if (chosen->empty() && !bound.empty()) {
      out.snapshot = out.snapshot->withoutHost(host);
    } else if (!chosen->empty() && *chosen != bound) {
      out.snapshot = out.snapshot->withHost(host, *chosen);
    }
    // Served differently: another certificate, or new material of the same name.
    const std::string before = boundName(*current, host);
    if (before != *chosen || before == name) out.hosts.push_back(host);
    newCovers.emplace_back(host, std::move(covers));
  }
  for (auto& [host, covers] : newCovers) unbound_.at(host).covers = std::move(covers);
  std::sort(out.hosts.begin(), out.hosts.end());
  out.hosts.erase(std::unique(out.hosts.begin(), out.hosts.end()), out.hosts.end());
  return out;
}

}  // namespace tlsedge::certstore
