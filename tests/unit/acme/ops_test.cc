// Saved per-site state (acme/site_state.h): round trip, mode 0600, no file,
// a broken file; revocation helpers (acme/revocation.h): the DER of a PEM
// chain's first certificate, reason codes by number and name.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "acme/revocation.h"
#include "acme/site_state.h"
#include "certstore/file_storage.h"
#include "certstore/self_signed.h"

namespace tlsedge::acme {
namespace {

class SavedSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tlsedge-acme-state-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    storage_ = certstore::FileStorage(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
  certstore::FileStorage storage_{""};
};

TEST_F(SavedSiteTest, RoundTripIs0600) {
  auto none = loadSavedSite(storage_, "shop");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());
  SavedSite s;
  s.directory = "https://ca.example/dir";
  s.hosts = {"shop.example", "www.shop.example"};
  s.orderUrl = "https://ca.example/order/1";
  s.failures = 3;
  s.lastError = "acme: site `shop`: pre-flight: host www.shop.example does not resolve";
  s.lastErrorAt = 1767225600;
  s.retryDelaySeconds = 240;
  s.backoffUntil = 1767225840;
  s.revokedSerial = "0a1b";
  ASSERT_TRUE(saveSite(storage_, "shop", s).ok());
  struct stat st {};
  ASSERT_EQ(::stat(storage_.describe(savedSiteKey("shop")).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = loadSavedSite(storage_, "shop");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(**loaded, s);
}

TEST_F(SavedSiteTest, BrokenFileIsAnErrorNamingIt) {
  std::filesystem::create_directories(dir_ + "/acme/sites");
  std::ofstream(storage_.describe(savedSiteKey("shop"))) << "{not json";
  auto loaded = loadSavedSite(storage_, "shop");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("shop.json: not a JSON object"), std::string::npos);
  std::ofstream(storage_.describe(savedSiteKey("shop"))) << R"({"failures": "many"})";
  loaded = loadSavedSite(storage_, "shop");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("shop.json: "), std::string::npos);
}

TEST(Revocation, FirstCertificateDer) {
  auto a = certstore::makeSelfSigned({"a.example"}, 1);
  auto b = certstore::makeSelfSigned({"b.example"}, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  std::string chain;
  for (X509* x : {a->certificate.get(), b->certificate.get()}) {
    bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), x);
    const uint8_t* data = nullptr;
    size_t len = 0;
    BIO_mem_contents(bio.get(), &data, &len);
    chain.append(reinterpret_cast<const char*>(data), len);
  }
  auto der = firstCertificateDer(chain);
  ASSERT_TRUE(der.ok()) << der.error().message;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(der->data());
  bssl::UniquePtr<X509> parsed(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
  ASSERT_NE(parsed, nullptr);
  EXPECT_EQ(X509_cmp(parsed.get(), a->certificate.get()), 0);
  EXPECT_FALSE(firstCertificateDer("no PEM here").ok());
}

TEST(Revocation, ReasonsByNumberAndName) {
  EXPECT_EQ(*parseRevocationReason("0"), 0);
  EXPECT_EQ(*parseRevocationReason("keyCompromise"), 1);
  EXPECT_EQ(*parseRevocationReason("KEYCOMPROMISE"), 1);
  EXPECT_EQ(*parseRevocationReason("superseded"), 4);
  EXPECT_EQ(*parseRevocationReason("10"), 10);
  for (const char* bad : {"7", "11", "-1", "", "1x", "bored"}) {
    auto r = parseRevocationReason(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("keyCompromise (1)"), std::string::npos);
  }
}

}  // namespace
}  // namespace tlsedge::acme
