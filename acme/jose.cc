#include "acme/jose.h"

#include <openssl/base64.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <nlohmann/json.hpp>

#include "certstore/json.h"
#include "certstore/key_material.h"

namespace tlsedge::acme {
namespace {

constexpr size_t kCoordinate = 32;  // P-256 field and scalar size

std::string bigNumBytes(const BIGNUM* bn) {
  std::string out(kCoordinate, '\0');
  BN_bn2bin_padded(reinterpret_cast<uint8_t*>(out.data()), kCoordinate, bn);
  return out;
}

}  // namespace

std::string sha256(std::string_view data) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(),
         reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

std::string base64url(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (data.size() - i == 1) {
    uint32_t v = byte(i) << 16;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
  } else if (data.size() - i == 2) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
  }
  return out;
}

Result<std::string> base64urlDecode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '-'             ? 62
            : c == '_'             ? 63
                                   : -1;
    if (v < 0) return makeError("base64url: invalid character");
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xFF);
    }
  }
  if (bits >= 6) return makeError("base64url: truncated input");
  return out;
}

AccountKey::AccountKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key_.get());
  bssl::UniquePtr<BIGNUM> x(BN_new()), y(BN_new());
  EC_POINT_get_affine_coordinates_GFp(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec), x.get(),
                                      y.get(), nullptr);
  jwk_ = R"({"crv":"P-256","kty":"EC","x":")" + base64url(bigNumBytes(x.get())) + R"(","y":")" +
         base64url(bigNumBytes(y.get())) + R"("})";
  thumbprint_ = base64url(sha256(jwk_));
}

Result<AccountKey> AccountKey::generate() {
  bssl::UniquePtr<EVP_PKEY> key = certstore::generatePrivateKey(certstore::NewKeyType::kEcdsaP256);
  if (!key) return makeError("cannot generate an ECDSA P-256 account key");
  return AccountKey(std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free));
}

Result<AccountKey> AccountKey::fromPem(const std::string& pem, const std::string& source) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return makeError(source + ": no readable private key");
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key.get());
  if (ec == nullptr || EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) != NID_X9_62_prime256v1) {
    return makeError(source + ": the account key must be ECDSA P-256");
  }
  return AccountKey(std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free));
}

Result<std::string> AccountKey::toPem() const { return certstore::privateKeyPem(key_.get()); }

Result<std::string> AccountKey::sign(std::string_view input) const {
  std::string digest = sha256(input);
  bssl::UniquePtr<ECDSA_SIG> sig(ECDSA_do_sign(reinterpret_cast<const uint8_t*>(digest.data()),
                                               digest.size(), EVP_PKEY_get0_EC_KEY(key_.get())));
  if (!sig) return makeError("ES256 signing failed");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  return bigNumBytes(r) + bigNumBytes(s);
}

Result<std::string> signJws(const AccountKey& key, const std::string& kid, const std::string& nonce,
                            const std::string& url, const std::string& payload) {
  nlohmann::json header = {{"alg", "ES256"}, {"nonce", nonce}, {"url", url}};
  if (kid.empty()) {
    header["jwk"] = nlohmann::json::parse(key.jwk());
  } else {
    header["kid"] = kid;
  }
  std::string protectedPart = base64url(certstore::jsonText(header));
  std::string payloadPart = base64url(payload);
  auto signature = key.sign(protectedPart + "." + payloadPart);
  if (!signature) return signature.error();
  nlohmann::json jws = {
      {"protected", protectedPart}, {"payload", payloadPart}, {"signature", base64url(*signature)}};
  return certstore::jsonText(jws);
}

}  // namespace tlsedge::acme
