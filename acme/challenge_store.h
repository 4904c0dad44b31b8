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

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "certstore/credentials.h"

namespace tlsedge::acme {

// Fleet mode: where this node's challenge answers go so that every node of
// the fleet serves them (daemon/fleet_acme.h), whichever one the CA's
// validation reaches; they come back to every node's store through
// putShared. Only key authorizations travel: each node makes its own
// TLS-ALPN-01 certificate from one, so no private key leaves the node.
class ChallengeSharing {
 public:
  enum class Kind { kHttp01, kTlsAlpn01 };
  using Done = std::function<void(Status)>;
  virtual ~ChallengeSharing() = default;
  // Control loop. `done` runs on the control loop, never inside share():
  // Ok once the answer is in the fleet's store (every node has it, or is
  // about to), else why not.
  virtual void share(Kind kind, const std::string& id, const std::string& keyAuthorization,
                     Done done) = 0;
  virtual void unshare(Kind kind, const std::string& id) = 0;
};

class ChallengeStore {
 public:
  using Map = std::map<std::string, std::string, std::less<>>;
  using Done = ChallengeSharing::Done;

  // Control loop; `sharing` outlives the store's use (null: a single node).
  void setSharing(ChallengeSharing* sharing) { sharing_ = sharing; }

  // Control loop: this node's answers (the ACME client's, the pre-flight's).
  // `shared` runs once every node can give the answer: right away on a
  // single node, after the fleet's store has it in fleet mode. Entries put()
  // here and entries loaded from files are kept apart: reloading the
  // directory (SIGHUP) never drops a challenge an order in progress relies
  // on. put() wins over a file.
  void put(const std::string& token, const std::string& keyAuthorization, Done shared = {});
  void remove(const std::string& token);
  // The TLS-ALPN-01 certificate for `host` (any case), made from the key
  // authorization (acme/tls_alpn.h). Errors: the certificate could not be
  // made (`shared` is not called then).
  Status putTlsAlpn(const std::string& host, const std::string& keyAuthorization, Done shared = {});
  void removeTlsAlpn(const std::string& host);

  // Control loop: the answers the fleet's nodes shared (this node's too),
  // as the fleet's store holds them; below this node's own.
  void putShared(ChallengeSharing::Kind kind, const std::string& id,
                 const std::string& keyAuthorization);
  void removeShared(ChallengeSharing::Kind kind, const std::string& id);
  void clearShared();

  // Loads every regular file in `dir` as token (file name) -> content with
  // surrounding whitespace trimmed, replacing what was loaded from files
  // before. A missing directory is empty, not an error.
  Status loadDirectory(const std::string& dir);

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
  struct SharedAlpn {
    std::string keyAuthorization;
    certstore::CredentialsPtr certificate;
  };
  void share(ChallengeSharing::Kind kind, const std::string& id,
             const std::string& keyAuthorization, Done shared);
  void publish();  // control loop: the layers merged, for readers
  std::shared_ptr<const Snapshot> snapshot() const;

  // Control loop only.
  Map files_;
  Map live_;
  AlpnMap alpn_;
  Map sharedTokens_;
  std::map<std::string, SharedAlpn, std::less<>> sharedAlpn_;
  ChallengeSharing* sharing_ = nullptr;
  // A sanctioned lock (docs/principles.md, and above): guards map_ (the
  // pointer, not the map); only challenge requests take it.
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> map_ = std::make_shared<const Snapshot>();
};

// True if `token` is a syntactically valid ACME token (base64url alphabet,
// 1..256 characters): anything else is answered 404 without a lookup.
bool validToken(std::string_view token);

}  // namespace tlsedge::acme
