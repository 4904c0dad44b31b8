// Selector: which credentials a handshake gets for its SNI.
//
// Order: exact host -> one-label wildcard site host ("*.example.com" for
// "a.example.com", never "a.b.example.com") -> the configured default ->
// refuse (if tls.unknown_sni is reject) or no credentials.
// A site's certificate is its `tls.certificate`, else the newest store
// certificate covering the host, else tls.default_certificate (binding.h).
//
// A handshake without SNI gets the default even under reject: it names no
// host that could be unknown (IP-literal access, old clients, probes).
//
// Immutable after build(); select() is lock-free and allocation-free on
// the handshake path, safe from any worker. This is the one function the
// certificate store issue replaces with snapshot-based lookup.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"
#include "certstore/binding.h"
#include "certstore/credentials.h"
#include "conf/config.h"

namespace tlsedge::certstore {

class Selector {
 public:
  enum class Outcome { kExact, kWildcard, kDefault, kMiss };
  struct Choice {
    const Credentials* credentials = nullptr;  // null: refuse the handshake
    Outcome outcome = Outcome::kMiss;
  };

  // Loads every certificate of the config and of its state directory's
  // store, binds site hosts (resolveCertificates, binding.h) and builds the
  // maps. Fails, listing every problem, if a bound certificate cannot be
  // loaded or a name is unknown; unused store certificates that fail to load
  // are logged as warnings.
  static Result<std::shared_ptr<const Selector>> build(const conf::Config& config, time_t now);

  // The maps for already resolved bindings (which must be error-free).
  static std::shared_ptr<const Selector> fromBindings(const ResolvedCertificates& resolved,
                                                      bool rejectUnknown);

  // `sni` may be empty (no SNI sent). Case-insensitive; a trailing dot is ignored.
  Choice select(std::string_view sni) const;

  const std::unordered_map<std::string, CredentialsPtr>& credentialsByName() const {
    return byName_;
  }

 private:
  // Transparent hashing: select() looks up a string_view over a stack buffer
  // without building a std::string (no allocation on the handshake path).
  struct HostHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using HostMap = std::unordered_map<std::string, const Credentials*, HostHash, std::equal_to<>>;

  Choice fallback() const;

  std::unordered_map<std::string, CredentialsPtr> byName_;
  HostMap exact_;     // host -> creds
  HostMap wildcard_;  // "example.com" for "*.example.com"
  const Credentials* default_ = nullptr;
  bool rejectUnknown_ = false;
};

}  // namespace tlsedge::certstore
