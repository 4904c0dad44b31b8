#include "certstore/binding.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "certstore/store.h"

namespace tlsedge::certstore {
namespace {

// "prefix: line" for every line of a multi-line message.
void addLines(std::vector<std::string>* out, const std::string& prefix,
              const std::string& message) {
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    out->push_back(prefix + message.substr(start, end - start));
    start = end + 1;
  }
}

bool samePath(const std::string& a, const std::string& b) {
  std::error_code ec1;
  std::error_code ec2;
  auto ca = std::filesystem::weakly_canonical(a, ec1);
  auto cb = std::filesystem::weakly_canonical(b, ec2);
  return ec1 || ec2 ? a == b : ca == cb;
}

// Store certificates by the names they cover, so that binding a host is two
// lookups, not a scan of the store (which made a large store with many
// unbound sites O(hosts x store)). Same matching as Credentials::covers.
class CoverIndex {
 public:
  // `newestFirst`: sorted by newerCertificate; each list keeps that order.
  explicit CoverIndex(const std::vector<CredentialsPtr>& newestFirst) {
    for (const CredentialsPtr& c : newestFirst) {
      for (const std::string& san : c->dnsNames) bySan_[san].push_back(c);
      for (const std::string& ip : c->ipAddresses) bySan_[ip].push_back(c);
    }
  }

  // The newest certificate covering `host` (lower-case, no trailing dot): an
  // exact name or IP, or a one-label wildcard "*.rest" for "label.rest".
  CredentialsPtr newest(const std::string& host) const {
    CredentialsPtr best = first(host);
    if (size_t dot = host.find('.'); dot != std::string::npos && dot > 0) {
      CredentialsPtr wild = first("*" + host.substr(dot));
      if (wild && (!best || newerCertificate(*wild, *best))) best = std::move(wild);
    }
    return best;
  }

 private:
  CredentialsPtr first(const std::string& key) const {
    auto it = bySan_.find(key);
    return it == bySan_.end() ? nullptr : it->second.front();
  }
  std::unordered_map<std::string, std::vector<CredentialsPtr>> bySan_;
};

}  // namespace

bool newerCertificate(const Credentials& a, const Credentials& b) {
  if (a.notBefore != b.notBefore) return a.notBefore > b.notBefore;
  if (a.notAfter != b.notAfter) return a.notAfter > b.notAfter;
  return a.name < b.name;
}

const char* howName(HostBinding::How how) {
  switch (how) {
    case HostBinding::How::kNamed:
      return "tls.certificate";
    case HostBinding::How::kStore:
      return "store";
    case HostBinding::How::kDefault:
      return "default";
    case HostBinding::How::kFallback:
      return "fallback";
  }
  return "";
}

