// JOSE for ACME (RFC 8555 section 6.2, RFC 7515/7517/7638): base64url, the
// account key (ECDSA P-256, ES256) as a JWK and its thumbprint, flattened
// JWS requests, key authorizations.
//
// Thread: any (pure functions and immutable keys).
#pragma once

#include <openssl/base.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace tlsedge::acme {

// RFC 4648 section 5, without padding.
// The 32-byte SHA-256 digest of `data`.
std::string sha256(std::string_view data);
std::string base64url(std::string_view data);
// Accepts unpadded (and padded) base64url; errors on other characters.
Result<std::string> base64urlDecode(std::string_view text);

class AccountKey {
 public:
  static Result<AccountKey> generate();
  // PKCS#8 or SEC1 PEM of an ECDSA P-256 key. `source` names it in messages.
  static Result<AccountKey> fromPem(const std::string& pem, const std::string& source);
  // PKCS#8 PEM (to be written 0600; never logged).
  Result<std::string> toPem() const;

  // {"crv":"P-256","kty":"EC","x":"...","y":"..."}: members in RFC 7638
  // order, no whitespace, so this exact text is also the thumbprint input.
  const std::string& jwk() const { return jwk_; }
  // base64url(SHA-256(jwk())).
  const std::string& thumbprint() const { return thumbprint_; }
  // ES256: raw r||s (64 bytes) over SHA-256 of `input`.
  Result<std::string> sign(std::string_view input) const;

  EVP_PKEY* pkey() const { return key_.get(); }

 private:
  explicit AccountKey(std::shared_ptr<EVP_PKEY> key);
  std::shared_ptr<EVP_PKEY> key_;
  std::string jwk_;
  std::string thumbprint_;
};

// A flattened JWS (RFC 7515 section 7.2.2) for an ACME POST: protected
// header {"alg":"ES256", "jwk" or "kid", "nonce", "url"}. `kid` empty: the
// JWK is embedded (newAccount). `payload` empty: POST-as-GET.
Result<std::string> signJws(const AccountKey& key, const std::string& kid, const std::string& nonce,
                            const std::string& url, const std::string& payload);

// token "." thumbprint (RFC 8555 section 8.1).
inline std::string keyAuthorization(const std::string& token, const AccountKey& key) {
  return token + "." + key.thumbprint();
}

}  // namespace tlsedge::acme
