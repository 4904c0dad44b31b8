// The local CA behind `acme: { directory: internal }`: an ECDSA P-256 root
// kept in <state_dir>/acme/local-ca/ (ca.pem 0644, ca.key 0600, each
// written atomically), made on first use and reused afterwards, and the
// server certificates it signs. For development and the demo: a developer
// trusts ca.pem (`curl --cacert`), nobody else does.
//
// Thread: any; LocalCa::open blocks on the storage (the local issuer calls
// it on libuv's thread pool); issue is pure.
#pragma once

#include <openssl/base.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "certstore/key_material.h"
#include "certstore/storage.h"

namespace tlsedge::acme {

// <stateDir>/acme/local-ca
// The storage group of the local CA: acme/local-ca (<state>/acme/local-ca).
inline constexpr const char* kLocalCaKey = "acme/local-ca";

class LocalCa {
 public:
  static constexpr int kRootDays = 3650;

  struct Issued {
    std::string chainPem;  // the server certificate alone: the root is the trust anchor
    std::string keyPem;    // PKCS#8; the caller wipes it after use
  };

  // Reads ca.pem and ca.key of the group kLocalCaKey in `storage`, or, when
  // ca.pem is missing, makes a new root (CN "tlsedge local CA <random>",
  // kRootDays) and writes both as one group (ca.key secret). Refuses a
  // ca.pem without its ca.key, a key that does not match, and an expired
  // root (naming the file; removing the directory makes a new CA).
  // `created` says which happened.
  static Result<LocalCa> open(certstore::Storage& storage, bool* created = nullptr);

  // A server certificate for `names` with a fresh key of `keyType`, valid
  // from now-1h for `lifetimeSeconds` (names in the SAN only).
  Result<Issued> issue(const std::vector<std::string>& names, certstore::NewKeyType keyType,
                       int64_t lifetimeSeconds) const;

  const std::string& certificatePath() const { return certPath_; }
  // Where open() finds (or puts) ca.pem in `storage`, for the log.
  static std::string certificatePathIn(const certstore::Storage& storage);
  X509* certificate() const { return cert_.get(); }

 private:
  std::string certPath_;
  bssl::UniquePtr<X509> cert_;
  bssl::UniquePtr<EVP_PKEY> key_;
};

}  // namespace tlsedge::acme
