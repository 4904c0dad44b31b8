#include "proxy/redirect.h"

#include <gtest/gtest.h>

namespace tlsedge::proxy {
namespace {

TEST(RedirectTest, HostWithoutPort) {
  EXPECT_EQ(httpsRedirectLocation("example.com", "/", 443), "https://example.com/");
  EXPECT_EQ(httpsRedirectLocation("Example.COM", "/a", 443), "https://Example.COM/a");
}

TEST(RedirectTest, PortReplaced) {
  EXPECT_EQ(httpsRedirectLocation("example.com:80", "/x", 443), "https://example.com/x");
  EXPECT_EQ(httpsRedirectLocation("example.com:8080", "/x", 443), "https://example.com/x");
  EXPECT_EQ(httpsRedirectLocation("example.com:", "/x", 443), "https://example.com/x");
}

TEST(RedirectTest, NonDefaultPortAppended) {
  EXPECT_EQ(httpsRedirectLocation("example.com:8080", "/x", 8443), "https://example.com:8443/x");
  EXPECT_EQ(httpsRedirectLocation("example.com", "/", 4443), "https://example.com:4443/");
  EXPECT_EQ(httpsRedirectLocation("127.0.0.1:80", "/", 1), "https://127.0.0.1:1/");
}

TEST(RedirectTest, Ipv6StaysBracketed) {
  EXPECT_EQ(httpsRedirectLocation("[::1]:8080", "/p", 443), "https://[::1]/p");
  EXPECT_EQ(httpsRedirectLocation("[::1]:8080", "/p", 8443), "https://[::1]:8443/p");
  EXPECT_EQ(httpsRedirectLocation("[2001:db8::a]", "/", 443), "https://[2001:db8::a]/");
  EXPECT_EQ(httpsRedirectLocation("[::ffff:1.2.3.4]", "/", 443), "https://[::ffff:1.2.3.4]/");
}

TEST(RedirectTest, PathAndQueryKeptByteForByte) {
  EXPECT_EQ(httpsRedirectLocation("a.example", "/p/a%20b/%2F?q=1&r=%26x#", 443),
            "https://a.example/p/a%20b/%2F?q=1&r=%26x#");
  EXPECT_EQ(httpsRedirectLocation("a.example", "/%E2%82%AC?x=%zz&&=", 443),
            "https://a.example/%E2%82%AC?x=%zz&&=");
  EXPECT_EQ(httpsRedirectLocation("a.example", "//double//slash?", 443),
            "https://a.example//double//slash?");
  EXPECT_EQ(httpsRedirectLocation("a.example", "/caf\xc3\xa9", 443),
            "https://a.example/caf\xc3\xa9");
}

TEST(RedirectTest, AbsoluteFormReducedToPath) {
  EXPECT_EQ(httpsRedirectLocation("a.example", "http://a.example/p?q=1", 443),
            "https://a.example/p?q=1");
  EXPECT_EQ(httpsRedirectLocation("a.example", "http://a.example:80/p/q", 443),
            "https://a.example/p/q");
  EXPECT_EQ(httpsRedirectLocation("a.example", "http://a.example", 443), "https://a.example/");
  EXPECT_EQ(httpsRedirectLocation("a.example", "http://a.example?q", 443), "https://a.example/?q");
}

TEST(RedirectTest, OtherTargetFormsBecomeRoot) {
  EXPECT_EQ(httpsRedirectLocation("a.example", "*", 443), "https://a.example/");
  EXPECT_EQ(httpsRedirectLocation("a.example", "", 443), "https://a.example/");
}

TEST(RedirectTest, UnusableHostGivesEmpty) {
  for (const char* host : {"",
                           " ",
                           "a b.example",
                           "a.example/evil",
                           "evil.example/",
                           "user@a.example",
                           "a.example@evil",
                           "a.example\r\nSet-Cookie: x=1",
                           "a.example\n",
                           "a\rb",
                           "a.example:80x",
                           "a.example:8:0",
                           "a.example:123456",
                           "[::1",
                           "[]",
                           "[::1]x",
                           "[::1]:8o",
                           "[fe80::1%25eth0]",
                           "a\\b",
                           "a.example?",
                           "a.example#",
                           ":80",
                           "a%2eexample",
                           "\t"}) {
    EXPECT_EQ(httpsRedirectLocation(host, "/", 443), "") << "host: " << host;
  }
  EXPECT_EQ(httpsRedirectLocation(std::string_view("a\0b", 3), "/", 443), "");
  EXPECT_EQ(httpsRedirectLocation(std::string(300, 'a'), "/", 443), "");
}

TEST(RedirectTest, TargetWithControlCharactersRefused) {
  EXPECT_EQ(httpsRedirectLocation("a.example", "/a\r\nX: y", 443), "");
  EXPECT_EQ(httpsRedirectLocation("a.example", "/a b", 443), "");
}

TEST(HstsTest, Variants) {
  conf::Hsts h;
  h.maxAge = 31536000;
  EXPECT_EQ(hstsHeaderValue(h), "max-age=31536000");
  h.includeSubdomains = true;
  EXPECT_EQ(hstsHeaderValue(h), "max-age=31536000; includeSubDomains");
  h.preload = true;
  EXPECT_EQ(hstsHeaderValue(h), "max-age=31536000; includeSubDomains; preload");
  h.includeSubdomains = false;
  EXPECT_EQ(hstsHeaderValue(h), "max-age=31536000; preload");
  conf::Hsts zero;
  EXPECT_EQ(hstsHeaderValue(zero), "max-age=0");
  conf::Hsts big;
  big.maxAge = UINT64_MAX;
  EXPECT_EQ(hstsHeaderValue(big), "max-age=18446744073709551615");
}

}  // namespace
}  // namespace tlsedge::proxy
