#include "certstore/binding.h"

#include <algorithm>
#include <filesystem>
#include <set>

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

// Newer first: later notBefore, then later notAfter, then the name.
bool newer(const Credentials& a, const Credentials& b) {
  if (a.notBefore != b.notBefore) return a.notBefore > b.notBefore;
  if (a.notAfter != b.notAfter) return a.notAfter > b.notAfter;
  return a.name < b.name;
}

}  // namespace

const char* howName(HostBinding::How how) {
  switch (how) {
    case HostBinding::How::kNamed:
      return "tls.certificate";
    case HostBinding::How::kStore:
      return "store";
    case HostBinding::How::kDefault:
      return "default";
  }
  return "";
}

ResolvedCertificates resolveCertificates(const conf::Config& config, time_t now,
                                         CRYPTO_BUFFER_POOL* pool) {
  ResolvedCertificates out;
  const CertificateStore store = CertificateStore::forStateDir(config.stateDir);

  for (const conf::CertificateFiles& files : config.certificates) {
    auto loaded = loadCredentials(files.name, files.certPath, files.keyPath, pool, now);
    if (!loaded.ok()) {
      addLines(&out.errors, "certificate '" + files.name + "': ", loaded.error().message);
      continue;
    }
    out.byName.emplace(files.name, std::move(loaded.value()));
  }

  std::set<std::string> referenced;
  if (!config.tls.defaultCertificate.empty()) referenced.insert(config.tls.defaultCertificate);
  for (const conf::Site& site : config.sites) {
    referenced.insert(site.certificates.begin(), site.certificates.end());
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
      auto loaded = store.load(name, pool, now);
      if (!loaded.ok()) {
        addLines(referenced.count(name) != 0 ? &out.errors : &out.warnings,
                 "certificate '" + name + "' (store): ", loaded.error().message);
        continue;
      }
      storeCredentials.push_back(*loaded);
      out.byName.emplace(name, std::move(loaded.value()));
    }
  }
  std::sort(storeCredentials.begin(), storeCredentials.end(),
            [](const CredentialsPtr& a, const CredentialsPtr& b) { return newer(*a, *b); });

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
    if (!site.certificates.empty()) {
      std::vector<CredentialsPtr> named;
      bool complete = true;
      for (const std::string& name : site.certificates) {
        if (!known(name)) {
          out.errors.push_back("site `" + site.name + "`: " + unknown(name));
          complete = false;
        } else if (CredentialsPtr credentials = lookup(name)) {
          named.push_back(std::move(credentials));
        } else {
          complete = false;  // its load failure is already listed
        }
      }
      if (!complete) continue;
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
      CredentialsPtr chosen;
      for (const CredentialsPtr& candidate : storeCredentials) {
        if (candidate->covers(host)) {
          chosen = candidate;
          break;
        }
      }
      if (chosen) {
        out.hosts.push_back({host, site.name, chosen, HostBinding::How::kStore});
      } else if (out.defaultCredentials) {
        out.hosts.push_back({host, site.name, out.defaultCredentials, HostBinding::How::kDefault});
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
         samePath(files->certPath, CertificateStore::forStateDir(config.stateDir).chainPath(name));
}

std::vector<std::string> sitesUsing(const ResolvedCertificates& resolved,
                                    const conf::Config& config, const std::string& name) {
  std::vector<std::string> sites;
  auto add = [&sites](const std::string& site) {
    if (std::find(sites.begin(), sites.end(), site) == sites.end()) sites.push_back(site);
  };
  for (const conf::Site& site : config.sites) {
    if (std::find(site.certificates.begin(), site.certificates.end(), name) !=
        site.certificates.end()) {
      add(site.name);
    }
  }
  for (const HostBinding& binding : resolved.hosts) {
    if (binding.credentials && binding.credentials->name == name) add(binding.site);
  }
  return sites;
}

}  // namespace tlsedge::certstore
