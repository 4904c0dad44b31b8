// Pending certificate requests (`cert request`, completed by `cert add
// --cert` without --key): the key kept 0600, the CSR, completion, refusals
// that keep the request, rm, name clashes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <filesystem>

#include "certstore/files.h"
#include "certstore/manage.h"
#include "certstore/store.h"
#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kNow;
using testing::Pki;
using testing::TempDir;

unsigned modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

bssl::UniquePtr<X509_REQ> parseCsr(const std::string& pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return bssl::UniquePtr<X509_REQ>(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
}

std::vector<std::string> csrNames(X509_REQ* req) {
  std::vector<std::string> out;
  bssl::UniquePtr<STACK_OF(X509_EXTENSION)> extensions(X509_REQ_get_extensions(req));
  if (!extensions) return out;
  for (size_t i = 0; i < sk_X509_EXTENSION_num(extensions.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(extensions.get(), i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
    for (size_t j = 0; names && j < sk_GENERAL_NAME_num(names.get()); ++j) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), j);
      if (name->type != GEN_DNS) continue;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                       static_cast<size_t>(ASN1_STRING_length(name->d.dNSName)));
    }
  }
  return out;
}

// What the CA sends back: a leaf for the CSR's key under `pki`'s
// intermediate, then the intermediate.
std::string signCsr(const Pki& pki, const std::string& csrPem,
                    const std::vector<std::string>& hosts) {
  bssl::UniquePtr<X509_REQ> req = parseCsr(csrPem);
  EXPECT_NE(req, nullptr);
  if (!req) return "";
  bssl::UniquePtr<EVP_PKEY> pub(X509_REQ_get_pubkey(req.get()));
  auto leaf = testing::makeCert(testing::CertSpec{hosts[0], hosts, {}}, pub.get(), pki.inter.get(),
                                pki.interKey.get());
  return testing::certPem(leaf.get()) + testing::certPem(pki.inter.get());
}

struct RequestTest : ::testing::Test {
  TempDir dir;
  CertificateStore store = CertificateStore::forStateDir(dir.path());
  conf::Config config;
  Pki pki = Pki::make();
  std::string requestsDir() const { return dir.path() + "/requests"; }
};

TEST_F(RequestTest, KeepsTheKey0600AndTheCsrNamesTheHosts) {
  auto request = requestCertificate(store, config, "shop", {"shop.example", "www.shop.example"},
                                    "ecdsa-p256", kNow);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->keyType, "ecdsa-p256");
  EXPECT_THAT(request->csrPem, HasSubstr("-----BEGIN CERTIFICATE REQUEST-----"));
  EXPECT_THAT(toJson(*request), ::testing::Not(HasSubstr("PRIVATE KEY")));
  bssl::UniquePtr<X509_REQ> req = parseCsr(request->csrPem);
  ASSERT_NE(req, nullptr);
  bssl::UniquePtr<EVP_PKEY> pub(X509_REQ_get_pubkey(req.get()));
  EXPECT_EQ(X509_REQ_verify(req.get(), pub.get()), 1);
  EXPECT_THAT(csrNames(req.get()), ElementsAre("shop.example", "www.shop.example"));

  const std::string key = requestsDir() + "/shop/privkey.pem";
  EXPECT_EQ(modeOf(key), 0600u);
  EXPECT_EQ(modeOf(requestsDir() + "/shop"), 0700u);
  EXPECT_EQ(modeOf(requestsDir() + "/shop/request.pem"), 0644u);
  // Nothing under certs/: the daemon's store watch has nothing to serve yet.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/certs/shop"));

  auto pending = store.pending("shop");
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_THAT(pending->hosts, ElementsAre("shop.example", "www.shop.example"));
  EXPECT_EQ(pending->requested, kNow);
  EXPECT_EQ(pending->csrPem, request->csrPem);
}

