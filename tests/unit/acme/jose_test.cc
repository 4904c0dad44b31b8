#include "acme/jose.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <nlohmann/json.hpp>

namespace tlsedge::acme {
namespace {

// A throw-away key made for this test; the expected JWK and thumbprint were
// computed from it with the openssl CLI and Python's hashlib.
constexpr const char* kFixedKey = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgT5sSnOUJDa8jYzKQ
KM324BV/r++Q+mMU9TOGNjIhtFihRANCAASvbUw8I5lAqShTox1K5yNJuXhSykyI
sNgegok2Q5//817F/Sc5VLj0sWaPCAOcP5v2ASbWJZynsENUObDbZ3G1
-----END PRIVATE KEY-----
)";
constexpr const char* kFixedJwk =
    R"({"crv":"P-256","kty":"EC","x":"r21MPCOZQKkoU6MdSucjSbl4UspMiLDYHoKJNkOf__M",)"
    R"("y":"XsX9JzlUuPSxZo8IA5w_m_YBJtYlnKewQ1Q5sNtncbU"})";
constexpr const char* kFixedThumbprint = "M-OhPG8ENhU9XxT9ZwaPYXc676BolBrEo1x4qXVmtrg";

TEST(Base64Url, Rfc4648Vectors) {
  EXPECT_EQ(base64url(""), "");
  EXPECT_EQ(base64url("f"), "Zg");
  EXPECT_EQ(base64url("fo"), "Zm8");
  EXPECT_EQ(base64url("foo"), "Zm9v");
  EXPECT_EQ(base64url("foob"), "Zm9vYg");
  EXPECT_EQ(base64url("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url(std::string("\xfb\xff\xbf", 3)), "-_-_");  // url alphabet
}

TEST(Base64Url, DecodesWhatItEncodes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n < all.size(); n += 37) {
    auto back = base64urlDecode(base64url(all.substr(0, n)));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, all.substr(0, n));
  }
  EXPECT_EQ(*base64urlDecode("Zm9vYg=="), "foob");
  EXPECT_FALSE(base64urlDecode("Zm9v+g").ok());
  EXPECT_FALSE(base64urlDecode("Z").ok());
}

TEST(AccountKey, JwkAndThumbprintFollowRfc7638) {
  auto key = AccountKey::fromPem(kFixedKey, "fixed");
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->jwk(), kFixedJwk);
  EXPECT_EQ(key->thumbprint(), kFixedThumbprint);
  EXPECT_EQ(keyAuthorization("tok_en-1", *key), std::string("tok_en-1.") + kFixedThumbprint);
}

TEST(AccountKey, RoundTripsThroughPem) {
  auto key = AccountKey::generate();
  ASSERT_TRUE(key.ok());
  auto pem = key->toPem();
  ASSERT_TRUE(pem.ok());
  EXPECT_NE(pem->find("BEGIN PRIVATE KEY"), std::string::npos);
  auto back = AccountKey::fromPem(*pem, "account.key");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->thumbprint(), key->thumbprint());
  auto rsa = AccountKey::fromPem("garbage", "account.key");
  ASSERT_FALSE(rsa.ok());
  EXPECT_EQ(rsa.error().message, "account.key: no readable private key");
}

// Verifies an ES256 JWS signature (raw r||s) with the key's public half.
bool verifyEs256(const AccountKey& key, const std::string& input, const std::string& raw) {
  if (raw.size() != 64) return false;
  bssl::UniquePtr<ECDSA_SIG> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const uint8_t*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const uint8_t*>(raw.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig.get(), r, s);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(input.data()), input.size(), digest);
  return ECDSA_do_verify(digest, sizeof digest, sig.get(), EVP_PKEY_get0_EC_KEY(key.pkey())) == 1;
}

TEST(Jws, NewAccountCarriesTheJwk) {
  auto key = AccountKey::fromPem(kFixedKey, "fixed");
  ASSERT_TRUE(key.ok());
  auto jws = signJws(*key, "", "nonce-1", "https://ca/new-acct", R"({"a":1})");
  ASSERT_TRUE(jws.ok());
  auto j = nlohmann::json::parse(*jws);
  ASSERT_EQ(j.size(), 3u);
  auto header = nlohmann::json::parse(*base64urlDecode(j["protected"].get<std::string>()));
  EXPECT_EQ(header["alg"], "ES256");
  EXPECT_EQ(header["nonce"], "nonce-1");
  EXPECT_EQ(header["url"], "https://ca/new-acct");
  EXPECT_EQ(header["jwk"].dump(), kFixedJwk);
  EXPECT_FALSE(header.contains("kid"));
  EXPECT_EQ(*base64urlDecode(j["payload"].get<std::string>()), R"({"a":1})");
  auto signature = base64urlDecode(j["signature"].get<std::string>());
  ASSERT_TRUE(signature.ok());
  EXPECT_TRUE(verifyEs256(
      *key, j["protected"].get<std::string>() + "." + j["payload"].get<std::string>(), *signature));
  EXPECT_FALSE(verifyEs256(*key, "something else", *signature));
}

TEST(Jws, LaterRequestsCarryTheKidAndPostAsGetHasAnEmptyPayload) {
  auto key = AccountKey::generate();
  ASSERT_TRUE(key.ok());
  auto jws = signJws(*key, "https://ca/acct/1", "n", "https://ca/order/1", "");
  ASSERT_TRUE(jws.ok());
  auto j = nlohmann::json::parse(*jws);
  EXPECT_EQ(j["payload"], "");
  auto header = nlohmann::json::parse(*base64urlDecode(j["protected"].get<std::string>()));
  EXPECT_EQ(header["kid"], "https://ca/acct/1");
  EXPECT_FALSE(header.contains("jwk"));
  EXPECT_TRUE(verifyEs256(*key, j["protected"].get<std::string>() + ".",
                          *base64urlDecode(j["signature"].get<std::string>())));
}

}  // namespace
}  // namespace tlsedge::acme
