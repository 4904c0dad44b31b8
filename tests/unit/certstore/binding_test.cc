// Binding: config and store names, conflicts, unbound sites served by the
// newest covering store certificate, and the manage.h operations over them.
#include "certstore/binding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "certstore/files.h"
#include "certstore/manage.h"
#include "certstore/selector.h"
#include "certstore/store.h"
#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using testing::Alg;
using ::testing::AllOf;
using testing::CertSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kDay;
using testing::TempDir;
using How = HostBinding::How;

class BindingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.stateDir = dir_.path();
    config_.sourceName = "t.yaml";
  }

  // A self-signed certificate for `dns`, issued `age` seconds before now.
  std::pair<std::string, std::string> material(const std::vector<std::string>& dns,
                                               time_t age = 3600) {
    auto key = testing::makeKey(Alg::kP256);
    auto cert =
        testing::makeCert(CertSpec{dns[0], dns, {}, now_ - age, now_ + 30 * kDay}, key.get());
    return {testing::certPem(cert.get()), testing::pkcs8Pem(key.get())};
  }

  void storeAdd(const std::string& name, const std::vector<std::string>& dns, time_t age = 3600) {
    auto [chain, key] = material(dns, age);
    auto added = store_.add(name, chain, key, false, CertSource::kUpload, now_);
    ASSERT_TRUE(added.ok()) << added.error().message;
  }

  void configAdd(const std::string& name, const std::vector<std::string>& dns) {
    auto [chain, key] = material(dns);
    conf::CertificateFiles files{name, dir_.file("conf/" + name + ".pem"),
                                 dir_.file("conf/" + name + ".key")};
    ASSERT_TRUE(writeFileAtomic(files.certPath, chain, 0644).ok());
    ASSERT_TRUE(writeFileAtomic(files.keyPath, key, 0600).ok());
    config_.certificates.push_back(files);
  }

  void site(const std::string& name, std::vector<std::string> hosts,
            const std::string& certificate) {
    conf::Site s;
    s.name = name;
    s.hosts = std::move(hosts);
    if (!certificate.empty()) s.certificates = {certificate};
    config_.sites.push_back(std::move(s));
  }

  std::string errors(const ResolvedCertificates& r) {
    std::string out;
    for (const auto& e : r.errors) out += e + "\n";
    return out;
  }

  time_t now_ = time(nullptr);
  TempDir dir_;
  CertificateStore store_ = CertificateStore::forStateDir(dir_.path());
  conf::Config config_;
};

TEST_F(BindingTest, SiteBindsAStoreCertificateByName) {
  storeAdd("shop-2026", {"shop.example.com"});
  site("shop", {"shop.example.com"}, "shop-2026");
  auto r = resolveCertificates(config_, now_, nullptr);
  ASSERT_TRUE(r.errors.empty()) << errors(r);
  ASSERT_EQ(r.hosts.size(), 1u);
  EXPECT_EQ(r.hosts[0].credentials->name, "shop-2026");
  EXPECT_EQ(r.hosts[0].how, How::kNamed);
}

TEST_F(BindingTest, SiteBindsAConfigCertificateByName) {
  configAdd("shop-conf", {"shop.example.com"});
  storeAdd("other", {"shop.example.com"});
  site("shop", {"shop.example.com"}, "shop-conf");
  auto r = resolveCertificates(config_, now_, nullptr);
  ASSERT_TRUE(r.errors.empty()) << errors(r);
  EXPECT_EQ(r.hosts[0].credentials->name, "shop-conf");
}

