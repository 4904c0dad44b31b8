// Certificate chain and private key loading (tests/fuzz/README.md):
// certstore::parseLoadedCredentials, what every config file, upload, store
// entry and ACME certificate goes through (PEM scanning, X.509, key
// formats and sizes, chain order and links, dates, the key matching the
// leaf). Input: 4 bytes "now" (little-endian seconds), one flags byte (bit
// 0: Verify::kStored), the chain PEM, a NUL byte, the key PEM.
// Invariants: what is accepted has a leaf and a key of the type it claims,
// dates around `now`, and (Verify::kFull) installs on a handshake. A store
// load (kStored) skips that trial install by design: its entries passed it
// when they were written.
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <string>

#include "certstore/credentials.h"
#include "fuzz_check.h"

namespace {

SSL_CTX* context() {
  static SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 5) return 0;
  const time_t now = static_cast<time_t>(uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 |
                                         uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24);
  const auto verify =
      (bytes[4] & 1) != 0 ? tlsedge::certstore::Verify::kStored : tlsedge::certstore::Verify::kFull;
  const std::string rest(reinterpret_cast<const char*>(bytes) + 5, size - 5);
  const size_t nul = rest.find('\0');
  const std::string chain = rest.substr(0, nul);
  const std::string key = nul == std::string::npos ? std::string() : rest.substr(nul + 1);
  auto parsed = tlsedge::certstore::parseLoadedCredentials("fuzz", chain, key,
                                                           tlsedge::certstore::sharedBufferPool(),
                                                           now, "chain.pem", "key.pem", verify);
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.error().message.empty());
    return 0;
  }
  const tlsedge::certstore::Credentials& c = **parsed;
  FUZZ_CHECK(!c.chain.empty() && c.key != nullptr);
  FUZZ_CHECK(c.notBefore <= now && now <= c.notAfter);
  const int id = EVP_PKEY_id(c.key.get());
  FUZZ_CHECK(tlsedge::certstore::isEcdsa(c.keyType) ? id == EVP_PKEY_EC : id == EVP_PKEY_RSA);
  FUZZ_CHECK(!c.serialHex.empty() && !c.sha256Fingerprint.empty());
  for (const std::string& name : c.dnsNames) (void)c.covers(name);
  bssl::UniquePtr<SSL> ssl(SSL_new(context()));
  const bool installed = tlsedge::certstore::installCredentials(ssl.get(), c);
  FUZZ_CHECK(installed || verify == tlsedge::certstore::Verify::kStored);
  return 0;
}
