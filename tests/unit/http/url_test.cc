#include <gtest/gtest.h>

#include "http/http_client.h"

namespace tlsedge::http {
namespace {

TEST(Url, SchemesPortsAndTargets) {
  auto a = Url::parse("https://ca.example/dir");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->https);
  EXPECT_EQ(a->host, "ca.example");
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->target, "/dir");
  EXPECT_EQ(a->authority(), "ca.example");

  auto b = Url::parse("HTTP://127.0.0.1:8080?x=1#frag");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->https);
  EXPECT_EQ(b->port, 8080);
  EXPECT_EQ(b->target, "/?x=1");
  EXPECT_EQ(b->authority(), "127.0.0.1:8080");

  auto c = Url::parse("https://[::1]:14000/acme/new-order");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 14000);
  EXPECT_EQ(c->authority(), "[::1]:14000");

  auto d = Url::parse("http://h.example:80");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->target, "/");
  EXPECT_EQ(d->authority(), "h.example");
}

TEST(Url, Refusals) {
  for (const char* bad :
       {"ftp://x/", "https://", "https://:443/", "https://x:0/", "https://x:65536/",
        "https://x:1a/", "https://[::1/", "https://u@x/", "x.example/path"}) {
    EXPECT_FALSE(Url::parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace tlsedge::http
