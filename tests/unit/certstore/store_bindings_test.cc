// StoreBindings: one store entry change applied to a snapshot gives what a
// full rebuild from the same disk gives, touching only the hosts it affects;
// refusals change nothing.
#include "certstore/store_bindings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "certstore/files.h"
#include "certstore/store.h"
#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using testing::Alg;
using testing::CertSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kDay;
using testing::TempDir;
using Outcome = Selector::Outcome;

class StoreBindingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.stateDir = dir_.path();
    config_.sourceName = "t.yaml";
  }

  std::pair<std::string, std::string> material(const std::vector<std::string>& dns, time_t age,
                                               time_t life = 30 * kDay) {
    auto key = testing::makeKey(Alg::kP256);
    auto cert =
        testing::makeCert(CertSpec{dns[0], dns, {}, now_ - age, now_ - age + life}, key.get());
    return {testing::certPem(cert.get()), testing::pkcs8Pem(key.get())};
  }

  // Adds or replaces a store entry issued `age` seconds ago.
  void put(const std::string& name, const std::vector<std::string>& dns, time_t age = 3600) {
    auto [chain, key] = material(dns, age);
    auto added = store_.add(name, chain, key, true, CertSource::kUpload, now_);
    ASSERT_TRUE(added.ok()) << added.error().message;
  }

  void site(const std::string& name, std::vector<std::string> hosts,
            std::vector<std::string> certificates = {}, const std::string& fallback = "") {
    conf::Site s;
    s.name = name;
    s.hosts = std::move(hosts);
    s.certificates = std::move(certificates);
    s.fallbackCertificate = fallback;
    config_.sites.push_back(std::move(s));
  }

  // Builds the snapshot and the bindings from the disk, as at start.
  void start() {
    configPtr_ = std::make_shared<conf::Config>(config_);
    auto built = Selector::build(*configPtr_, now_);
    ASSERT_TRUE(built.ok()) << built.error().message;
    current_ = *built;
    bindings_ = StoreBindings::build(configPtr_, *current_);
  }

  // What the watcher does for an event naming `name`: load, apply.
  Result<StoreBindings::Applied> change(const std::string& name) {
    CredentialsPtr loaded;
    if (store_.contains(name).value()) {
      auto read = store_.load(name, nullptr, now_);
      if (!read.ok()) return read.error();
      loaded = *read;
    }
    auto applied = bindings_.apply(current_, name, loaded, now_);
    if (applied.ok()) current_ = applied->snapshot;
    return applied;
  }

  std::vector<std::string> changedHosts(const std::string& name) {
    auto applied = change(name);
    EXPECT_TRUE(applied.ok()) << applied.error().message;
    return applied.ok() ? applied->hosts : std::vector<std::string>{"(refused)"};
  }

  // Every SNI answers as a full rebuild from the same disk would.
  void expectSameAsRebuild(const std::vector<std::string>& snis) {
    auto rebuilt = Selector::build(*configPtr_, now_);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().message;
    for (const std::string& sni : snis) {
      for (bool ecdsa : {true, false}) {
        auto a = current_->select(sni, ecdsa);
        auto b = (*rebuilt)->select(sni, ecdsa);
        EXPECT_EQ(a.outcome, b.outcome) << sni;
        ASSERT_EQ(a.credentials == nullptr, b.credentials == nullptr) << sni;
        if (a.credentials != nullptr) {
          EXPECT_EQ(a.credentials->name, b.credentials->name) << sni;
          EXPECT_EQ(a.credentials->sha256Fingerprint, b.credentials->sha256Fingerprint) << sni;
        }
      }
    }
    EXPECT_EQ(current_->hostCount(), (*rebuilt)->hostCount());
    EXPECT_EQ(current_->certificateCount(), (*rebuilt)->certificateCount());
  }

  std::string served(const std::string& sni) {
    auto c = current_->select(sni);
    return c.credentials != nullptr ? c.credentials->name : "";
  }

  time_t now_ = time(nullptr);
  TempDir dir_;
  CertificateStore store_ = CertificateStore::forStateDir(dir_.path());
  conf::Config config_;
  conf::ConfigPtr configPtr_;
  std::shared_ptr<const Selector> current_;
  StoreBindings bindings_;
};