TEST_F(RequestTest, ListsThePendingRequest) {
  ASSERT_TRUE(requestCertificate(store, config, "shop", {"shop.example"}, "rsa2048", kNow).ok());
  auto listed = listCertificates(store, config, kNow);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE((*listed)[0].pending);
  EXPECT_EQ((*listed)[0].info.name, "shop");
  EXPECT_THAT((*listed)[0].info.dnsNames, ElementsAre("shop.example"));
  EXPECT_EQ((*listed)[0].info.keyType, "rsa2048");
  EXPECT_EQ((*listed)[0].requested, kNow);
  EXPECT_THAT(toJson(*listed), HasSubstr("\"pending\":true"));
}

TEST_F(RequestTest, CompletesWithTheSignedCertificate) {
  auto request = requestCertificate(store, config, "shop", {"shop.example"}, "ecdsa-p256", kNow);
  ASSERT_TRUE(request.ok()) << request.error().message;
  const std::string chain = signCsr(pki, request->csrPem, {"shop.example"});
  auto added = completeCertificatePem(store, config, "shop", chain, kNow, "signed.pem");
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_THAT(added->dnsNames, ElementsAre("shop.example"));
  EXPECT_FALSE(added->replaced);
  // An ordinary stored certificate now, loadable as the daemon loads it.
  auto loaded = store.load("shop", sharedBufferPool(), kNow);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(modeOf(dir.path() + "/certs/shop/privkey.pem"), 0600u);
  EXPECT_FALSE(std::filesystem::exists(requestsDir() + "/shop"));
  auto names = store.pendingNames();
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
  auto listed = listCertificates(store, config, kNow);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_FALSE((*listed)[0].pending);
}

TEST_F(RequestTest, RefusesACertificateForAnotherKeyAndKeepsTheRequest) {
  auto request = requestCertificate(store, config, "shop", {"shop.example"}, "ecdsa-p256", kNow);
  ASSERT_TRUE(request.ok()) << request.error().message;
  const std::string keyBefore = *readFile(requestsDir() + "/shop/privkey.pem");
  // Signed for another key (the test PKI's leaf).
  const std::string other = testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get());
  auto added = completeCertificatePem(store, config, "shop", other, kNow, "signed.pem");
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().kind, ErrorKind::kInvalid);
  EXPECT_THAT(added.error().message, HasSubstr("signed.pem"));
  EXPECT_THAT(added.error().message, HasSubstr("pending request `shop`"));
  EXPECT_THAT(added.error().message, HasSubstr("does not match"));
  EXPECT_EQ(*readFile(requestsDir() + "/shop/privkey.pem"), keyBefore);
  EXPECT_TRUE(store.pending("shop").ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/certs/shop"));
}

TEST_F(RequestTest, CompletingWithoutARequestIsNotFound) {
  const std::string chain = testing::certPem(pki.leaf.get());
  auto added = completeCertificatePem(store, config, "shop", chain, kNow, "signed.pem");
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().kind, ErrorKind::kNotFound);
  EXPECT_THAT(added.error().message, HasSubstr("no certificate request named `shop`"));
}

TEST_F(RequestTest, RmRemovesThePendingRequest) {
  ASSERT_TRUE(requestCertificate(store, config, "shop", {"shop.example"}, "ecdsa-p256", kNow).ok());
  Status removed = removeCertificate(store, config, "shop", kNow);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_FALSE(std::filesystem::exists(requestsDir() + "/shop"));
  Status again = removeCertificate(store, config, "shop", kNow);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, ErrorKind::kNotFound);
}

