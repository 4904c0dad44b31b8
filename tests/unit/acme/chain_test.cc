#include "acme/chain.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/unit/certstore/test_pki.h"

namespace tlsedge::acme {
namespace {

using certstore::testing::certPem;
using certstore::testing::Pki;

TEST(PreferredChain, TopIssuerIsTheLastCertificatesIssuer) {
  Pki pki = Pki::make();
  EXPECT_EQ(topIssuerName(certPem(pki.leaf.get()) + certPem(pki.inter.get())), "Root CA");
  EXPECT_EQ(topIssuerName(certPem(pki.leaf.get())), "Intermediate");
  EXPECT_EQ(topIssuerName("no certificate here"), "");
}

TEST(PreferredChain, AlternateLinks) {
  http::HttpResponse r;
  r.headers = {
      {"Content-Type", "application/pem-certificate-chain"},
      {"Link", "<https://ca.example/cert/1/1>;rel=\"alternate\""},
      {"link", "<https://ca.example/dir>;rel=\"index\""},
      {"Link", "</cert/1/2> ; rel=alternate, <https://ca.example/up>;rel=\"up\""},
      {"Link", "<https://ca.example/cert/1/3>;title=\"x\";rel=\"up alternate\""},
  };
  EXPECT_EQ(
      alternateChainUrls(r, "https://ca.example:14000/cert/1"),
      (std::vector<std::string>{"https://ca.example/cert/1/1", "https://ca.example:14000/cert/1/2",
                                "https://ca.example/cert/1/3"}));
  EXPECT_TRUE(alternateChainUrls(http::HttpResponse{}, "https://ca.example/").empty());
}

// Two chains for one leaf: under "Root CA" (the default) and under "Other Root".
struct Chains {
  Pki pki = Pki::make();
  std::string byRoot = certPem(pki.leaf.get()) + certPem(pki.inter.get());
  std::string byOther = [this] {
    auto otherKey = certstore::testing::makeKey(certstore::testing::Alg::kP256);
    auto other = certstore::testing::makeCert(
        {"Other Root", {}, {}, certstore::testing::kNow, certstore::testing::kNow + 86400, true},
        otherKey.get());
    auto cross = certstore::testing::makeCert(
        {"Intermediate", {}, {}, certstore::testing::kNow, certstore::testing::kNow + 86400, true},
        pki.interKey.get(), other.get(), otherKey.get());
    return certPem(pki.leaf.get()) + certPem(cross.get());
  }();
};

struct Outcome {
  std::string pem, why;
  std::vector<std::string> fetched;
};

Outcome choose(const std::string& preferred, const std::string& defaultPem,
               const std::map<std::string, std::string>& alternates) {
  Outcome out;
  std::vector<std::string> urls;
  for (const auto& [url, pem] : alternates) urls.push_back(url);
  choosePreferredChain(
      preferred, defaultPem, urls,
      [&](const std::string& url, std::function<void(Result<std::string>)> done) {
        out.fetched.push_back(url);
        const std::string& pem = alternates.at(url);
        if (pem == "fail") return done(makeError("HTTP 500"));
        done(pem);
      },
      [&](std::string pem, std::string why) {
        out.pem = std::move(pem);
        out.why = std::move(why);
      });
  return out;
}

TEST(PreferredChain, PicksTheAlternateWhoseTopIssuerMatches) {
  Chains c;
  auto out =
      choose("Other Root", c.byRoot, {{"https://ca/a1", "fail"}, {"https://ca/a2", c.byOther}});
  EXPECT_EQ(out.pem, c.byOther);
  EXPECT_EQ(out.fetched, (std::vector<std::string>{"https://ca/a1", "https://ca/a2"}));
  EXPECT_NE(out.why.find("https://ca/a2"), std::string::npos) << out.why;
}

TEST(PreferredChain, DefaultWhenItMatchesOrNothingDoes) {
  Chains c;
  auto same = choose("Root CA", c.byRoot, {{"https://ca/a1", c.byOther}});
  EXPECT_EQ(same.pem, c.byRoot);
  EXPECT_TRUE(same.fetched.empty());  // no download needed
  auto none = choose("Nobody", c.byRoot, {{"https://ca/a1", c.byOther}});
  EXPECT_EQ(none.pem, c.byRoot);
  EXPECT_EQ(none.fetched.size(), 1u);
  EXPECT_NE(none.why.find("default"), std::string::npos) << none.why;
}

TEST(PreferredChain, DroppedFetchNeverChooses) {
  Chains c;
  bool chosen = false;
  choosePreferredChain(
      "Other Root", c.byRoot, {"https://ca/a1"},
      [](const std::string&, std::function<void(Result<std::string>)>) {},
      [&](std::string, std::string) { chosen = true; });
  EXPECT_FALSE(chosen);
}

}  // namespace
}  // namespace tlsedge::acme