const std::vector<std::string> kSnis = {"shop.example.com", "api.example.com", "a.b.example.com",
                                        "other.test",       "x.wild.test",     "nowhere.test"};

TEST_F(StoreBindingsTest, CoversAddedReplacedRemovedNewestWins) {
  put("cdn", {"cdn.example"});
  config_.tls.defaultCertificate = "cdn";
  site("shop",
       {"shop.example.com", "api.example.com", "a.b.example.com", "other.test", "*.wild.test"});
  start();
  EXPECT_EQ(served("shop.example.com"), "cdn");

  // A wildcard: the hosts one label under example.com, not two.
  put("wild", {"*.example.com"}, 20 * kDay);
  EXPECT_THAT(changedHosts("wild"), ElementsAre("api.example.com", "shop.example.com"));
  EXPECT_EQ(served("a.b.example.com"), "cdn");
  expectSameAsRebuild(kSnis);

  // Newer and exact: only shop changes.
  put("shop-new", {"shop.example.com"}, kDay);
  EXPECT_THAT(changedHosts("shop-new"), ElementsAre("shop.example.com"));
  EXPECT_EQ(served("shop.example.com"), "shop-new");
  // Older than what serves: tracked, nothing changes.
  put("shop-old", {"shop.example.com"}, 10 * kDay);
  EXPECT_TRUE(changedHosts("shop-old").empty());
  EXPECT_EQ(bindings_.covers("shop.example.com"),
            (std::set<std::string>{"shop-new", "shop-old", "wild"}));
  expectSameAsRebuild(kSnis);

  // The newest removed: the next newest takes over.
  ASSERT_TRUE(store_.remove("shop-new").ok());
  EXPECT_THAT(changedHosts("shop-new"), ElementsAre("shop.example.com"));
  EXPECT_EQ(served("shop.example.com"), "shop-old");
  expectSameAsRebuild(kSnis);

  // Replaced with other names: api.example.com back to the default,
  // other.test and the wildcard site host now covered.
  put("wild", {"other.test", "*.wild.test"});
  EXPECT_THAT(changedHosts("wild"), ElementsAre("*.wild.test", "api.example.com", "other.test"));
  EXPECT_EQ(served("api.example.com"), "cdn");
  EXPECT_EQ(served("x.wild.test"), "wild");
  expectSameAsRebuild(kSnis);

  // An entry covering nothing configured: added, no host changes.
  put("unrelated", {"unrelated.test"});
  EXPECT_TRUE(changedHosts("unrelated").empty());
  EXPECT_NE(current_->credentials("unrelated"), nullptr);
  expectSameAsRebuild(kSnis);
}

TEST_F(StoreBindingsTest, AnExpiredCoverIsIgnored) {
  put("cdn", {"cdn.example"});
  config_.tls.defaultCertificate = "cdn";
  site("shop", {"shop.example.com"});
  start();
  // Valid when loaded (ten days ago), expired now.
  auto [chain, key] = material({"shop.example.com"}, 20 * kDay, 15 * kDay);
  auto expired = parseCredentials("late", chain, key, nullptr, now_ - 10 * kDay);
  ASSERT_TRUE(expired.ok()) << expired.error().message;
  auto applied = bindings_.apply(current_, "late", *expired, now_);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_TRUE(applied->hosts.empty());
  EXPECT_EQ(applied->snapshot->select("shop.example.com").credentials->name, "cdn");
}