TEST_F(BindingTest, ANameInBothPlacesIsAnError) {
  configAdd("shop", {"shop.example.com"});
  storeAdd("shop", {"shop.example.com"});
  site("shop", {"shop.example.com"}, "shop");
  auto s = Selector::build(config_, now_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(
      s.error().message,
      HasSubstr("certificate `shop` is defined twice: in `certificates:` of t.yaml and in " +
                dir_.path() + "/certs/shop"));
}

TEST_F(BindingTest, AConfigEntryForTheStoreFilesIsOneCertificate) {
  storeAdd("localhost", {"localhost"});
  config_.certificates.push_back(
      {"localhost", store_.chainPath("localhost"), store_.keyPath("localhost")});
  site("demo", {"localhost"}, "localhost");
  auto r = resolveCertificates(config_, now_, nullptr);
  EXPECT_TRUE(r.errors.empty()) << errors(r);
}

TEST_F(BindingTest, UnknownNamesAreLoadTimeErrors) {
  site("shop", {"shop.example.com"}, "x");
  config_.tls.defaultCertificate = "gone";
  auto s = Selector::build(config_, now_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              AllOf(HasSubstr("site `shop`: no certificate named `x` in `certificates:` or in " +
                              dir_.path() + "/certs"),
                    HasSubstr("tls.default_certificate: no certificate named `gone` in "
                              "`certificates:` or in " +
                              dir_.path() + "/certs")));
}

TEST_F(BindingTest, UnboundSiteGetsTheNewestCoveringStoreCertificate) {
  storeAdd("old", {"shop.example.com"}, 10 * kDay);
  storeAdd("new", {"shop.example.com"}, kDay);
  storeAdd("wild", {"*.example.com"}, 20 * kDay);
  storeAdd("unrelated", {"other.example"}, 60);
  configAdd("cdn", {"cdn.example"});
  config_.tls.defaultCertificate = "cdn";
  site("shop", {"shop.example.com", "api.example.com", "a.b.example.com"}, "");
  auto r = resolveCertificates(config_, now_, nullptr);
  ASSERT_TRUE(r.errors.empty()) << errors(r);
  ASSERT_EQ(r.hosts.size(), 3u);
  EXPECT_EQ(r.hosts[0].credentials->name, "new");
  EXPECT_EQ(r.hosts[0].how, How::kStore);
  EXPECT_EQ(r.hosts[1].credentials->name, "wild");  // one-label wildcard covers it
  EXPECT_EQ(r.hosts[2].credentials->name, "cdn");   // two labels: not covered
  EXPECT_EQ(r.hosts[2].how, How::kDefault);
  const CertificateUsers files = CertificateUsers::fromFiles(config_, now_);
  EXPECT_THAT(files.sites("new"), ElementsAre("shop"));
  EXPECT_TRUE(files.sites("old").empty());

  auto s = Selector::build(config_, now_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ((*s)->select("shop.example.com").credentials->name, "new");
  // A daemon's answer, from the snapshot it serves, is the same.
  const CertificateUsers served = CertificateUsers::fromSnapshot(config_, **s);
  for (const char* name : {"new", "old", "wild", "cdn", "unrelated"}) {
    EXPECT_EQ(served.sites(name), files.sites(name)) << name;
  }
}

TEST_F(BindingTest, ANewerWildcardBeatsAnOlderExactCover) {
  storeAdd("exact", {"shop.example.com"}, 10 * kDay);
  storeAdd("wild", {"*.example.com", "example.com"}, kDay);
  storeAdd("exact-new", {"api.example.com"}, 60);
  site("shop", {"shop.example.com", "api.example.com", "example.com", "*.example.com"}, "");
  auto r = resolveCertificates(config_, now_, nullptr);
  ASSERT_TRUE(r.errors.empty()) << errors(r);
  ASSERT_EQ(r.hosts.size(), 4u);
  EXPECT_EQ(r.hosts[0].credentials->name, "wild");       // newer than the exact one
  EXPECT_EQ(r.hosts[1].credentials->name, "exact-new");  // newer than the wildcard
  EXPECT_EQ(r.hosts[2].credentials->name, "wild");       // its second name
  EXPECT_EQ(r.hosts[3].credentials->name, "wild");       // a wildcard site host
}

TEST_F(BindingTest, UnboundSiteWithoutAnyCertificateIsAnError) {
  storeAdd("unrelated", {"other.example"});
  site("shop", {"shop.example.com"}, "");
  auto r = resolveCertificates(config_, now_, nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("site `shop`: no certificate for `shop.example.com`: set "
                                     "tls.certificate, add a certificate covering it to"));
}

TEST_F(BindingTest, AnAcmeSitePendingIssuanceIsOnlyAWarning) {
  site("shop", {"shop.example.com"}, "");
  config_.sites[0].acme = true;
  auto r = resolveCertificates(config_, now_, nullptr);
  EXPECT_TRUE(r.errors.empty()) << errors(r);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_THAT(r.warnings[0], HasSubstr("site `shop`: `shop.example.com` is pending issuance of "
                                       "its ACME certificate; handshakes for it are refused"));
  auto s = Selector::build(config_, now_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ((*s)->select("shop.example.com").credentials, nullptr);
  // Once issued, the store certificate serves it.
  storeAdd("acme-shop", {"shop.example.com"});
  s = Selector::build(config_, now_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ((*s)->select("shop.example.com").credentials->name, "acme-shop");
}

TEST_F(BindingTest, AnUnusedBrokenStoreEntryIsOnlyAWarning) {
  storeAdd("shop", {"shop.example.com"});
  ASSERT_TRUE(writeFileAtomic(store_.chainPath("junk"), "not pem", 0644).ok());
  ASSERT_TRUE(writeFileAtomic(store_.keyPath("junk"), "not pem", 0600).ok());
  site("shop", {"shop.example.com"}, "shop");
  auto r = resolveCertificates(config_, now_, nullptr);
  EXPECT_TRUE(r.errors.empty()) << errors(r);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_THAT(r.warnings[0], HasSubstr("certificate 'junk' (store): "));
  // Bound, the same entry is an error.
  config_.sites[0].certificates = {"junk"};
  EXPECT_FALSE(resolveCertificates(config_, now_, nullptr).errors.empty());
}

TEST_F(BindingTest, RemoveIsRefusedWhileInUse) {
  storeAdd("shop", {"shop.example.com"});
  storeAdd("auto", {"blog.example.com"});
  storeAdd("spare", {"spare.example.com"});
  storeAdd("cdn", {"cdn.example"});
  config_.tls.defaultCertificate = "cdn";
  site("shop", {"shop.example.com"}, "shop");
  site("blog", {"blog.example.com"}, "");
  Status r = removeCertificate(CertificateStore::local(config_), config_, "shop", now_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message,
              HasSubstr("certificate `shop` is in use by site `shop` in t.yaml"));
  r = removeCertificate(CertificateStore::local(config_), config_, "auto", now_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("in use by site `blog`"));
  r = removeCertificate(CertificateStore::local(config_), config_, "cdn", now_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("in use by tls.default_certificate"));
  EXPECT_TRUE(removeCertificate(CertificateStore::local(config_), config_, "spare", now_).ok());
  EXPECT_FALSE(store_.contains("spare").value());
}

TEST_F(BindingTest, WhichSaysHowTheCertificateWasChosen) {
  storeAdd("shop", {"shop.example.com"});
  storeAdd("wild", {"*.blog.example"});
  storeAdd("cdn", {"cdn.example"});
  config_.tls.defaultCertificate = "cdn";
  site("shop", {"shop.example.com"}, "shop");
  site("blog", {"*.blog.example"}, "");
  auto w = whichCertificate(config_, "Shop.Example.com", now_);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w->name, "shop");
  EXPECT_EQ(w->how, "exact");
  EXPECT_EQ(w->site, "shop");
  w = whichCertificate(config_, "a.blog.example", now_);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w->name, "wild");
  EXPECT_EQ(w->how, "wildcard, store");
  EXPECT_EQ(w->site, "blog");
  w = whichCertificate(config_, "unknown.example", now_);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w->name, "cdn");
  EXPECT_EQ(w->how, "default");
  auto info = store_.inspect("shop");
  ASSERT_TRUE(info.ok());
  w = whichCertificate(config_, "shop.example.com", now_);
  EXPECT_EQ(w->serialHex, info->serialHex);
  EXPECT_EQ(w->sha256Fingerprint, info->sha256Fingerprint);
  EXPECT_EQ(toJson(*w), "{\"host\":\"shop.example.com\",\"certificate\":\"shop\",\"serial\":\"" +
                            info->serialHex + "\",\"sha256\":\"" + info->sha256Fingerprint +
                            "\",\"how\":\"exact\",\"site\":\"shop\"}");
}

TEST_F(BindingTest, ASiteFallbackServesWhenTheSiteCertificateIsUnavailable) {
  storeAdd("spare", {"spare.example"});
  storeAdd("cdn", {"cdn.example"});
  ASSERT_TRUE(writeFileAtomic(store_.chainPath("broken"), "not pem", 0644).ok());
  ASSERT_TRUE(writeFileAtomic(store_.keyPath("broken"), "not pem", 0600).ok());
  config_.tls.defaultCertificate = "cdn";
  site("shop", {"shop.example.com"}, "broken");
  config_.sites[0].fallbackCertificate = "spare";
  site("blog", {"blog.example.com"}, "");
  config_.sites[1].fallbackCertificate = "spare";
  site("gone", {"gone.example.com"}, "missing");
  config_.sites[2].fallbackCertificate = "spare";
  auto r = resolveCertificates(config_, now_, nullptr);
  // The bound certificate failing or unknown is only a warning: the site is served.
  EXPECT_TRUE(r.errors.empty()) << errors(r);
  std::string warnings;
  for (const auto& w : r.warnings) warnings += w + "\n";
  EXPECT_THAT(warnings, AllOf(HasSubstr("certificate 'broken' (store): "),
                              HasSubstr("site `shop`: its tls.certificate is unavailable, served "
                                        "by tls.fallback_certificate `spare`"),
                              HasSubstr("site `gone`: no certificate named `missing`")));
  EXPECT_TRUE(r.hosts.empty());  // nothing better than the fallbacks
  EXPECT_EQ(r.fallbacks.size(), 3u);
  EXPECT_THAT(CertificateUsers::fromFiles(config_, now_).sites("spare"),
              ElementsAre("shop", "blog", "gone"));
  auto built = Selector::build(config_, now_);
  ASSERT_TRUE(built.ok()) << built.error().message;
  EXPECT_THAT(CertificateUsers::fromSnapshot(config_, **built).sites("spare"),
              ElementsAre("shop", "blog", "gone"));

  auto w = whichCertificate(config_, "shop.example.com", now_);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w->name, "spare");
  EXPECT_EQ(w->how, "fallback");
  EXPECT_EQ(w->site, "shop");
  w = whichCertificate(config_, "blog.example.com", now_);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w->how, "fallback");
  EXPECT_EQ(w->site, "blog");
  EXPECT_EQ(whichCertificate(config_, "x.test", now_)->how, "default");

  // A fallback that is unknown is an error (the bound one's failure stays a warning).
  config_.sites[0].fallbackCertificate = "nope";
  r = resolveCertificates(config_, now_, nullptr);
  EXPECT_THAT(errors(r), HasSubstr("site `shop`: tls.fallback_certificate: no certificate named "
                                   "`nope`"));
  EXPECT_FALSE(removeCertificate(CertificateStore::local(config_), config_, "spare", now_).ok());
}

