// Selector: which credentials a handshake gets for its SNI.
//
// Order: exact host -> one-label wildcard site host ("*.example.com" for
// "a.example.com", never "a.b.example.com") -> the configured default ->
// refuse (if tls.unknown_sni is reject) or no credentials.
// A site's certificate is its `tls.certificate`, else tls.default_certificate.
//
// Immutable after build(); select() is lock-free and allocation-free on
// the handshake path, safe from any worker. This is the one function the
// certificate store issue replaces with snapshot-based lookup.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"
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

  // Loads every certificate named in the config and maps each site host to
  // its site's certificate. Fails (listing every problem) if a file cannot be
  // loaded or validated.
  static Result<std::shared_ptr<const Selector>> build(const conf::Config& config, time_t now);

  // `sni` may be empty (no SNI sent). Case-insensitive; a trailing dot is ignored.
  Choice select(std::string_view sni) const;

  const std::unordered_map<std::string, CredentialsPtr>& credentialsByName() const {
    return byName_;
  }

 private:
  std::unordered_map<std::string, CredentialsPtr> byName_;
  std::unordered_map<std::string, const Credentials*> exact_;     // host -> creds
  std::unordered_map<std::string, const Credentials*> wildcard_;  // "example.com" for "*.example.com"
  const Credentials* default_ = nullptr;
  bool rejectUnknown_ = false;
  bssl::UniquePtr<CRYPTO_BUFFER_POOL> pool_;
};

}  // namespace tlsedge::certstore