TEST_F(StoreBindingsTest, RemovalsAReloadWouldRefuseAreRefused) {
  put("cdn", {"cdn.example"});
  put("shop", {"shop.example.com"});
  put("auto", {"blog.example.com"});
  config_.tls.defaultCertificate = "cdn";
  site("shop", {"shop.example.com"}, {"shop"});
  site("blog", {"blog.example.com"});
  start();
  const auto before = current_;

  ASSERT_TRUE(store_.remove("shop").ok());
  auto r = change("shop");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message,
              HasSubstr("certificate `shop` was removed from " + store_.directory() +
                        " but is in use (tls.certificate of site `shop`): the previous "
                        "certificate keeps serving"));
  ASSERT_TRUE(store_.remove("cdn").ok());
  r = change("cdn");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("in use (tls.default_certificate)"));
  EXPECT_EQ(current_, before);
  EXPECT_EQ(served("shop.example.com"), "shop");

  // The last cover of a host with neither fallback nor default: refused too.
  config_.tls.defaultCertificate.clear();
  config_.sites.pop_back();
  site("blog", {"blog.example.com"});
  put("cdn", {"cdn.example"});
  put("shop", {"shop.example.com"});
  start();
  ASSERT_TRUE(store_.remove("auto").ok());
  r = change("auto");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("site `blog` would have no certificate for "
                                           "`blog.example.com`"));
  EXPECT_EQ(served("blog.example.com"), "auto");
  EXPECT_EQ(bindings_.covers("blog.example.com"), std::set<std::string>{"auto"});
}

TEST_F(StoreBindingsTest, ANameTheConfigDefinesIsRefused) {
  put("cdn", {"cdn.example"});
  conf::CertificateFiles files{"conf", dir_.file("conf.pem"), dir_.file("conf.key")};
  auto [chain, key] = material({"conf.example"}, 3600);
  ASSERT_TRUE(writeFileAtomic(files.certPath, chain, 0644).ok());
  ASSERT_TRUE(writeFileAtomic(files.keyPath, key, 0600).ok());
  config_.certificates.push_back(files);
  config_.tls.defaultCertificate = "cdn";
  site("shop", {"conf.example"}, {"conf"});
  start();
  put("conf", {"conf.example"});
  auto r = change("conf");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("certificate `conf` is defined twice"));
}

TEST_F(StoreBindingsTest, ABoundSiteWithAFallbackFallsBackAndComesBack) {
  put("spare", {"spare.example"});
  put("shop", {"shop.example.com"});
  put("cdn", {"cdn.example"});
  config_.tls.defaultCertificate = "cdn";
  site("shop", {"shop.example.com", "*.shop.example.com"}, {"shop"}, "spare");
  site("blog", {"blog.example.com"}, {}, "spare");
  start();
  const std::vector<std::string> snis = {"shop.example.com", "a.shop.example.com",
                                         "blog.example.com", "x.test"};
  EXPECT_EQ(current_->select("blog.example.com").outcome, Outcome::kSiteFallback);

  ASSERT_TRUE(store_.remove("shop").ok());
  EXPECT_THAT(changedHosts("shop"), ElementsAre("*.shop.example.com", "shop.example.com"));
  auto c = current_->select("a.shop.example.com");
  EXPECT_EQ(c.credentials->name, "spare");
  EXPECT_EQ(c.outcome, Outcome::kSiteFallback);
  expectSameAsRebuild(snis);

  put("shop", {"shop.example.com", "*.shop.example.com"});
  EXPECT_THAT(changedHosts("shop"), ElementsAre("*.shop.example.com", "shop.example.com"));
  EXPECT_EQ(current_->select("shop.example.com").outcome, Outcome::kExact);
  expectSameAsRebuild(snis);

  // A cover for the unbound site with a fallback: served, then gone again.
  put("blog", {"blog.example.com"});
  EXPECT_THAT(changedHosts("blog"), ElementsAre("blog.example.com"));
  EXPECT_EQ(served("blog.example.com"), "blog");
  ASSERT_TRUE(store_.remove("blog").ok());
  EXPECT_THAT(changedHosts("blog"), ElementsAre("blog.example.com"));
  EXPECT_EQ(current_->select("blog.example.com").outcome, Outcome::kSiteFallback);
  expectSameAsRebuild(snis);

  // The fallback itself is in use: its removal is refused.
  ASSERT_TRUE(store_.remove("spare").ok());
  auto r = change("spare");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("tls.fallback_certificate of site `shop`"));
}

}  // namespace
}  // namespace tlsedge::certstore