TEST_F(RequestTest, RmOfARequestLeftBesideItsCertificateRemovesOnlyTheRequest) {
  // What a crash between storing the certificate and removing the request leaves.
  auto request = requestCertificate(store, config, "shop", {"shop.example"}, "ecdsa-p256", kNow);
  ASSERT_TRUE(request.ok()) << request.error().message;
  const std::string kept = dir.file("kept");
  std::filesystem::copy(requestsDir() + "/shop", kept);
  const std::string chain = signCsr(pki, request->csrPem, {"shop.example"});
  ASSERT_TRUE(completeCertificatePem(store, config, "shop", chain, kNow, "signed.pem").ok());
  std::filesystem::rename(kept, requestsDir() + "/shop");
  ASSERT_TRUE(removeCertificate(store, config, "shop", kNow).ok());
  EXPECT_FALSE(std::filesystem::exists(requestsDir() + "/shop"));
  EXPECT_TRUE(store.load("shop", sharedBufferPool(), kNow).ok());
}

TEST_F(RequestTest, RefusesANameAlreadyUsed) {
  // A stored certificate's name.
  ASSERT_TRUE(store
                  .add("stored",
                       testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get()),
                       testing::pkcs8Pem(pki.leafKey.get()), false, CertSource::kUpload, kNow)
                  .ok());
  auto clash = requestCertificate(store, config, "stored", {"a.example"}, "ecdsa-p256", kNow);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().kind, ErrorKind::kConflict);
  EXPECT_THAT(clash.error().message, HasSubstr("a certificate named `stored` already exists"));
  EXPECT_FALSE(std::filesystem::exists(requestsDir() + "/stored"));

  // A pending request's name: for another request, and for an add with a key.
  auto first = requestCertificate(store, config, "shop", {"shop.example"}, "ecdsa-p256", kNow);
  ASSERT_TRUE(first.ok());
  auto second = requestCertificate(store, config, "shop", {"other.example"}, "ecdsa-p256", kNow);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, ErrorKind::kConflict);
  EXPECT_THAT(second.error().message, HasSubstr("a certificate request named `shop` is pending"));
  auto added =
      store.add("shop", testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get()),
                testing::pkcs8Pem(pki.leafKey.get()), false, CertSource::kUpload, kNow);
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().kind, ErrorKind::kConflict);
  auto pending = store.pending("shop");
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->csrPem, first->csrPem);  // the first request is intact
}

TEST_F(RequestTest, PutsTheSubjectGivenInTheCsr) {
  auto request = requestCertificate(store, config, "ev", {"shop.example"}, "ecdsa-p384", kNow,
                                    "/C=DE/O=Example GmbH/CN=shop.example");
  ASSERT_TRUE(request.ok()) << request.error().message;
  bssl::UniquePtr<X509_REQ> req = parseCsr(request->csrPem);
  ASSERT_NE(req, nullptr);
  char text[256];
  X509_NAME_oneline(X509_REQ_get_subject_name(req.get()), text, sizeof(text));
  EXPECT_STREQ(text, "/C=DE/O=Example GmbH/CN=shop.example");
  EXPECT_THAT(csrNames(req.get()), ElementsAre("shop.example"));
  auto pending = store.pending("ev");
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_EQ(pending->subject, "/C=DE/O=Example GmbH/CN=shop.example");

  auto bad = requestCertificate(store, config, "bad", {"shop.example"}, "ecdsa-p256", kNow,
                                "/O=Example/nonsense");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalid);
  EXPECT_THAT(bad.error().message, HasSubstr("`nonsense` is not KEY=VALUE"));
  EXPECT_FALSE(std::filesystem::exists(requestsDir() + "/bad"));
}

TEST_F(RequestTest, RefusesAnUnknownKeyTypeAndNoHosts) {
  auto type = requestCertificate(store, config, "shop", {"shop.example"}, "dsa", kNow);
  ASSERT_FALSE(type.ok());
  EXPECT_THAT(type.error().message, HasSubstr("must be ecdsa-p256"));
  auto none = requestCertificate(store, config, "shop", {}, "ecdsa-p256", kNow);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.error().message, HasSubstr("no hosts"));
  EXPECT_FALSE(std::filesystem::exists(requestsDir() + "/shop"));
}

}  // namespace
}  // namespace tlsedge::certstore
