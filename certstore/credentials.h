// Credentials: one certificate chain and its private key, parsed and
// validated once on the control loop, then shared read-only by every worker
// and installed per handshake with SSL_set_chain_and_key (no SSL_CTX per
// certificate).
//
// Thread: built on the control loop; immutable afterwards, safe to read from
// any thread. Lifetime: shared_ptr; a handshake holds what it installed.
#pragma once

#include <openssl/base.h>
#include <openssl/evp.h>  // complete EVP_PKEY for bssl::UniquePtr
#include <openssl/pool.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace tlsedge::certstore {

enum class KeyType { kEcdsaP256, kEcdsaP384, kRsa };

inline bool isEcdsa(KeyType type) { return type != KeyType::kRsa; }

// Made by std::make_shared: a handshake keeps the one it served (shared_from_this).
struct Credentials : std::enable_shared_from_this<Credentials> {
  std::string name;                                   // store/config name
  std::vector<bssl::UniquePtr<CRYPTO_BUFFER>> chain;  // DER, leaf first, no root
  bssl::UniquePtr<EVP_PKEY> key;
  KeyType keyType = KeyType::kEcdsaP256;
  std::vector<std::string> dnsNames;     // subjectAltName dNSName entries, lower-case
  std::vector<std::string> ipAddresses;  // subjectAltName iPAddress, textual
  time_t notBefore = 0;
  time_t notAfter = 0;
  std::string serialHex;          // upper-case hex, no separators
  std::string sha256Fingerprint;  // of the leaf DER, upper-case hex with ':'
  std::string subject;            // one-line RFC 2253 form
  std::string issuer;
  std::vector<std::string> notes;  // non-fatal remarks, e.g. "dropped the root certificate ..."

  // True if this certificate's names cover `host` (exact or one-label wildcard).
  bool covers(const std::string& host) const;
};

using CredentialsPtr = std::shared_ptr<const Credentials>;

// How much parseCredentials checks. kFull: everything, for anything new
// (uploads, config files, ACME). kStored: entries CertificateStore::add
// validated in full and wrote itself; chain links are checked by issuer and
// subject names, but their signatures are not verified again (one ECDSA or
// RSA verification per link: most of a load's CPU time). Everything else
// is still checked: PEM and X.509 syntax, key type and size, the key's own
// consistency (BoringSSL recomputes its public point), the key matching the
// leaf, chain order, dates. (kFull also installs the credentials once on a
// throw-away SSL: the TLS stack parses the leaf more strictly.)
enum class Verify { kFull, kStored };

// Parses and validates a PEM chain and a PEM private key. Accepts the chain in
// any order (puts it in order leaf -> intermediates, drops a self-signed root
// with a note), keys RSA 2048..4096 and ECDSA P-256/P-384 in PKCS#1, SEC1 or
// PKCS#8. `now` is the validity reference time. Every refusal says what is
// wrong and where (which file, which certificate of the chain). `pool` (may be
// null) deduplicates identical certificates (shared intermediates) across
// credentials.
Result<CredentialsPtr> parseCredentials(const std::string& name, const std::string& chainPem,
                                        const std::string& keyPem, CRYPTO_BUFFER_POOL* pool,
                                        time_t now, const std::string& chainSource = "chain",
                                        const std::string& keySource = "key",
                                        Verify verify = Verify::kFull);

// parseCredentials of what was read from `chainSource` and `keySource`: both
// read errors, or a text far too large for what it should be, are reported
// together before any parsing.
Result<CredentialsPtr> parseLoadedCredentials(const std::string& name,
                                              const Result<std::string>& chain,
                                              const Result<std::string>& key,
                                              CRYPTO_BUFFER_POOL* pool, time_t now,
                                              const std::string& chainSource,
                                              const std::string& keySource, Verify verify);

// Reads both files then parseLoadedCredentials (sources in messages are the paths).
Result<CredentialsPtr> loadCredentials(const std::string& name, const std::string& certPath,
                                       const std::string& keyPath, CRYPTO_BUFFER_POOL* pool,
                                       time_t now, Verify verify = Verify::kFull);

// The process-wide pool for certificate DER. Never freed: a pool must outlive
// every buffer in it, and SSL objects on workers keep installed buffers past
// any snapshot or Selector. Thread-safe (BoringSSL locks it internally).
CRYPTO_BUFFER_POOL* sharedBufferPool();

// Installs the credentials on a handshake in progress (from the
// select-certificate callback). Returns false on failure (error queue holds why).
bool installCredentials(SSL* ssl, const Credentials& credentials);

}  // namespace tlsedge::certstore
