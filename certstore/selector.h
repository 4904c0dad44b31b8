// Selector: which credentials a handshake gets for its SNI.
//
// Order: exact host -> one-label wildcard site host ("*.example.com" for
// "a.example.com", never "a.b.example.com") -> the site's own fallback
// (tls.fallback_certificate of the site listing the host, exact then
// wildcard) -> the configured default -> refuse (if tls.unknown_sni is
// reject) or no credentials.
// A site's certificate is its `tls.certificate`, else the newest store
// certificate covering the host, else its fallback, else
// tls.default_certificate (binding.h). A host whose own certificate is
// unavailable is simply absent from the host index; the fallbacks are a
// third index (host -> certificate name, fixed per config) consulted only
// after both misses, so an exact hit costs what it did, and a fallback
// certificate swapped or removed needs no fallback-index change (the name is
// looked up in the name index at selection).
//
// A host may have two certificates, one ECDSA and one RSA (a site's
// `tls.certificate: [ecdsa-name, rsa-name]`): a client that accepts ECDSA
// gets the ECDSA one, any other client the RSA one (select()'s
// `acceptsEcdsa`, decided from the ClientHello by tls/tls_context.cc).
//
// A handshake without SNI gets the default even under reject: it names no
// host that could be unknown (IP-literal access, old clients, probes).
//
// Immutable after build(): a Selector is a certificate *snapshot*. Its two
// indexes (host -> credentials, name -> credentials and bound hosts) are
// ShardedIndex (snapshot.h): a one-certificate change (withCertificate, ...)
// makes a new Selector that shares every shard but the changed ones, in
// O(hosts of that certificate x shard size), never O(store).
//
// Thread: built and changed on the control loop; select() is lock-free and
// allocation-free on the handshake path, safe from any worker. Lifetime:
// shared_ptr<const Selector>; credentials live while any snapshot (or an SSL
// that installed them) holds them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "certstore/binding.h"
#include "certstore/credentials.h"
#include "certstore/snapshot.h"
#include "conf/config.h"

namespace tlsedge::certstore {

class Selector {
 public:
  enum class Outcome { kExact, kWildcard, kSiteFallback, kDefault, kMiss };
  struct Choice {
    const Credentials* credentials = nullptr;  // null: refuse the handshake
    Outcome outcome = Outcome::kMiss;
  };

  // The certificates bound to one host: at most one of each key type, at
  // least one set.
  struct HostCredentials {
    CredentialsPtr ecdsa;
    CredentialsPtr rsa;

    // ECDSA if the client accepts it and there is one, else RSA if there is
    // one, else what there is (the client may still manage).
    const Credentials* pick(bool acceptsEcdsa) const noexcept {
      if (ecdsa != nullptr && (acceptsEcdsa || rsa == nullptr)) return ecdsa.get();
      return rsa.get();
    }
  };

  // What a snapshot is built from: credentials by name (Credentials::name)
  // and host bindings ("host" or "*.suffix", lower-case, no trailing dot ->
  // certificate name). Sources (config files, the state directory, site
  // binding rules) each produce one; make() does not read files.
  struct Input {
    std::vector<CredentialsPtr> certificates;
    // A host may appear twice, with an ECDSA and an RSA certificate; otherwise
    // the first binding of a host (per key type) wins.
    std::vector<std::pair<std::string, std::string>> hosts;
    // Site host -> its site's fallback certificate name (first of a host wins).
    std::vector<std::pair<std::string, std::string>> fallbacks;
    std::string defaultName;  // empty: none
    bool rejectUnknown = false;
  };

  // Loads every certificate of the config and of its state directory's
  // store, binds site hosts (resolveCertificates, binding.h) and builds the
  // maps. Fails, listing every problem, if a bound certificate cannot be
  // loaded or a name is unknown; unused store certificates that fail to load
  // are logged as warnings.
  static Result<std::shared_ptr<const Selector>> build(const conf::Config& config, time_t now);
  // Bindings naming an unknown certificate are ignored.
  static std::shared_ptr<const Selector> make(Input input);

