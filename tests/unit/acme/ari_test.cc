// ARI (acme/ari.h): the certificate identifier of RFC 9773's example (a
// certificate built here with its key identifier and serial), certificates
// without an AKI, and renewalInfo bodies.
#include "acme/ari.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace tlsedge::acme {
namespace {

// A self-signed certificate with `serialHex` and, if not empty, an authority
// key identifier of `keyId`.
std::string certificate(const char* serialHex, const std::string& keyId) {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  EC_KEY_generate_key(ec.get());
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  EVP_PKEY_assign_EC_KEY(key.get(), ec.release());
  bssl::UniquePtr<X509> x(X509_new());
  X509_set_version(x.get(), X509_VERSION_3);
  BIGNUM* bn = nullptr;
  BN_hex2bn(&bn, serialHex);
  bssl::UniquePtr<BIGNUM> serial(bn);
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get()));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key.get());
  if (!keyId.empty()) {
    bssl::UniquePtr<AUTHORITY_KEYID> akid(AUTHORITY_KEYID_new());
    akid->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(akid->keyid, reinterpret_cast<const uint8_t*>(keyId.data()),
                          static_cast<int>(keyId.size()));
    X509_add1_ext_i2d(x.get(), NID_authority_key_identifier, akid.get(), 0, 0);
  }
  X509_sign(x.get(), key.get(), EVP_sha256());
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), x.get());
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

TEST(AriCertId, Rfc9773Example) {
  // keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
  // serial 0x87654321 (DER content 00 87 65 43 21: a leading zero, as the
  // top bit is set).
  const std::string keyId(
      "\x69\x88\x5B\x6B\x87\x46\x40\x41\xE1\xB3\x7B\x84\x7B\xA0\xAE\x2C\xDE"
      "\x01\xC8\xD4",
      20);
  auto id = ariCertId(certificate("87654321", keyId));
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(*id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

TEST(AriCertId, SmallSerialHasNoPadding) {
  auto id = ariCertId(certificate("0102", "\x01\x02\x03"));
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(*id, "AQID.AQI");
}

TEST(AriCertId, NeedsAnAuthorityKeyIdentifier) {
  auto id = ariCertId(certificate("01", ""));
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.error().message.find("no authority key identifier"), std::string::npos);
  EXPECT_FALSE(ariCertId("not a certificate").ok());
}

TEST(RenewalInfoBody, WindowAndExplanation) {
  auto info = parseRenewalInfo(
      R"({"suggestedWindow":{"start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:00Z"},)"
      R"("explanationURL":"https://ca.example/why"})");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->start, 1767225600);
  EXPECT_EQ(info->end, 1767225600 + 86400);
  EXPECT_EQ(info->explanationUrl, "https://ca.example/why");
}

TEST(RenewalInfoBody, Refused) {
  EXPECT_FALSE(parseRenewalInfo("{}").ok());
  EXPECT_FALSE(parseRenewalInfo("nope").ok());
  EXPECT_FALSE(parseRenewalInfo(R"({"suggestedWindow":{"start":"2026-01-01T00:00:00Z"}})").ok());
  auto backwards = parseRenewalInfo(
      R"({"suggestedWindow":{"start":"2026-01-02T00:00:00Z","end":"2026-01-01T00:00:00Z"}})");
  ASSERT_FALSE(backwards.ok());
  EXPECT_NE(backwards.error().message.find("ends before it starts"), std::string::npos);
}

}  // namespace
}  // namespace tlsedge::acme
