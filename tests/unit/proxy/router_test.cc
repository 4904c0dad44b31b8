#include "proxy/router.h"

#include <gtest/gtest.h>

namespace tlsedge::proxy {
namespace {

conf::Route route(std::string prefix, std::string upstream) {
  conf::Route r;
  r.pathPrefix = std::move(prefix);
  r.upstream = std::move(upstream);
  return r;
}

conf::Site site(std::string name, std::vector<std::string> hosts, std::vector<conf::Route> routes) {
  conf::Site s;
  s.name = std::move(name);
  s.hosts = std::move(hosts);
  s.routes = std::move(routes);
  return s;
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    config_.sites.push_back(site("shop", {"shop.example.com", "www.shop.example.com"},
                                 {route("/", "shop-root"), route("/api", "shop-api"),
                                  route("/api/v2/", "shop-api-v2"), route("/api", "shop-dup")}));
    config_.sites.push_back(site("cdn", {"*.cdn.example"}, {route("/static/", "cdn-static")}));
    // An exact name beats the wildcard that would also cover it.
    config_.sites.push_back(site("special", {"special.cdn.example"}, {route("/", "special")}));
    config_.sites.push_back(site("v6", {"::1", "127.0.0.1"}, {route("/", "local")}));
    router_ = std::make_unique<Router>(config_);
  }

  const conf::Site& siteNamed(const std::string& name) const {
    for (const auto& s : config_.sites) {
      if (s.name == name) return s;
    }
    throw std::runtime_error("no site " + name);
  }
  std::string siteOf(std::string_view host) const {
    const conf::Site* s = router_->findSite(host);
    return s != nullptr ? s->name : "<none>";
  }
  std::string upstreamOf(const std::string& siteName, std::string_view target) const {
    const conf::Route* r = router_->findRoute(siteNamed(siteName), target);
    return r != nullptr ? r->upstream : "<none>";
  }

  conf::Config config_;
  std::unique_ptr<Router> router_;
};

TEST(NormalizeHostTest, Examples) {
  EXPECT_EQ(normalizeHost("Example.COM.:8080"), "example.com");
  EXPECT_EQ(normalizeHost("example.com"), "example.com");
  EXPECT_EQ(normalizeHost("example.com:"), "example.com");
  EXPECT_EQ(normalizeHost("EXAMPLE.com."), "example.com");
  EXPECT_EQ(normalizeHost("[::1]:443"), "::1");
  EXPECT_EQ(normalizeHost("[2001:DB8::1]"), "2001:db8::1");
  EXPECT_EQ(normalizeHost("::1"), "::1");  // bare IPv6 (no port possible)
  EXPECT_EQ(normalizeHost("127.0.0.1:80"), "127.0.0.1");
  EXPECT_EQ(normalizeHost(""), "");
  EXPECT_EQ(normalizeHost("[::1"), "");
}

TEST_F(RouterTest, ExactHosts) {
  EXPECT_EQ(siteOf("shop.example.com"), "shop");
  EXPECT_EQ(siteOf("www.shop.example.com"), "shop");
  EXPECT_EQ(siteOf("example.com"), "<none>");
  EXPECT_EQ(siteOf("hop.example.com"), "<none>");
  EXPECT_EQ(siteOf(""), "<none>");
}

TEST_F(RouterTest, HostNormalization) {
  EXPECT_EQ(siteOf("SHOP.Example.Com"), "shop");
  EXPECT_EQ(siteOf("shop.example.com:8443"), "shop");
  EXPECT_EQ(siteOf("shop.example.com."), "shop");
  EXPECT_EQ(siteOf("Shop.Example.Com.:443"), "shop");
  EXPECT_EQ(siteOf("[::1]:8080"), "v6");
  EXPECT_EQ(siteOf("[::1]"), "v6");
  EXPECT_EQ(siteOf("127.0.0.1:80"), "v6");
}

TEST_F(RouterTest, WildcardCoversOneLabel) {
  EXPECT_EQ(siteOf("a.cdn.example"), "cdn");
  EXPECT_EQ(siteOf("Img-1.CDN.example:443"), "cdn");
  EXPECT_EQ(siteOf("a.b.cdn.example"), "<none>");
  EXPECT_EQ(siteOf("cdn.example"), "<none>");
  EXPECT_EQ(siteOf(".cdn.example"), "<none>");
}

TEST_F(RouterTest, ExactBeforeWildcard) {
  EXPECT_EQ(siteOf("special.cdn.example"), "special");
  EXPECT_EQ(siteOf("other.cdn.example"), "cdn");
}

TEST_F(RouterTest, LongestPrefixWins) {
  EXPECT_EQ(upstreamOf("shop", "/"), "shop-root");
  EXPECT_EQ(upstreamOf("shop", "/index.html"), "shop-root");
  EXPECT_EQ(upstreamOf("shop", "/api"), "shop-api");  // first of two equal prefixes
  EXPECT_EQ(upstreamOf("shop", "/api/v1/users"), "shop-api");
  EXPECT_EQ(upstreamOf("shop", "/apiv2"), "shop-api");  // byte prefix, as nginx
  EXPECT_EQ(upstreamOf("shop", "/api/v2/users"), "shop-api-v2");
  EXPECT_EQ(upstreamOf("shop", "/api/v2"), "shop-api");
}

TEST_F(RouterTest, QueryIsNotPartOfThePath) {
  EXPECT_EQ(upstreamOf("shop", "/api?x=/api/v2/"), "shop-api");
  EXPECT_EQ(upstreamOf("shop", "/?/api/v2/"), "shop-root");
  EXPECT_EQ(upstreamOf("cdn", "/x?/static/"), "<none>");
  EXPECT_EQ(upstreamOf("cdn", "/static/a.css?v=1"), "cdn-static");
}

TEST_F(RouterTest, AbsoluteFormUsesItsPath) {
  EXPECT_EQ(upstreamOf("shop", "http://shop.example.com/api/v2/x?q=1"), "shop-api-v2");
  EXPECT_EQ(upstreamOf("cdn", "http://a.cdn.example/static/x"), "cdn-static");
  EXPECT_EQ(upstreamOf("cdn", "https://a.cdn.example/other/static/"), "<none>");
  EXPECT_EQ(upstreamOf("shop", "http://shop.example.com"), "shop-root");
  EXPECT_EQ(upstreamOf("shop", "http://shop.example.com?q=/api"), "shop-root");
}

TEST_F(RouterTest, NoMatchingRoute) {
  EXPECT_EQ(upstreamOf("cdn", "/"), "<none>");
  EXPECT_EQ(upstreamOf("cdn", "/static"), "<none>");
  EXPECT_EQ(upstreamOf("shop", "*"), "<none>");
}

TEST_F(RouterTest, SiteFromAnotherConfigStillRoutes) {
  conf::Site other = site("other", {"other.example"}, {route("/", "a"), route("/b", "b")});
  const conf::Route* r = router_->findRoute(other, "/b/c");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->upstream, "b");
}

TEST(RouterEmptyTest, NoSites) {
  conf::Config config;
  Router router(config);
  EXPECT_EQ(router.findSite("example.com"), nullptr);
}

}  // namespace
}  // namespace tlsedge::proxy
