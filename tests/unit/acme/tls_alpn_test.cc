// TLS-ALPN-01 challenge certificates (RFC 8737) and DNS-01 record values,
// parsed back with BoringSSL.
#include "acme/tls_alpn.h"

#include <gtest/gtest.h>
#include <openssl/mem.h>

#include <openssl/bytestring.h>
#include <openssl/obj.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <cstring>

#include "acme/challenge_store.h"
#include "acme/dns_hook.h"

namespace tlsedge::acme {
namespace {

bssl::UniquePtr<X509> leaf(const certstore::Credentials& c) {
  const CRYPTO_BUFFER* der = c.chain.at(0).get();
  const uint8_t* p = CRYPTO_BUFFER_data(der);
  return bssl::UniquePtr<X509>(d2i_X509(nullptr, &p, static_cast<long>(CRYPTO_BUFFER_len(der))));
}

TEST(TlsAlpnCertificate, CarriesTheKeyAuthorizationDigest) {
  const std::string keyAuth =
      "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
  auto made = makeTlsAlpnCertificate("Shop.Test", keyAuth);
  ASSERT_TRUE(made.ok()) << made.error().message;
  const certstore::Credentials& c = **made;
  ASSERT_EQ(c.chain.size(), 1U);
  ASSERT_TRUE(c.key);
  auto cert = leaf(c);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_private_key(cert.get(), c.key.get()), 1);
  EXPECT_EQ(X509_verify(cert.get(), c.key.get()), 1);  // self-signed

  // The acmeIdentifier extension: critical, an OCTET STRING of SHA-256(keyAuth).
  bssl::UniquePtr<ASN1_OBJECT> oid(OBJ_txt2obj(kAcmeIdentifierOid, 1));
  const int index = X509_get_ext_by_OBJ(cert.get(), oid.get(), -1);
  ASSERT_GE(index, 0);
  X509_EXTENSION* ext = X509_get_ext(cert.get(), index);
  EXPECT_EQ(X509_EXTENSION_get_critical(ext), 1);
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  CBS value, inner;
  CBS_init(&value, ASN1_STRING_get0_data(data), static_cast<size_t>(ASN1_STRING_length(data)));
  ASSERT_TRUE(CBS_get_asn1(&value, &inner, CBS_ASN1_OCTETSTRING));
  EXPECT_EQ(CBS_len(&value), 0U);
  uint8_t expected[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(keyAuth.data()), keyAuth.size(), expected);
  ASSERT_EQ(CBS_len(&inner), sizeof expected);
  EXPECT_EQ(std::memcmp(CBS_data(&inner), expected, sizeof expected), 0);

  // subjectAltName: exactly the one host.
  bssl::UniquePtr<GENERAL_NAMES> san(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  ASSERT_TRUE(san);
  ASSERT_EQ(sk_GENERAL_NAME_num(san.get()), 1U);
  const GENERAL_NAME* name = sk_GENERAL_NAME_value(san.get(), 0);
  ASSERT_EQ(name->type, GEN_DNS);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                        static_cast<size_t>(ASN1_STRING_length(name->d.dNSName))),
            "Shop.Test");
}

TEST(TlsAlpnCertificate, PublishedByHostCaseInsensitively) {
  ChallengeStore store;
  EXPECT_EQ(store.findTlsAlpn("shop.test"), nullptr);
  ASSERT_TRUE(store.putTlsAlpn("Shop.Test", "token.thumb").ok());
  auto made = store.findTlsAlpn("SHOP.test");
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(store.findTlsAlpn("www.shop.test"), nullptr);
  EXPECT_EQ(store.findTlsAlpn(""), nullptr);
  store.put("tok", "tok.thumb");  // HTTP-01 entries live beside them
  EXPECT_EQ(store.findTlsAlpn("shop.test"), made);
  store.removeTlsAlpn("shop.test");
  EXPECT_EQ(store.findTlsAlpn("shop.test"), nullptr);
  EXPECT_EQ(store.find("tok"), "tok.thumb");
}

TEST(Dns01, RecordNameAndValue) {
  EXPECT_EQ(dnsRecordName("*.example.test"), "_acme-challenge.example.test");
  EXPECT_EQ(dnsRecordName("example.test"), "_acme-challenge.example.test");
  // base64url(SHA-256("a.b")) without padding, computed with Python's hashlib.
  const std::string value = dnsRecordValue("a.b");
  EXPECT_EQ(value.size(), 43U);  // 32 bytes, unpadded
  EXPECT_EQ(value.find_first_of("+/="), std::string::npos);
  EXPECT_EQ(value, "LnM23I66h-9HLfVow1SCq_JXXcPl6sDFxiuP-urCyTQ");
}

}  // namespace
}  // namespace tlsedge::acme
