// Sites given alone (the admin API's bodies, the state directory's
// sites/*.json): the YAML rules and messages, positions of the text given,
// names and hosts unique against the configuration's sites.
#include "conf/api_sites.h"

#include <gtest/gtest.h>

namespace tlsedge::conf {
namespace {

ConfigPtr base() {
  auto config = loadString(R"(state_dir: /tmp/x
upstreams:
  origin: { servers: ["127.0.0.1:8080"] }
sites:
  - name: shop
    hosts: [shop.example, "*.shop.example"]
    routes: [{ path: /, upstream: origin }]
)",
                           "t.yaml", "/");
  EXPECT_TRUE(config.ok()) << config.error().message;
  return *config;
}

Result<std::vector<Site>> parseOne(const Config& config, const std::string& name,
                                   const std::string& text) {
  return parseApiSites(config, {{name, "request body", text}});
}

TEST(ApiSitesTest, JsonBodyIsASite) {
  auto sites = parseOne(*base(), "blog",
                        R"({"hosts": ["Blog.Example"], "redirect_https": false,
                            "hsts": {"max_age": 600},
                            "routes": [{"path": "/", "upstream": "origin"},
                                       {"path": "/hi", "respond": {"status": 203, "body": "x"}}]})");
  ASSERT_TRUE(sites.ok()) << sites.error().message;
  ASSERT_EQ(sites->size(), 1u);
  const Site& site = sites->front();
  EXPECT_EQ(site.name, "blog");
  EXPECT_TRUE(site.api);
  EXPECT_EQ(site.hosts, std::vector<std::string>{"blog.example"});
  EXPECT_FALSE(site.redirectHttps);
  ASSERT_TRUE(site.hsts);
  EXPECT_EQ(site.hsts->maxAge, 600u);
  ASSERT_EQ(site.routes.size(), 2u);
  EXPECT_EQ(site.routes[1].respond->status, 203);
}

TEST(ApiSitesTest, MessagesAreTheYamlOnesAtTheBodysPositions) {
  auto sites = parseOne(*base(), "blog",
                        "{\"hosts\": [\"a..example\"],\n \"routes\": [{\"path\": \"/\", "
                        "\"upstream\": \"nope\"}], \"colour\": 1}");
  ASSERT_FALSE(sites.ok());
  EXPECT_EQ(sites.error().kind, ErrorKind::kInvalid);
  const std::string& m = sites.error().message;
  EXPECT_NE(m.find("request body:1:12: hosts[0]: host `a..example`: "), std::string::npos) << m;
  EXPECT_NE(m.find("request body:2:"), std::string::npos) << m;
  EXPECT_NE(m.find("routes[0].upstream: no upstream named `nope` (defined: origin)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("unknown key `colour`"), std::string::npos) << m;
}

TEST(ApiSitesTest, SyntaxErrorAndNotAMap) {
  auto bad = parseOne(*base(), "blog", "{\"hosts\": [");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("request body:", 0), 0u) << bad.error().message;
  EXPECT_NE(bad.error().message.find("syntax error"), std::string::npos) << bad.error().message;
  auto list = parseOne(*base(), "blog", "[1, 2]");
  ASSERT_FALSE(list.ok());
}

TEST(ApiSitesTest, NameMayBeLeftOutButNotDiffer) {
  EXPECT_TRUE(parseOne(*base(), "blog",
                       R"({"name": "blog", "hosts": ["b.example"],
                           "routes": [{"path": "/", "respond": {}}]})")
                  .ok());
  auto other = parseOne(*base(), "blog",
                        R"({"name": "other", "hosts": ["b.example"],
                            "routes": [{"path": "/", "respond": {}}]})");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("name: `other` differs from the site's name `blog`"),
            std::string::npos)
      << other.error().message;
  auto badName = parseOne(*base(), "bad name!",
                          R"({"hosts": ["b.example"], "routes": [{"path": "/", "respond": {}}]})");
  ASSERT_FALSE(badName.ok());
  EXPECT_NE(badName.error().message.find("site name: "), std::string::npos);
}

TEST(ApiSitesTest, NamesAndHostsOfTheConfigurationAreTaken) {
  const ConfigPtr config = base();
  auto name = parseOne(*config, "shop",
                       R"({"hosts": ["b.example"], "routes": [{"path": "/", "respond": {}}]})");
  ASSERT_FALSE(name.ok());
  EXPECT_NE(name.error().message.find("site name `shop` is already used by t.yaml sites[0]"),
            std::string::npos)
      << name.error().message;
  auto host =
      parseOne(*config, "blog",
               R"({"hosts": ["*.SHOP.example"], "routes": [{"path": "/", "respond": {}}]})");
  ASSERT_FALSE(host.ok());
  EXPECT_NE(host.error().message.find("host `*.shop.example` is already listed by site `shop` at "
                                      "t.yaml sites[0].hosts[1]"),
            std::string::npos)
      << host.error().message;
}