ResolvedCertificates resolveCertificates(const conf::Config& config, time_t now,
                                         CRYPTO_BUFFER_POOL* pool) {
  ResolvedCertificates out;
  const CertificateStore store = CertificateStore::local(config);

  // Names whose load failure leaves something unserved: the default,
  // fallbacks, and the bindings of sites without a fallback. A site with a
  // fallback only loses its own certificate: a warning.
  std::set<std::string> critical;
  std::set<std::string> softOnly;  // bound only by sites that have a fallback
  if (!config.tls.defaultCertificate.empty()) critical.insert(config.tls.defaultCertificate);
  for (const conf::Site& site : config.sites) {
    if (!site.fallbackCertificate.empty()) critical.insert(site.fallbackCertificate);
    for (const std::string& name : site.certificates) {
      if (site.fallbackCertificate.empty()) critical.insert(name);
    }
  }
  for (const conf::Site& site : config.sites) {
    for (const std::string& name : site.certificates) {
      if (critical.count(name) == 0) softOnly.insert(name);
    }
  }

  for (const conf::CertificateFiles& files : config.certificates) {
    auto loaded = loadCredentials(files.name, files.certPath, files.keyPath, pool, now);
    if (!loaded.ok()) {
      addLines(softOnly.count(files.name) != 0 ? &out.warnings : &out.errors,
               "certificate '" + files.name + "': ", loaded.error().message);
      continue;
    }
    out.byName.emplace(files.name, std::move(loaded.value()));
  }

  std::set<std::string> inStore;
  std::vector<CredentialsPtr> storeCredentials;  // valid store certificates
  // An empty state_dir (only in hand-built configs) means no store.
  auto names = config.stateDir.empty()
                   ? Result<std::vector<std::string>>(std::vector<std::string>{})
                   : store.names();
  if (!names.ok()) {
    out.errors.push_back(names.error().message);
  } else {
    // Parsed up front, on a few threads for a large store (loadAll).
    std::vector<std::string> toLoad;
    for (const std::string& name : *names) {
      if (config.findCertificate(name) == nullptr) toLoad.push_back(name);
    }
    auto loadedAll = store.loadAll(toLoad, pool, now);
    size_t next = 0;
    for (const std::string& name : *names) {
      inStore.insert(name);
      if (config.findCertificate(name) != nullptr) {
        // The config may list the store's own files (the embedded default does).
        if (configListsStoreEntry(config, name)) {
          if (auto it = out.byName.find(name); it != out.byName.end()) {
            storeCredentials.push_back(it->second);
          }
          continue;
        }
        out.errors.push_back("certificate `" + name + "` is defined twice: in `certificates:` of " +
                             config.sourceName + " and in " + store.directory() + "/" + name +
                             "; rename or remove one");
        continue;
      }
      auto loaded = std::move(loadedAll[next++]);
      if (!loaded.ok()) {
        addLines(critical.count(name) != 0 ? &out.errors : &out.warnings,
                 "certificate '" + name + "' (store): ", loaded.error().message);
        continue;
      }
      storeCredentials.push_back(*loaded);
      out.byName.emplace(name, std::move(loaded.value()));
    }
  }
  std::sort(
      storeCredentials.begin(), storeCredentials.end(),
      [](const CredentialsPtr& a, const CredentialsPtr& b) { return newerCertificate(*a, *b); });

  const CoverIndex covering(storeCredentials);

  auto known = [&](const std::string& name) {
    return config.findCertificate(name) != nullptr || inStore.count(name) != 0;
  };
  auto lookup = [&](const std::string& name) -> CredentialsPtr {
    auto it = out.byName.find(name);
    return it == out.byName.end() ? nullptr : it->second;
  };
  auto unknown = [&](const std::string& name) {
    return "no certificate named `" + name + "` in `certificates:` or in " + store.directory();
  };

  const std::string& defaultName = config.tls.defaultCertificate;
  if (!defaultName.empty()) {
    if (!known(defaultName))
      out.errors.push_back("tls.default_certificate: " + unknown(defaultName));
    out.defaultCredentials = lookup(defaultName);
  }

  for (const conf::Site& site : config.sites) {
    CredentialsPtr fallback;
    if (const std::string& name = site.fallbackCertificate; !name.empty()) {
      if (!known(name)) {
        out.errors.push_back("site `" + site.name +
                             "`: tls.fallback_certificate: " + unknown(name));
      } else if ((fallback = lookup(name))) {
        for (const std::string& host : site.hosts) {
          out.fallbacks.push_back({host, site.name, fallback, HostBinding::How::kFallback});
        }
      }  // else its load failure is already listed
    }
    if (!site.certificates.empty()) {
      std::vector<CredentialsPtr> named;
      std::vector<std::string> missing;  // why the site's own certificate is unavailable
      bool complete = true;
      for (const std::string& name : site.certificates) {
        if (!known(name)) {
          missing.push_back("site `" + site.name + "`: " + unknown(name));
          complete = false;
        } else if (CredentialsPtr credentials = lookup(name)) {
          named.push_back(std::move(credentials));
        } else {
          complete = false;  // its load failure is already listed
        }
      }
      if (!complete) {
        if (fallback) {
          out.warnings.insert(out.warnings.end(), missing.begin(), missing.end());
          out.warnings.push_back("site `" + site.name + "`: its tls.certificate is unavailable, " +
                                 "served by tls.fallback_certificate `" + fallback->name + "`");
        } else {
          out.errors.insert(out.errors.end(), missing.begin(), missing.end());
        }
        continue;
      }
      if (named.size() == 2 && isEcdsa(named[0]->keyType) == isEcdsa(named[1]->keyType)) {
        out.errors.push_back("site `" + site.name + "`: tls.certificate lists `" + named[0]->name +
                             "` and `" + named[1]->name + "`, both " +
                             (isEcdsa(named[0]->keyType) ? "ECDSA" : "RSA") +
                             "; a pair must be one ECDSA and one RSA certificate");
        continue;
      }
      for (const std::string& host : site.hosts) {
        for (const CredentialsPtr& credentials : named) {
          out.hosts.push_back({host, site.name, credentials, HostBinding::How::kNamed});
        }
      }
      continue;
    }
    for (const std::string& host : site.hosts) {
      if (CredentialsPtr chosen = covering.newest(host)) {
        out.hosts.push_back({host, site.name, chosen, HostBinding::How::kStore});
      } else if (fallback || !site.fallbackCertificate.empty()) {
        // Served by `fallbacks` (or its failure is already listed).
      } else if (out.defaultCredentials) {
        out.hosts.push_back({host, site.name, out.defaultCredentials, HostBinding::How::kDefault});
      } else if (defaultName.empty() && site.acme) {
        // Not an error: the manager orders it; until then handshakes for
        // the host are refused (no fallback, no default).
        out.warnings.push_back("site `" + site.name + "`: `" + host +
                               "` is pending issuance of its ACME certificate; handshakes for "
                               "it are refused until it arrives");
      } else if (defaultName.empty()) {
        out.errors.push_back("site `" + site.name + "`: no certificate for `" + host +
                             "`: set tls.certificate, add a certificate covering it to " +
                             store.directory() +
                             " (tlsedge cert add), or set "
                             "tls.default_certificate");
      }
    }
  }
  return out;
}

bool configListsStoreEntry(const conf::Config& config, const std::string& name) {
  const conf::CertificateFiles* files = config.findCertificate(name);
  return files != nullptr &&
         samePath(files->certPath, CertificateStore::local(config).chainPath(name));
}

}  // namespace tlsedge::certstore
