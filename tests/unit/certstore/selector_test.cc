// Selector: config -> host maps, and the SNI lookup order.
#include "certstore/selector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>

#include "certstore/files.h"
#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using testing::Alg;
using ::testing::AllOf;
using testing::CertSpec;
using ::testing::HasSubstr;
using testing::TempDir;
using Outcome = Selector::Outcome;

class SelectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    addCertificate("shop", {"shop.example.com", "www.shop.example.com"});
    addCertificate("wild", {"*.wild.example"});
    addCertificate("cdn", {"*.cdn.example"});
    config_.tls.defaultCertificate = "cdn";
    config_.sites.push_back(site("shop", {"shop.example.com", "www.shop.example.com"}, "shop"));
    config_.sites.push_back(site("wild", {"*.wild.example"}, "wild"));
    config_.sites.push_back(site("plain", {"plain.example"}, ""));  // default certificate
  }

  void addCertificate(const std::string& name, const std::vector<std::string>& dns) {
    auto key = testing::makeKey(Alg::kP256);
    auto cert = testing::makeCert(CertSpec{dns[0], dns, {}, now_ - 3600, now_ + 86400}, key.get());
    conf::CertificateFiles files{name, dir_.file(name + "/fullchain.pem"),
                                 dir_.file(name + "/privkey.pem")};
    ASSERT_TRUE(writeFileAtomic(files.certPath, testing::certPem(cert.get()), 0644).ok());
    ASSERT_TRUE(writeFileAtomic(files.keyPath, testing::pkcs8Pem(key.get()), 0600).ok());
    config_.certificates.push_back(files);
  }

  static conf::Site site(const std::string& name, std::vector<std::string> hosts,
                         const std::string& certificate) {
    conf::Site s;
    s.name = name;
    s.hosts = std::move(hosts);
    s.certificate = certificate;
    return s;
  }

  std::shared_ptr<const Selector> build() {
    auto selector = Selector::build(config_, now_);
    EXPECT_TRUE(selector.ok()) << (selector.ok() ? "" : selector.error().message);
    return selector.ok() ? *selector : nullptr;
  }

  const Credentials* byName(const Selector& s, const std::string& name) {
    return s.credentials(name);
  }

  time_t now_ = time(nullptr);
  TempDir dir_;
  conf::Config config_;
};

TEST_F(SelectorTest, ExactNames) {
  auto s = build();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->certificateCount(), 3u);
  auto c = s->select("shop.example.com");
  EXPECT_EQ(c.credentials, byName(*s, "shop"));
  EXPECT_EQ(c.outcome, Outcome::kExact);
  EXPECT_EQ(s->select("www.shop.example.com").credentials, byName(*s, "shop"));
  // A site without its own certificate gets the default, as an exact match.
  c = s->select("plain.example");
  EXPECT_EQ(c.credentials, byName(*s, "cdn"));
  EXPECT_EQ(c.outcome, Outcome::kExact);
}

TEST_F(SelectorTest, UpperCaseAndTrailingDot) {
  auto s = build();
  ASSERT_TRUE(s);
  auto c = s->select("SHOP.Example.COM.");
  EXPECT_EQ(c.credentials, byName(*s, "shop"));
  EXPECT_EQ(c.outcome, Outcome::kExact);
  EXPECT_EQ(s->select("A.WILD.EXAMPLE.").outcome, Outcome::kWildcard);
}

TEST_F(SelectorTest, WildcardCoversOneLabelOnly) {
  auto s = build();
  ASSERT_TRUE(s);
  auto c = s->select("a.wild.example");
  EXPECT_EQ(c.credentials, byName(*s, "wild"));
  EXPECT_EQ(c.outcome, Outcome::kWildcard);
  EXPECT_EQ(s->select("a.b.wild.example").outcome, Outcome::kDefault);
  EXPECT_EQ(s->select("wild.example").outcome, Outcome::kDefault);
  EXPECT_EQ(s->select(".wild.example").outcome, Outcome::kDefault);
}

