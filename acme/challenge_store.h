// ChallengeStore: HTTP-01 key authorizations by token (RFC 8555 section 8.3)
// and TLS-ALPN-01 challenge certificates by host (RFC 8737).
//
// Written on the control loop (ACME client; for HTTP-01 also files in
// <state>/acme/challenges/), read by workers answering
// /.well-known/acme-challenge/<token> and handshakes offering ALPN
// `acme-tls/1` (only those: an ordinary handshake never looks here). Readers
// copy the immutable snapshot's
// shared_ptr under a mutex held for that copy only (the writer holds it for
// the pointer swap only): only challenge requests pay it, never the ordinary
// request path. Not std::atomic<std::shared_ptr>: libstdc++ 12 releases its
// internal lock with relaxed order after a load, which ThreadSanitizer
// reports as a race against the next store (seen with Pebble validating
// while the ACME client wrote).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "certstore/credentials.h"

namespace tlsedge::acme {

class ChallengeStore {
 public:
  using Map = std::map<std::string, std::string, std::less<>>;

  // Control loop. Entries put() by the ACME client and entries loaded from
  // files are kept apart: reloading the directory (SIGHUP) never drops a
  // challenge an order in progress relies on. put() wins over a file.
  void put(const std::string& token, const std::string& keyAuthorization);
  void remove(const std::string& token);
  // Loads every regular file in `dir` as token (file name) -> content with
  // surrounding whitespace trimmed, replacing what was loaded from files
  // before. A missing directory is empty, not an error.
  Status loadDirectory(const std::string& dir);

  // Control loop: the TLS-ALPN-01 certificate for `host` (any case), made
  // beforehand by makeTlsAlpnCertificate (acme/tls_alpn.h).
  void putTlsAlpn(const std::string& host, certstore::CredentialsPtr certificate);
  void removeTlsAlpn(const std::string& host);

  // Any thread.
  std::optional<std::string> find(std::string_view token) const;
  // Any thread (the handshake callback): null when no challenge is pending
  // for `host` (compared case-insensitively). Allocation-free but for the
  // shared_ptr copies.
  certstore::CredentialsPtr findTlsAlpn(std::string_view host) const;

 private:
  using AlpnMap = std::map<std::string, certstore::CredentialsPtr, std::less<>>;
  struct Snapshot {
    Map tokens;
    AlpnMap alpn;  // lower-case host -> challenge certificate
  };
  void publish();  // control loop: files_ overlaid with live_, plus alpn_, for readers
  std::shared_ptr<const Snapshot> snapshot() const;

  Map files_;     // control loop only
  Map live_;      // control loop only
  AlpnMap alpn_;  // control loop only
  // A sanctioned lock (docs/principles.md, and above): guards map_ (the
  // pointer, not the map); only challenge requests take it.
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> map_ = std::make_shared<const Snapshot>();
};

// True if `token` is a syntactically valid ACME token (base64url alphabet,
// 1..256 characters): anything else is answered 404 without a lookup.
bool validToken(std::string_view token);

}  // namespace tlsedge::acme
