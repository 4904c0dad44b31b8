#include "acme/csr.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace tlsedge::acme {
namespace {

struct Parsed {
  bssl::UniquePtr<X509_REQ> req;
  std::vector<std::string> dnsNames;
};

Parsed parse(const std::string& der) {
  Parsed out;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(der.data());
  out.req.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!out.req) return out;
  bssl::UniquePtr<STACK_OF(X509_EXTENSION)> exts(X509_REQ_get_extensions(out.req.get()));
  for (X509_EXTENSION* ext : exts.get()) {
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
    for (const GENERAL_NAME* name : names.get()) {
      if (name->type != GEN_DNS) continue;
      const ASN1_STRING* s = name->d.dNSName;
      out.dnsNames.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                static_cast<size_t>(ASN1_STRING_length(s)));
    }
  }
  return out;
}

TEST(Csr, NamesOnlyInSubjectAltNameAndSignedByAFreshKey) {
  const std::string longName = std::string(70, 'a') + ".example";  // over the 64-character CN limit
  auto csr = makeCsr({"shop.example", longName}, certstore::NewKeyType::kEcdsaP256);
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  Parsed p = parse(csr->der);
  ASSERT_TRUE(p.req);
  EXPECT_EQ(p.dnsNames, (std::vector<std::string>{"shop.example", longName}));
  EXPECT_EQ(X509_NAME_entry_count(X509_REQ_get_subject_name(p.req.get())), 0);
  bssl::UniquePtr<EVP_PKEY> pub(X509_REQ_get_pubkey(p.req.get()));
  EXPECT_EQ(EVP_PKEY_id(pub.get()), EVP_PKEY_EC);
  EXPECT_EQ(X509_REQ_verify(p.req.get(), pub.get()), 1);
  EXPECT_NE(csr->keyPem.find("BEGIN PRIVATE KEY"), std::string::npos);

  auto second = makeCsr({"shop.example"}, certstore::NewKeyType::kEcdsaP256);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->keyPem, csr->keyPem);  // a key per certificate
}

TEST(Csr, Rsa2048OnRequest) {
  auto csr = makeCsr({"a.example"}, certstore::NewKeyType::kRsa2048);
  ASSERT_TRUE(csr.ok());
  Parsed p = parse(csr->der);
  bssl::UniquePtr<EVP_PKEY> pub(X509_REQ_get_pubkey(p.req.get()));
  ASSERT_EQ(EVP_PKEY_id(pub.get()), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_bits(pub.get()), 2048);
  EXPECT_EQ(X509_REQ_verify(p.req.get(), pub.get()), 1);
}

// acme.key_type: the request's key has that type and size (RSA 3072 and
// 4096 only mapped: generating them takes seconds under the sanitizers).
TEST(Csr, ConfiguredKeyTypes) {
  struct Case {
    conf::AcmeKeyType type;
    int id;
    int bits;
  };
  for (const Case& c : {Case{conf::AcmeKeyType::kEcdsaP256, EVP_PKEY_EC, 256},
                        Case{conf::AcmeKeyType::kEcdsaP384, EVP_PKEY_EC, 384},
                        Case{conf::AcmeKeyType::kRsa2048, EVP_PKEY_RSA, 2048}}) {
    auto csr = makeCsr({"a.example"}, csrKeyType(c.type));
    ASSERT_TRUE(csr.ok()) << c.bits;
    Parsed p = parse(csr->der);
    bssl::UniquePtr<EVP_PKEY> pub(X509_REQ_get_pubkey(p.req.get()));
    EXPECT_EQ(EVP_PKEY_id(pub.get()), c.id) << c.bits;
    EXPECT_EQ(EVP_PKEY_bits(pub.get()), c.bits);
    EXPECT_EQ(X509_REQ_verify(p.req.get(), pub.get()), 1) << c.bits;
  }
  EXPECT_EQ(csrKeyType(conf::AcmeKeyType::kRsa3072), certstore::NewKeyType::kRsa3072);
  EXPECT_EQ(csrKeyType(conf::AcmeKeyType::kRsa4096), certstore::NewKeyType::kRsa4096);
}

TEST(Csr, RefusesNoNames) { EXPECT_FALSE(makeCsr({}, certstore::NewKeyType::kEcdsaP256).ok()); }

}  // namespace
}  // namespace tlsedge::acme