TEST_F(SelectorTest, UnknownNameGetsTheDefault) {
  auto s = build();
  ASSERT_TRUE(s);
  auto c = s->select("unknown.example");
  EXPECT_EQ(c.credentials, byName(*s, "cdn"));
  EXPECT_EQ(c.outcome, Outcome::kDefault);
}

TEST_F(SelectorTest, RejectRefusesUnknownNames) {
  config_.tls.unknownSni = conf::UnknownSni::kReject;
  auto s = build();
  ASSERT_TRUE(s);
  auto c = s->select("unknown.example");
  EXPECT_EQ(c.credentials, nullptr);
  EXPECT_EQ(c.outcome, Outcome::kMiss);
  EXPECT_EQ(s->select("shop.example.com").outcome, Outcome::kExact);
  // No SNI names nothing unknown: still the default.
  EXPECT_EQ(s->select("").credentials, byName(*s, "cdn"));
}

TEST_F(SelectorTest, NoSniGetsTheDefault) {
  auto s = build();
  ASSERT_TRUE(s);
  auto c = s->select("");
  EXPECT_EQ(c.credentials, byName(*s, "cdn"));
  EXPECT_EQ(c.outcome, Outcome::kDefault);
}

TEST_F(SelectorTest, WithoutDefaultUnknownIsAMiss) {
  config_.tls.defaultCertificate.clear();
  config_.sites.pop_back();  // "plain" had no certificate of its own
  auto s = build();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->select("unknown.example").credentials, nullptr);
  EXPECT_EQ(s->select("unknown.example").outcome, Outcome::kMiss);
  EXPECT_EQ(s->select("").outcome, Outcome::kMiss);
}

TEST_F(SelectorTest, OverLongNames) {
  auto s = build();
  ASSERT_TRUE(s);
  std::string longest =
      std::string(253 - std::string(".wild.example").size(), 'a') + ".wild.example";
  ASSERT_EQ(longest.size(), 253u);
  // Label lengths are not policed: a 240-character first label still finds the wildcard.
  EXPECT_EQ(s->select(longest).outcome, Outcome::kWildcard);
  EXPECT_EQ(s->select(longest + ".").outcome, Outcome::kWildcard);
  std::string label63 = std::string(63, 'b');
  std::string ok = label63 + ".wild.example";
  EXPECT_EQ(s->select(ok).outcome, Outcome::kWildcard);
  EXPECT_EQ(s->select(ok + ".").outcome, Outcome::kWildcard);
  std::string tooLong = std::string(300, 'c') + ".wild.example";
  auto c = s->select(tooLong);
  EXPECT_EQ(c.outcome, Outcome::kDefault);
  EXPECT_EQ(c.credentials, byName(*s, "cdn"));
  config_.tls.unknownSni = conf::UnknownSni::kReject;
  auto r = build();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->select(tooLong).credentials, nullptr);
}

TEST_F(SelectorTest, ListsEveryLoadFailure) {
  config_.certificates[0].certPath = dir_.file("missing.pem");
  config_.certificates[1].keyPath = config_.certificates[2].keyPath;  // wrong key
  auto s = Selector::build(config_, now_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              AllOf(HasSubstr("certificate 'shop': cannot open " + dir_.file("missing.pem") +
                              ": No such file or directory"),
                    HasSubstr("\ncertificate 'wild': " + dir_.file("cdn/privkey.pem") +
                              ": the private key does not match")));
}

TEST_F(SelectorTest, UnknownCertificateNames) {
  config_.sites[0].certificate = "nope";
  config_.tls.defaultCertificate = "gone";
  auto s = Selector::build(config_, now_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              AllOf(HasSubstr("tls.default_certificate: no certificate named `gone` in "
                              "`certificates:`"),
                    HasSubstr("site `shop`: no certificate named `nope` in `certificates:`")));
}

}  // namespace
}  // namespace tlsedge::certstore
