#include "certstore/selector.h"

#include <openssl/pool.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include "base/ascii.h"
#include "base/log.h"

namespace tlsedge::certstore {
namespace {

// RFC 1035 section 2.3.4: at most 253 characters without the trailing dot.
constexpr size_t kMaxHostLength = 253;

CredentialsPtr& slotFor(Selector::HostCredentials& host, KeyType type) {
  return isEcdsa(type) ? host.ecdsa : host.rsa;
}

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
  Input input;
  input.certificates.reserve(resolved.byName.size());
  for (const auto& [name, credentials] : resolved.byName) input.certificates.push_back(credentials);
  input.hosts.reserve(resolved.hosts.size());
  for (const HostBinding& binding : resolved.hosts) {
    input.hosts.emplace_back(binding.host, binding.credentials->name);
  }
  input.fallbacks.reserve(resolved.fallbacks.size());
  for (const HostBinding& binding : resolved.fallbacks) {
    input.fallbacks.emplace_back(binding.host, binding.credentials->name);
  }
  if (resolved.defaultCredentials != nullptr) input.defaultName = resolved.defaultCredentials->name;
  input.rejectUnknown = rejectUnknown;
  return make(std::move(input));
}

std::shared_ptr<const Selector> Selector::make(Input input) {
  auto selector = std::make_shared<Selector>();
  std::unordered_map<std::string, std::shared_ptr<Named>> named;
  for (CredentialsPtr& credentials : input.certificates) {
    auto n = std::make_shared<Named>();
    n->credentials = credentials;
    named.emplace(credentials->name, std::move(n));  // the first of a name wins
  }
  std::vector<ShardedIndex<HostCredentials>::Entry> hostEntries;
  hostEntries.reserve(input.hosts.size());
  std::unordered_map<std::string, size_t> seen;  // host -> index in hostEntries
  for (auto& [host, name] : input.hosts) {
    auto it = named.find(name);
    if (it == named.end()) continue;
    const CredentialsPtr& credentials = it->second->credentials;
    auto [at, fresh] = seen.emplace(host, hostEntries.size());
    if (fresh) hostEntries.emplace_back(host, HostCredentials{});
    CredentialsPtr& slot = slotFor(hostEntries[at->second].second, credentials->keyType);
    if (slot != nullptr) continue;  // the first of a key type wins
    slot = credentials;
    it->second->hosts.push_back(std::move(host));
  }
  std::vector<ShardedIndex<NamedPtr>::Entry> nameEntries;
  nameEntries.reserve(named.size());
  for (auto& [name, n] : named) nameEntries.emplace_back(name, std::move(n));
  selector->hosts_ = ShardedIndex<HostCredentials>::build(std::move(hostEntries));
  selector->names_ = ShardedIndex<NamedPtr>::build(std::move(nameEntries));
  std::vector<ShardedIndex<FallbackName>::Entry> fallbackEntries;
  fallbackEntries.reserve(input.fallbacks.size());
  for (auto& [host, name] : input.fallbacks) {
    fallbackEntries.emplace_back(host, std::make_shared<const std::string>(name));
  }
  selector->fallbacks_ = ShardedIndex<FallbackName>::build(std::move(fallbackEntries));
  selector->defaultName_ = std::move(input.defaultName);
  if (!selector->defaultName_.empty()) {
    if (const NamedPtr* d = selector->names_.find(selector->defaultName_)) {
      selector->default_ = (*d)->credentials;
    }
  }
  selector->rejectUnknown_ = input.rejectUnknown;
  return selector;
}

const Credentials* Selector::credentials(const std::string& name) const {
  const NamedPtr* n = names_.find(name);
  return n == nullptr ? nullptr : (*n)->credentials.get();
}

std::shared_ptr<const Selector> Selector::withCertificate(CredentialsPtr credentials,
                                                          size_t* bytesCopied) const {
  auto next = std::make_shared<Selector>(*this);  // shares every shard
  auto n = std::make_shared<Named>();
  n->credentials = credentials;
  if (const NamedPtr* old = names_.find(credentials->name)) n->hosts = (*old)->hosts;
  for (const std::string& host : n->hosts) {
    const HostCredentials* bound = next->hosts_.find(host);
    HostCredentials updated = bound != nullptr ? *bound : HostCredentials{};
    if (updated.ecdsa != nullptr && updated.ecdsa->name == credentials->name)
      updated.ecdsa = nullptr;
    if (updated.rsa != nullptr && updated.rsa->name == credentials->name) updated.rsa = nullptr;
    CredentialsPtr& slot = slotFor(updated, credentials->keyType);
    // The replacement changed key type and now collides with the host's other
    // certificate: the replacement wins this host.
    if (slot != nullptr) next->forgetHost(slot->name, host, bytesCopied);
    slot = credentials;
    next->hosts_ = next->hosts_.set(host, std::move(updated), bytesCopied);
  }
  if (credentials->name == defaultName_) next->default_ = credentials;
  next->names_ = next->names_.set(credentials->name, std::move(n), bytesCopied);
  return next;
}

std::shared_ptr<const Selector> Selector::withoutCertificate(const std::string& name,
                                                             size_t* bytesCopied) const {
  const NamedPtr* old = names_.find(name);
  if (old == nullptr) return std::make_shared<Selector>(*this);
  auto next = std::make_shared<Selector>(*this);
  for (const std::string& host : (*old)->hosts) {
    const HostCredentials* bound = next->hosts_.find(host);
    if (bound == nullptr) continue;
    HostCredentials updated = *bound;
    if (updated.ecdsa != nullptr && updated.ecdsa->name == name) updated.ecdsa = nullptr;
    if (updated.rsa != nullptr && updated.rsa->name == name) updated.rsa = nullptr;
    if (updated.ecdsa == nullptr && updated.rsa == nullptr) {
      next->hosts_ = next->hosts_.erase(host, bytesCopied);
    } else {
      next->hosts_ = next->hosts_.set(host, std::move(updated), bytesCopied);
    }
  }
  if (name == defaultName_) next->default_ = nullptr;
  next->names_ = next->names_.erase(name, bytesCopied);
  return next;
}

std::shared_ptr<const Selector> Selector::withHost(const std::string& host, const std::string& name,
                                                   size_t* bytesCopied) const {
  auto next = std::make_shared<Selector>(*this);
  if (names_.find(name) == nullptr) return next;
  next->unbind(host, bytesCopied);
  next->bind(host, name, bytesCopied);
  return next;
}

std::shared_ptr<const Selector> Selector::withHostNames(const std::string& host,
                                                        const std::vector<std::string>& names,
                                                        size_t* bytesCopied) const {
  auto next = std::make_shared<Selector>(*this);
  if (names.empty()) return next;
  for (const std::string& name : names) {
    if (names_.find(name) == nullptr) return next;
  }
  next->unbind(host, bytesCopied);
  for (const std::string& name : names) next->bind(host, name, bytesCopied);
  return next;
}

std::shared_ptr<const Selector> Selector::withoutHost(const std::string& host,
                                                      size_t* bytesCopied) const {
  auto next = std::make_shared<Selector>(*this);
  next->unbind(host, bytesCopied);
  return next;
}

// Called after unbind(host): the host has no certificate yet, or (the second
// of a pair) only one of the other key type; the first of a key type wins.
void Selector::bind(const std::string& host, const std::string& name, size_t* bytesCopied) {
  const NamedPtr* n = names_.find(name);
  const HostCredentials* had = hosts_.find(host);
  HostCredentials bound = had != nullptr ? *had : HostCredentials{};
  CredentialsPtr& slot = slotFor(bound, (*n)->credentials->keyType);
  if (slot != nullptr) return;
  auto updated = std::make_shared<Named>(**n);
  updated->hosts.push_back(host);
  slot = updated->credentials;
  hosts_ = hosts_.set(host, std::move(bound), bytesCopied);
  names_ = names_.set(name, std::move(updated), bytesCopied);
}

void Selector::unbind(const std::string& host, size_t* bytesCopied) {
  const HostCredentials* bound = hosts_.find(host);
  if (bound == nullptr) return;
  const HostCredentials old = *bound;
  hosts_ = hosts_.erase(host, bytesCopied);
  if (old.ecdsa != nullptr) forgetHost(old.ecdsa->name, host, bytesCopied);
  if (old.rsa != nullptr) forgetHost(old.rsa->name, host, bytesCopied);
}

void Selector::forgetHost(const std::string& name, const std::string& host, size_t* bytesCopied) {
  const NamedPtr* n = names_.find(name);
  if (n == nullptr) return;
  auto updated = std::make_shared<Named>(**n);
  std::erase(updated->hosts, host);
  names_ = names_.set(name, std::move(updated), bytesCopied);
}

Selector::Choice Selector::fallback() const {
  if (default_ == nullptr || rejectUnknown_) return {nullptr, Outcome::kMiss};
  return {default_.get(), Outcome::kDefault};
}

const Credentials* Selector::siteFallback(std::string_view key) const noexcept {
  const FallbackName* name = fallbacks_.find(key);
  if (name == nullptr) return nullptr;
  const NamedPtr* n = names_.find(**name);
  return n == nullptr ? nullptr : (*n)->credentials.get();
}

Selector::Choice Selector::select(std::string_view sni, bool acceptsEcdsa) const {
  if (sni.empty()) {
    return default_ != nullptr ? Choice{default_.get(), Outcome::kDefault} : Choice{};
  }
  if (sni.back() == '.') sni.remove_suffix(1);
  if (sni.empty() || sni.size() > kMaxHostLength) return fallback();

  // Lower-case into a stack buffer: no allocation per handshake.
  char buffer[kMaxHostLength];
  const std::string_view host = ascii::lowerInto(sni, buffer);

  // Wildcards live in the same index under "*.suffix": a name starting with
  // '*' is never an exact host, it can only reach them below.
  const bool exact = host[0] != '*';
  // One-label wildcard (RFC 6125 section 6.4.3): exactly the first label
  // replaced with '*', in a second stack buffer so both keys exist at once.
  const size_t dot = host.find('.');
  const bool wildcard = dot != std::string_view::npos && dot > 0 && dot + 1 < host.size();
  char wildBuffer[kMaxHostLength];
  std::string_view wildKey;
  if (wildcard) {
    wildBuffer[0] = '*';
    std::memcpy(wildBuffer + 1, host.data() + dot, host.size() - dot);
    wildKey = std::string_view(wildBuffer, host.size() - dot + 1);
  }
  // Both probes' reads in flight before either is waited for: a wildcard
  // hit or a miss costs about one memory round trip, not two in a row
  // (docs/benchmarks.md).
  using Located = ShardedIndex<HostCredentials>::Located;
  const Located exactAt = exact ? hosts_.locate(host) : Located{};
  const Located wildAt = wildcard ? hosts_.locate(wildKey) : Located{};
  hosts_.prefetch(exactAt);
  hosts_.prefetch(wildAt);
  if (exact) {
    if (const HostCredentials* c = hosts_.find(host, exactAt))
      return {c->pick(acceptsEcdsa), Outcome::kExact};
  }
  if (wildcard) {
    if (const HostCredentials* c = hosts_.find(wildKey, wildAt))
      return {c->pick(acceptsEcdsa), Outcome::kWildcard};
  }
  // The site's own fallback: only after both misses, and only if some site
  // has one (an empty index costs one size check). The exact host first (its
  // site), then the wildcard site host.
  if (fallbacks_.size() != 0) {
    if (exact) {
      if (const Credentials* c = siteFallback(host)) return {c, Outcome::kSiteFallback};
    }
    if (wildcard) {
      if (const Credentials* c = siteFallback(wildKey)) return {c, Outcome::kSiteFallback};
    }
  }
  return fallback();
}

}  // namespace tlsedge::certstore
