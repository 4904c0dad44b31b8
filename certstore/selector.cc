#include "certstore/selector.h"

#include <openssl/pool.h>

namespace tlsedge::certstore {
namespace {

// RFC 1035 section 2.3.4: at most 253 characters without the trailing dot.
constexpr size_t kMaxHostLength = 253;

}  // namespace

CRYPTO_BUFFER_POOL* sharedBufferPool() {
  static CRYPTO_BUFFER_POOL* const pool = CRYPTO_BUFFER_POOL_new();
  return pool;
}

Result<std::shared_ptr<const Selector>> Selector::build(const conf::Config& config, time_t now) {
  auto selector = std::make_shared<Selector>();
  std::string errors;
  auto fail = [&errors](const std::string& line) {
    if (!errors.empty()) errors.push_back('\n');
    errors += line;
  };

  for (const conf::CertificateFiles& files : config.certificates) {
    auto loaded =
        loadCredentials(files.name, files.certPath, files.keyPath, sharedBufferPool(), now);
    if (!loaded.ok()) {
      // Multi-line causes stay readable: every line names the certificate.
      const std::string& message = loaded.error().message;
      size_t start = 0;
      while (start <= message.size()) {
        size_t end = message.find('\n', start);
        if (end == std::string::npos) end = message.size();
        fail("certificate '" + files.name + "': " + message.substr(start, end - start));
        start = end + 1;
      }
      continue;
    }
    selector->byName_.emplace(files.name, std::move(loaded.value()));
  }

  auto lookup = [&](const std::string& name) -> const Credentials* {
    auto it = selector->byName_.find(name);
    return it == selector->byName_.end() ? nullptr : it->second.get();
  };
  auto known = [&](const std::string& name) {
    for (const conf::CertificateFiles& files : config.certificates) {
      if (files.name == name) return true;
    }
    return false;
  };

  const std::string& defaultName = config.tls.defaultCertificate;
  if (!defaultName.empty()) {
    if (!known(defaultName)) {
      fail("tls.default_certificate: no certificate named '" + defaultName + "'");
    }
    selector->default_ = lookup(defaultName);
  }
  selector->rejectUnknown_ = config.tls.unknownSni == conf::UnknownSni::kReject;

  for (const conf::Site& site : config.sites) {
    const std::string& certName = site.certificate.empty() ? defaultName : site.certificate;
    // A site with neither its own nor a default certificate (an ACME site
    // before its first issuance) maps nothing: its hosts fall through.
    if (certName.empty()) continue;
    if (!known(certName)) {
      if (!site.certificate.empty()) {
        fail("site '" + site.name + "': no certificate named '" + certName + "'");
      }
      continue;
    }
    const Credentials* credentials = lookup(certName);
    if (credentials == nullptr) continue;  // its load failure is already listed
    for (const std::string& host : site.hosts) {
      // Config hosts are already lower-case without a trailing dot. The first
      // site to name a host keeps it (conf rejects duplicates anyway).
      if (host.size() > 2 && host[0] == '*' && host[1] == '.') {
        selector->wildcard_.emplace(host.substr(2), credentials);
      } else {
        selector->exact_.emplace(host, credentials);
      }
    }
  }

  if (!errors.empty()) return makeError(errors);
  return std::shared_ptr<const Selector>(std::move(selector));
}

Selector::Choice Selector::fallback() const {
  if (default_ == nullptr || rejectUnknown_) return {nullptr, Outcome::kMiss};
  return {default_, Outcome::kDefault};
}

Selector::Choice Selector::select(std::string_view sni) const {
  if (sni.empty()) {
    return default_ != nullptr ? Choice{default_, Outcome::kDefault} : Choice{};
  }
  if (sni.back() == '.') sni.remove_suffix(1);
  if (sni.empty() || sni.size() > kMaxHostLength) return fallback();

  // Lower-case into a stack buffer: no allocation per handshake.
  char buffer[kMaxHostLength];
  for (size_t i = 0; i < sni.size(); ++i) {
    char c = sni[i];
    buffer[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const std::string_view host(buffer, sni.size());

  if (auto it = exact_.find(host); it != exact_.end()) return {it->second, Outcome::kExact};
  // One-label wildcard (RFC 6125 section 6.4.3): strip exactly the first label.
  size_t dot = host.find('.');
  if (dot != std::string_view::npos && dot > 0 && dot + 1 < host.size()) {
    if (auto it = wildcard_.find(host.substr(dot + 1)); it != wildcard_.end()) {
      return {it->second, Outcome::kWildcard};
    }
  }
  return fallback();
}

}  // namespace tlsedge::certstore
