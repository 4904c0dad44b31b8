#include "acme/eab.h"

#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>

#include <nlohmann/json.hpp>

#include "acme/jose.h"
#include "certstore/json.h"

namespace tlsedge::acme {

Result<std::string> externalAccountBinding(const conf::AcmeEab& eab, const std::string& accountJwk,
                                           const std::string& newAccountUrl) {
  auto key = base64urlDecode(eab.hmacKey);
  if (!key || key->empty()) {
    return makeError("acme.eab.hmac_key: not a base64url MAC key");
  }
  const nlohmann::json header = {{"alg", "HS256"}, {"kid", eab.kid}, {"url", newAccountUrl}};
  const std::string signingInput =
      base64url(certstore::jsonText(header)) + "." + base64url(accountJwk);
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned macLen = 0;
  const bool signed_ = HMAC(EVP_sha256(), key->data(), key->size(),
                            reinterpret_cast<const uint8_t*>(signingInput.data()),
                            signingInput.size(), mac, &macLen) != nullptr;
  OPENSSL_cleanse(key->data(), key->size());
  if (!signed_) return makeError("acme.eab: HMAC-SHA-256 failed");
  const size_t dot = signingInput.find('.');
  const nlohmann::json jws = {
      {"protected", signingInput.substr(0, dot)},
      {"payload", signingInput.substr(dot + 1)},
      {"signature", base64url(std::string_view(reinterpret_cast<const char*>(mac), macLen))}};
  return certstore::jsonText(jws);
}

}  // namespace tlsedge::acme
