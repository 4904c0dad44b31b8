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

  void addCertificate(const std::string& name, const std::vector<std::string>& dns,
                      Alg alg = Alg::kP256) {
    auto key = testing::makeKey(alg);
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
    if (!certificate.empty()) s.certificates = {certificate};
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
  config_.sites[0].certificates = {"nope"};
  config_.tls.defaultCertificate = "gone";
  auto s = Selector::build(config_, now_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              AllOf(HasSubstr("tls.default_certificate: no certificate named `gone` in "
                              "`certificates:`"),
                    HasSubstr("site `shop`: no certificate named `nope` in `certificates:`")));
}

// A site with an ECDSA and an RSA certificate: the client's capability picks.
TEST_F(SelectorTest, PairPicksByClientCapability) {
  addCertificate("shop-rsa", {"shop.example.com", "www.shop.example.com"}, Alg::kRsa2048);
  addCertificate("wild-rsa", {"*.wild.example"}, Alg::kRsa2048);
  config_.sites[0].certificates = {"shop", "shop-rsa"};
  config_.sites[1].certificates = {"wild-rsa", "wild"};  // order does not matter
  auto s = build();
  ASSERT_TRUE(s);
  for (const char* host : {"shop.example.com", "WWW.shop.example.com."}) {
    auto ecdsa = s->select(host, /*acceptsEcdsa=*/true);
    EXPECT_EQ(ecdsa.credentials, byName(*s, "shop")) << host;
    EXPECT_EQ(ecdsa.outcome, Outcome::kExact);
    auto rsa = s->select(host, /*acceptsEcdsa=*/false);
    EXPECT_EQ(rsa.credentials, byName(*s, "shop-rsa")) << host;
    EXPECT_EQ(rsa.outcome, Outcome::kExact);
  }
  EXPECT_EQ(s->select("a.wild.example", true).credentials, byName(*s, "wild"));
  EXPECT_EQ(s->select("a.wild.example", false).credentials, byName(*s, "wild-rsa"));
  // A single certificate serves every client, whatever its key type.
  EXPECT_EQ(s->select("plain.example", false).credentials, byName(*s, "cdn"));
  EXPECT_EQ(s->nameIndex().find("shop-rsa")->get()->hosts.size(), 2u);
}

TEST_F(SelectorTest, PairOfOneKeyTypeIsAnError) {
  addCertificate("shop-2", {"shop.example.com"});
  addCertificate("rsa-1", {"shop.example.com"}, Alg::kRsa2048);
  addCertificate("rsa-2", {"shop.example.com"}, Alg::kRsa2048);
  config_.sites[0].certificates = {"shop", "shop-2"};
  config_.sites[1].certificates = {"rsa-1", "rsa-2"};
  auto s = Selector::build(config_, now_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              AllOf(HasSubstr("site `shop`: tls.certificate lists `shop` and `shop-2`, both ECDSA; "
                              "a pair must be one ECDSA and one RSA certificate"),
                    HasSubstr("site `wild`: tls.certificate lists `rsa-1` and `rsa-2`, both RSA")));
}

CredentialsPtr fake(const std::string& name, KeyType type) {
  auto c = std::make_shared<Credentials>();
  c->name = name;
  c->keyType = type;
  return c;
}

// O(changed) updates keep the other half of a pair.
TEST(SelectorPair, UpdatesKeepTheOtherHalf) {
  Selector::Input input;
  input.certificates = {fake("e", KeyType::kEcdsaP256), fake("r", KeyType::kRsa)};
  input.hosts = {{"a.example", "e"}, {"a.example", "r"}, {"b.example", "e"}};
  auto s = Selector::make(std::move(input));
  EXPECT_EQ(s->hostCount(), 2u);
  EXPECT_EQ(s->select("a.example", true).credentials->name, "e");
  EXPECT_EQ(s->select("a.example", false).credentials->name, "r");

  auto newRsa = fake("r", KeyType::kRsa);
  auto replaced = s->withCertificate(newRsa);
  EXPECT_EQ(replaced->select("a.example", false).credentials, newRsa.get());
  EXPECT_EQ(replaced->select("a.example", true).credentials, s->credentials("e"));

  // The ECDSA certificate comes back as RSA: it takes the RSA place of its hosts.
  auto nowRsa = fake("e", KeyType::kRsa);
  auto switched = s->withCertificate(nowRsa);
  EXPECT_EQ(switched->select("a.example", true).credentials, nowRsa.get());
  EXPECT_EQ(switched->select("a.example", false).credentials, nowRsa.get());
  EXPECT_TRUE(switched->nameIndex().find("r")->get()->hosts.empty());

  auto withoutRsa = s->withoutCertificate("r");
  EXPECT_EQ(withoutRsa->select("a.example", false).credentials, s->credentials("e"));
  auto withoutBoth = withoutRsa->withoutCertificate("e");
  EXPECT_EQ(withoutBoth->hostCount(), 0u);

  auto rebound = s->withHost("a.example", "r");
  EXPECT_EQ(rebound->select("a.example", true).credentials, s->credentials("r"));
  EXPECT_TRUE(rebound->withoutHost("a.example")->nameIndex().find("r")->get()->hosts.empty());
  EXPECT_EQ(rebound->nameIndex().find("e")->get()->hosts, std::vector<std::string>{"b.example"});
}

}  // namespace
}  // namespace tlsedge::certstore