  // The maps for already resolved bindings (which must be error-free).
  static std::shared_ptr<const Selector> fromBindings(const ResolvedCertificates& resolved,
                                                      bool rejectUnknown);

  // `sni` may be empty (no SNI sent). Case-insensitive; a trailing dot is
  // ignored. `acceptsEcdsa`: the client can verify an ECDSA certificate in
  // the version and cipher suites it offers (picks within a host's pair).
  Choice select(std::string_view sni, bool acceptsEcdsa = true) const;

  // --- O(changed) updates (control loop). Each returns a new snapshot that
  // shares everything unchanged with this one; this one is not modified.
  // `bytesCopied` (optional) accumulates the bytes the path copies cost.

  // Adds or replaces the certificate named credentials->name; hosts bound to
  // that name (and the default, if it is that name) now get the new one.
  std::shared_ptr<const Selector> withCertificate(CredentialsPtr credentials,
                                                  size_t* bytesCopied = nullptr) const;
  // Removes a certificate and every host binding to it (the default stays
  // named but serves nothing until a certificate of that name comes back).
  std::shared_ptr<const Selector> withoutCertificate(const std::string& name,
                                                     size_t* bytesCopied = nullptr) const;
  // Binds (or rebinds) one host to a known certificate, replacing any pair it
  // had; unchanged if the name is unknown.
  std::shared_ptr<const Selector> withHost(const std::string& host, const std::string& name,
                                           size_t* bytesCopied = nullptr) const;
  // Binds (or rebinds) one host to a pair (one ECDSA, one RSA; or one
  // name), replacing what it had; unchanged if a name is unknown.
  std::shared_ptr<const Selector> withHostNames(const std::string& host,
                                                const std::vector<std::string>& names,
                                                size_t* bytesCopied = nullptr) const;
  std::shared_ptr<const Selector> withoutHost(const std::string& host,
                                              size_t* bytesCopied = nullptr) const;

  // Null if no certificate has that name.
  const Credentials* credentials(const std::string& name) const;
  size_t certificateCount() const { return names_.size(); }
  size_t hostCount() const { return hosts_.size(); }
  size_t fallbackCount() const { return fallbacks_.size(); }

  // The indexes, for tests that check sharing between snapshots.
  struct Named {
    CredentialsPtr credentials;
    std::vector<std::string> hosts;  // bound to it
  };
  using NamedPtr = std::shared_ptr<const Named>;
  // Shared, so index values copy without allocating (ShardedIndex needs that).
  using FallbackName = std::shared_ptr<const std::string>;
  const ShardedIndex<HostCredentials>& hostIndex() const { return hosts_; }
  const ShardedIndex<NamedPtr>& nameIndex() const { return names_; }
  const ShardedIndex<FallbackName>& fallbackIndex() const { return fallbacks_; }

 private:
  Choice fallback() const;
  // The site fallback for `key` ("host" or "*.suffix"), if any.
  const Credentials* siteFallback(std::string_view key) const noexcept;
  void bind(const std::string& host, const std::string& name, size_t* bytesCopied);
  void unbind(const std::string& host, size_t* bytesCopied);
  // Removes `host` from the bound-host list of certificate `name`.
  void forgetHost(const std::string& name, const std::string& host, size_t* bytesCopied);

  ShardedIndex<HostCredentials> hosts_;   // "host" or "*.suffix" -> credentials
  ShardedIndex<NamedPtr> names_;          // certificate name -> credentials, bound hosts
  ShardedIndex<FallbackName> fallbacks_;  // site host -> its site's fallback certificate name
  std::string defaultName_;
  CredentialsPtr default_;
  bool rejectUnknown_ = false;
};

}  // namespace tlsedge::certstore