TEST(ApiSitesTest, AnApiSiteIsReplacedNotConflictedWith) {
  auto first = parseOne(*base(), "blog",
                        R"({"hosts": ["b.example"], "routes": [{"path": "/", "respond": {}}]})");
  ASSERT_TRUE(first.ok());
  const ConfigPtr merged = withApiSites(*base(), *first);
  ASSERT_EQ(merged->sites.size(), 2u);
  EXPECT_FALSE(merged->sites[0].api);
  EXPECT_TRUE(merged->sites[1].api);
  // Replacing blog may keep its host; another API site may not take it.
  EXPECT_TRUE(parseOne(*merged, "blog",
                       R"({"hosts": ["b.example", "c.example"],
                           "routes": [{"path": "/", "respond": {}}]})")
                  .ok());
  auto taken = parseOne(*merged, "news",
                        R"({"hosts": ["b.example"], "routes": [{"path": "/", "respond": {}}]})");
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.error().message.find("by site `blog` at the admin API's site `blog` hosts[0]"),
            std::string::npos)
      << taken.error().message;
  EXPECT_EQ(apiSites(*merged).size(), 1u);
  // withApiSites replaces the API sites, keeping the YAML ones.
  EXPECT_EQ(withApiSites(*merged, {})->sites.size(), 1u);
}

TEST(ApiSitesTest, AcmeNeedsTheAcmeSection) {
  auto sites = parseOne(*base(), "blog",
                        R"({"hosts": ["b.example"], "tls": {"acme": true},
                            "routes": [{"path": "/", "respond": {}}]})");
  ASSERT_FALSE(sites.ok());
  EXPECT_NE(sites.error().message.find("tls.acme: needs a top-level `acme:` section"),
            std::string::npos)
      << sites.error().message;
}

TEST(ApiSitesTest, SeveralTextsAreCheckedAgainstEachOther) {
  auto sites = parseApiSites(
      *base(),
      {{"a", "a.json", R"({"hosts": ["x.example"], "routes": [{"path": "/", "respond": {}}]})"},
       {"b", "b.json", R"({"hosts": ["x.example"], "routes": [{"path": "/", "respond": {}}]})"}});
  ASSERT_FALSE(sites.ok());
  EXPECT_EQ(sites.error().message.rfind(
                "b.json:1:12: hosts[0]: host `x.example` is already listed by site `a`", 0),
            0u)
      << sites.error().message;
}

// The fleet's stored sites, each checked alone: those that do not fit are
// left out, the others kept, the same ones on every node (name order).
TEST(ApiSitesTest, FittingSitesLeaveOutWhatDoesNotFit) {
  auto site = [](const std::string& name, const std::string& hosts, const std::string& tls = "") {
    return SiteText{name, "sites/" + name + "/site.json",
                    R"({"hosts": [)" + hosts + R"(], )" + tls +
                        R"("routes": [{"path": "/", "upstream": "origin"}]})"};
  };
  FittingSites fit = fittingApiSites(
      *base(),
      {site("a", R"("a.example", "dup.example")"),
       site("b", R"("dup.example", "b.example")"),                          // a host `a` took first
       site("c", R"("c.example")", R"("tls": {"certificate": "nope"}, )"),  // unknown
       site("d", R"("d.example")", R"("tls": {"certificate": "stored"}, )"),
       site("e", R"("shop.example")"),  // the YAML's host
       site("shop", R"("x.example")"),  // the YAML's site name
       site("f", R"("b.example", "bad host")")},
      {"stored"});
  std::vector<std::string> kept;
  for (const Site& s : fit.sites) {
    kept.push_back(s.name);
    EXPECT_TRUE(s.api);
  }
  EXPECT_EQ(kept, (std::vector<std::string>{"a", "d"}));
  EXPECT_EQ(fit.refused, 5u);
  for (const char* expected :
       {"sites/b/site.json:1:", "host `dup.example` is already listed by site `a`",
        "sites/c/site.json: tls: no certificate named `nope`", "sites/e/site.json:1:",
        "sites/shop/site.json: site `shop` is defined at", "sites/f/site.json:1:"}) {
    EXPECT_NE(fit.problems.find(expected), std::string::npos) << expected << "\n" << fit.problems;
  }
  // What a site left out claimed is free again: `b`'s b.example is not
  // held against `f`, which is left out for its own bad host only.
  EXPECT_EQ(fit.problems.find("host `b.example` is already"), std::string::npos) << fit.problems;
}

}  // namespace
}  // namespace tlsedge::conf
