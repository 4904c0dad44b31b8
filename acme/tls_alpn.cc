#include "acme/tls_alpn.h"

#include <openssl/bytestring.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "base/ascii.h"
#include "certstore/self_signed.h"

namespace tlsedge::acme {
namespace {

constexpr int kValidityDays = 7;

// DER OCTET STRING around `content`.
std::string octetString(const std::string& content) {
  bssl::ScopedCBB cbb;
  CBB inner;
  uint8_t* out = nullptr;
  size_t len = 0;
  if (!CBB_init(cbb.get(), content.size() + 4) ||
      !CBB_add_asn1(cbb.get(), &inner, CBS_ASN1_OCTETSTRING) ||
      !CBB_add_bytes(&inner, reinterpret_cast<const uint8_t*>(content.data()), content.size()) ||
      !CBB_finish(cbb.get(), &out, &len)) {
    return {};
  }
  bssl::UniquePtr<uint8_t> owner(out);
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string keyAuthorizationDigest(const std::string& keyAuthorization) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(keyAuthorization.data()), keyAuthorization.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

Result<certstore::CredentialsPtr> makeTlsAlpnCertificate(const std::string& host,
                                                         const std::string& keyAuthorization) {
  const std::string value = octetString(keyAuthorizationDigest(keyAuthorization));
  if (value.empty()) return makeError("tls-alpn-01 certificate for " + host + ": out of memory");
  auto made = certstore::makeSelfSigned({host}, kValidityDays,
                                        {{kAcmeIdentifierOid, /*critical=*/true, value}});
  if (!made) return makeError("tls-alpn-01 certificate for " + host + ": " + made.error().message);
  uint8_t* der = nullptr;
  const int len = i2d_X509(made->certificate.get(), &der);
  if (len <= 0) return makeError("tls-alpn-01 certificate for " + host + ": cannot encode it");
  bssl::UniquePtr<uint8_t> owner(der);
  auto creds = std::make_shared<certstore::Credentials>();
  creds->name = "tls-alpn-01 " + host;
  creds->chain.emplace_back(CRYPTO_BUFFER_new(der, static_cast<size_t>(len), nullptr));
  if (!creds->chain.back()) return makeError("tls-alpn-01 certificate: out of memory");
  creds->key = std::move(made->key);
  creds->dnsNames.push_back(ascii::lowered(host));
  return certstore::CredentialsPtr(std::move(creds));
}

}  // namespace tlsedge::acme