TEST_F(BindingTest, ListMarksExpiringAndNamesSites) {
  auto key = testing::makeKey(Alg::kP256);
  auto soon = testing::makeCert(
      CertSpec{"soon.example", {"soon.example"}, {}, now_ - kDay, now_ + 5 * kDay}, key.get());
  ASSERT_TRUE(store_
                  .add("soon", testing::certPem(soon.get()), testing::pkcs8Pem(key.get()), false,
                       CertSource::kUpload, now_)
                  .ok());
  storeAdd("later", {"later.example"});
  site("s", {"soon.example"}, "soon");
  auto listed = listCertificates(CertificateStore::local(config_), config_, now_);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].info.name, "later");
  EXPECT_FALSE((*listed)[0].expiring);
  EXPECT_TRUE((*listed)[0].sites.empty());
  EXPECT_EQ((*listed)[1].info.name, "soon");
  EXPECT_TRUE((*listed)[1].expiring);
  EXPECT_EQ((*listed)[1].daysLeft, 5);
  EXPECT_THAT((*listed)[1].sites, ElementsAre("s"));
  const std::string json = toJson(*listed);
  EXPECT_EQ(json.front(), '[');
  EXPECT_THAT(json, AllOf(HasSubstr("\"name\":\"soon\""), HasSubstr("\"days_left\":5"),
                          HasSubstr("\"expiring\":true"), HasSubstr("\"sites\":[\"s\"]"),
                          HasSubstr("\"dns_names\":[\"soon.example\"]")));
  // Expired later: still listed, marked.
  auto later = listCertificates(CertificateStore::local(config_), config_, now_ + 10 * kDay);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE((*later)[1].expired);
}

TEST(CertJson, KeepsTheKeyOrderAndNeverThrowsOnBytesThatAreNotUtf8) {
  CertListEntry entry;
  entry.info.name = "n";
  entry.info.subject = "CN=caf\xe9";  // Latin-1 from a T61String, say
  entry.info.dnsNames = {"a.example"};
  entry.daysLeft = -3;
  entry.expired = true;
  const std::string json = toJson(entry);
  EXPECT_EQ(json.rfind("{\"name\":\"n\",\"subject\":\"CN=caf\xef\xbf\xbd\","
                       "\"dns_names\":[\"a.example\"],\"ip_addresses\":[],",
                       0),
            0u)
      << json;
  EXPECT_THAT(json, HasSubstr("\"days_left\":-3,\"expired\":true,\"expiring\":false,"));
  EXPECT_TRUE(json.ends_with(",\"sites\":[],\"default\":false,\"pending\":false}")) << json;
}

}  // namespace
}  // namespace tlsedge::certstore
