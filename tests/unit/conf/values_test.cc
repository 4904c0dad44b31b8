// The scalar parsers on their own: edge cases not worth a YAML document each.
#include "conf/values.h"

#include <gtest/gtest.h>

namespace tlsedge::conf {
namespace {

TEST(Values, SocketAddresses) {
  auto v4 = parseSocketAddress("10.1.2.3:65535", 0);
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "10.1.2.3");
  EXPECT_EQ(v4->port, 65535);
  EXPECT_FALSE(v4->ipv6);
  auto v6 = parseSocketAddress("[2001:db8::1]:0", 0);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_TRUE(v6->ipv6);
  EXPECT_EQ(canonicalAddress(*v6), "[2001:db8::1]:0");
  EXPECT_EQ(canonicalAddress(*parseSocketAddress("[2001:DB8:0::1]:443", 0)), "[2001:db8::1]:443");

  EXPECT_FALSE(parseSocketAddress("10.1.2:80", 0).ok());
  EXPECT_FALSE(parseSocketAddress("10.1.2.3:65536", 0).ok());
  EXPECT_FALSE(parseSocketAddress("10.1.2.3:-1", 0).ok());
  EXPECT_FALSE(parseSocketAddress("10.1.2.3:", 0).ok());
  EXPECT_FALSE(parseSocketAddress("[::1]443", 0).ok());
  EXPECT_FALSE(parseSocketAddress("[::1:443", 0).ok());
  EXPECT_FALSE(parseSocketAddress("", 0).ok());
  EXPECT_FALSE(parseSocketAddress("10.1.2.3:0", 1).ok());
  EXPECT_EQ(parseSocketAddress("10.1.2.3:99999999999999999999", 0).error().message,
            "port 99999999999999999999 is out of range (0..65535)");
}

TEST(Values, HostNames) {
  EXPECT_EQ(*normalizeHostName("WWW.Example.COM."), "www.example.com");
  EXPECT_EQ(*normalizeHostName("*.Example.com"), "*.example.com");
  EXPECT_EQ(*normalizeHostName("xn--bcher-kva.example"), "xn--bcher-kva.example");
  EXPECT_FALSE(normalizeHostName("").ok());
  EXPECT_FALSE(normalizeHostName(".").ok());
  EXPECT_FALSE(normalizeHostName("*").ok());
  EXPECT_FALSE(normalizeHostName(".example.com").ok());
  EXPECT_FALSE(normalizeHostName("a-.example").ok());
  EXPECT_FALSE(normalizeHostName("a b.example").ok());
  EXPECT_FALSE(normalizeHostName("example.com..").ok());
}

TEST(Values, Durations) {
  EXPECT_EQ(*parseDuration("0"), Duration(0));
  EXPECT_EQ(*parseDuration("30"), Duration(30000));
  EXPECT_EQ(*parseDuration("250ms"), Duration(250));
  EXPECT_EQ(*parseDuration("30s"), Duration(30000));
  EXPECT_EQ(*parseDuration("5m"), Duration(300000));
  EXPECT_EQ(*parseDuration("1h"), Duration(3600000));
  EXPECT_FALSE(parseDuration("").ok());
  EXPECT_FALSE(parseDuration("-1s").ok());
  EXPECT_FALSE(parseDuration("s").ok());
  EXPECT_FALSE(parseDuration("1 s").ok());
  EXPECT_EQ(*parseDuration("30d"), Duration(30LL * 86400000));
  EXPECT_FALSE(parseDuration("1w").ok());
  EXPECT_FALSE(parseDuration("99999999999h").ok());
}

TEST(Values, Sizes) {
  EXPECT_EQ(*parseSize("0"), 0u);
  EXPECT_EQ(*parseSize("4096"), 4096u);
  EXPECT_EQ(*parseSize("16k"), 16384u);
  EXPECT_EQ(*parseSize("16KiB"), 16384u);
  EXPECT_EQ(*parseSize("2m"), 2u << 20);
  EXPECT_EQ(*parseSize("1G"), 1u << 30);
  EXPECT_FALSE(parseSize("").ok());
  EXPECT_FALSE(parseSize("k").ok());
  EXPECT_FALSE(parseSize("-1").ok());
  EXPECT_FALSE(parseSize("1 k").ok());
  EXPECT_FALSE(parseSize("1kb").ok());
  EXPECT_NE(parseSize("1t").error().message.find("16k"), std::string::npos);
  EXPECT_FALSE(parseSize("99999999999999999999").ok());
}

TEST(Values, Names) {
  EXPECT_TRUE(checkName("shop-2026_v1.0").ok());
  EXPECT_TRUE(checkName(std::string(64, 'x')).ok());
  EXPECT_FALSE(checkName(std::string(65, 'x')).ok());
  EXPECT_FALSE(checkName("").ok());
  EXPECT_FALSE(checkName("a/b").ok());
}

TEST(Values, Paths) {
  EXPECT_EQ(resolvePath("/etc/tlsedge", "certs/a.pem"), "/etc/tlsedge/certs/a.pem");
  EXPECT_EQ(resolvePath("/etc/tlsedge", "../a.pem"), "/etc/a.pem");
  EXPECT_EQ(resolvePath("/etc/tlsedge", "/var/a.pem"), "/var/a.pem");
}

}  // namespace
}  // namespace tlsedge::conf
