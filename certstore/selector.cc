#include "certstore/selector.h"

#include <openssl/pool.h>

#include "base/log.h"

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
  ResolvedCertificates resolved = resolveCertificates(config, now, sharedBufferPool());
  for (const std::string& warning : resolved.warnings) log::warning(warning);
  if (!resolved.errors.empty()) {
    std::string errors;
    for (const std::string& line : resolved.errors) {
      if (!errors.empty()) errors.push_back('\n');
      errors += line;
    }
    return makeError(errors);
  }
  return fromBindings(resolved, config.tls.unknownSni == conf::UnknownSni::kReject);
}

std::shared_ptr<const Selector> Selector::fromBindings(const ResolvedCertificates& resolved,
                                                       bool rejectUnknown) {
  auto selector = std::make_shared<Selector>();
  selector->byName_ = resolved.byName;
  selector->default_ = resolved.defaultCredentials.get();
  selector->rejectUnknown_ = rejectUnknown;
  for (const HostBinding& binding : resolved.hosts) {
    // Config hosts are already lower-case without a trailing dot. The first
    // site to name a host keeps it (conf rejects duplicates anyway).
    // byName_ owns every credentials a binding points to.
    const std::string& host = binding.host;
    if (host.size() > 2 && host[0] == '*' && host[1] == '.') {
      selector->wildcard_.emplace(host.substr(2), binding.credentials.get());
    } else {
      selector->exact_.emplace(host, binding.credentials.get());
    }
  }
  return selector;
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
