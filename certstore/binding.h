// Binding: which certificate each configured site host gets, from the
// config's `certificates:` and the state directory's store.
//
// - `tls.certificate: NAME` (and tls.default_certificate) names an entry of
//   `certificates:` or a certificate in <state>/certs; a name in both is an
//   error (unless the config entry is the store's own files). A site may
//   name two certificates, one ECDSA and one RSA, for the same hosts: each
//   host then has two bindings (the Selector picks per client).
// - A site without tls.certificate is served, host by host, by the newest
//   valid certificate in the store whose names cover the host (exact or
//   one-label wildcard subjectAltName), else by its tls.fallback_certificate,
//   else by tls.default_certificate.
// - `tls.fallback_certificate: NAME` also serves a bound site whose own
//   certificate is unknown or fails to load: that is then a warning, not an
//   error (the site can still be served). Its hosts are listed in
//   `fallbacks` (for every host of the site, whatever its own binding: the
//   Selector consults them only after the exact and wildcard misses) and
//   left out of `hosts` when they have nothing better.
//
// The result is plain "host -> credentials" input for the Selector (or any
// snapshot structure that replaces it); nothing here is on the handshake path.
//
// Thread: control loop or CLI (blocking disk reads).
#pragma once

#include <ctime>
#include <string>
#include <unordered_map>
#include <vector>

#include "certstore/credentials.h"
#include "conf/config.h"

namespace tlsedge::certstore {

struct HostBinding {
  enum class How {
    kNamed,     // the site's tls.certificate
    kStore,     // newest store certificate covering the host (site without a binding)
    kDefault,   // tls.default_certificate (site without a binding, nothing covers the host)
    kFallback,  // the site's tls.fallback_certificate (only in `fallbacks`)
  };
  std::string host;  // as configured: exact, or "*.example.com"
  std::string site;
  CredentialsPtr credentials;
  How how = How::kNamed;
};

struct ResolvedCertificates {
  std::unordered_map<std::string, CredentialsPtr> byName;  // every certificate loaded
  CredentialsPtr defaultCredentials;                       // may be null
  std::vector<HostBinding> hosts;                          // in config order
  std::vector<HostBinding> fallbacks;  // every host of a site with tls.fallback_certificate
  std::vector<std::string> errors;     // the configuration cannot be served as is
  std::vector<std::string> warnings;   // e.g. an unused store certificate that fails to load
};

// Loads every certificate of the config and of config.stateDir's store.
// Never stops at the first problem: `errors` lists them all.
ResolvedCertificates resolveCertificates(const conf::Config& config, time_t now,
                                         CRYPTO_BUFFER_POOL* pool);

const char* howName(HostBinding::How how);

// The order among store certificates covering a host: true if `a` wins over
// `b` (later notBefore, then later notAfter, then the smaller name).
bool newerCertificate(const Credentials& a, const Credentials& b);

// True if `certificates:` has an entry `name` whose files are the store's own
// (<state>/certs/NAME/fullchain.pem): one certificate, not two.
bool configListsStoreEntry(const conf::Config& config, const std::string& name);

}  // namespace tlsedge::certstore
