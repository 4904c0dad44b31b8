// ClientTable: admission by concurrent connections, handshakes and
// connection rate, request rate with Retry-After, IPv6 prefixes, exempt
// networks, and the table's bound (idle clients forgotten, never ones with
// connections open).
#include "proxy/client_limits.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <vector>

#include "conf/values.h"

namespace tlsedge::proxy {
namespace {

sockaddr_storage ip(const char* text) {
  sockaddr_storage s{};
  if (inet_pton(AF_INET, text, &reinterpret_cast<sockaddr_in*>(&s)->sin_addr) == 1) {
    s.ss_family = AF_INET;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, text, &reinterpret_cast<sockaddr_in6*>(&s)->sin6_addr), 1);
    s.ss_family = AF_INET6;
  }
  return s;
}

struct Fixture : ::testing::Test {
  ClientTable table;
  conf::ClientLimits limits;
  ClientTable::Admission admit(const char* address, uint64_t nowMs = 0, bool handshake = false) {
    const sockaddr_storage s = ip(address);
    return table.admit(limits, reinterpret_cast<const sockaddr*>(&s), handshake, nowMs);
  }
};

TEST_F(Fixture, ConcurrentConnectionsPerAddress) {
  limits.maxConnections = 2;
  auto a = admit("192.0.2.1");
  auto b = admit("192.0.2.1");
  ASSERT_FALSE(a.refused);
  ASSERT_FALSE(b.refused);
  EXPECT_EQ(a.entry, b.entry);
  auto c = admit("192.0.2.1");
  EXPECT_TRUE(c.refused);
  EXPECT_EQ(c.limit, ClientTable::kConnections);
  EXPECT_FALSE(admit("192.0.2.2").refused);  // another client is not held back
  table.closed(limits, a.entry, 0);
  EXPECT_FALSE(admit("192.0.2.1").refused);  // room again
}

TEST_F(Fixture, HandshakesInProgressPerAddress) {
  limits.maxHandshakes = 1;
  auto a = admit("192.0.2.1", 0, true);
  ASSERT_FALSE(a.refused);
  auto b = admit("192.0.2.1", 0, true);
  EXPECT_TRUE(b.refused);
  EXPECT_EQ(b.limit, ClientTable::kHandshakes);
  EXPECT_FALSE(admit("192.0.2.1", 0, false).refused);  // plain HTTP has no handshake
  ClientTable::handshakeDone(a.entry);
  EXPECT_FALSE(admit("192.0.2.1", 0, true).refused);
}

TEST_F(Fixture, ConnectionRateRefillsOverTime) {
  limits.connectionsPerSecond = 10;
  limits.connectionBurst = 3;
  std::vector<ClientTable::Entry*> open;
  for (int i = 0; i < 3; ++i) {
    auto a = admit("192.0.2.1", 1000);
    ASSERT_FALSE(a.refused) << i;
  }
  auto over = admit("192.0.2.1", 1000);
  EXPECT_TRUE(over.refused);
  EXPECT_EQ(over.limit, ClientTable::kConnectionRate);
  EXPECT_TRUE(admit("192.0.2.1", 1050).refused);   // half a token
  EXPECT_FALSE(admit("192.0.2.1", 1100).refused);  // one token at 10/s
  EXPECT_TRUE(admit("192.0.2.1", 1100).refused);
}

TEST_F(Fixture, RequestRateAnswersRetryAfter) {
  limits.requestsPerSecond = 2;
  auto a = admit("192.0.2.1");
  ASSERT_NE(a.entry, nullptr);
  EXPECT_EQ(ClientTable::takeRequest(limits, a.entry, 0), 0u);
  EXPECT_EQ(ClientTable::takeRequest(limits, a.entry, 0), 0u);
  EXPECT_EQ(ClientTable::takeRequest(limits, a.entry, 0), 1u);  // a token in 0.5 s: "1"
  EXPECT_EQ(ClientTable::takeRequest(limits, a.entry, 500), 0u);
  limits.requestsPerSecond = 1;
  limits.requestBurst = 1;
  EXPECT_EQ(ClientTable::takeRequest(limits, a.entry, 500), 1u);
  // Slower rates round the wait up to whole seconds.
  conf::ClientLimits slow = limits;
  slow.requestsPerSecond = 1;
  slow.requestBurst = 1;
  ClientTable other;
  const sockaddr_storage s = ip("192.0.2.9");
  auto b = other.admit(slow, reinterpret_cast<const sockaddr*>(&s), false, 0);
  EXPECT_EQ(ClientTable::takeRequest(slow, b.entry, 0), 0u);
  EXPECT_EQ(ClientTable::takeRequest(slow, b.entry, 1), 1u);
  EXPECT_EQ(ClientTable::takeRequest(slow, b.entry, 999), 1u);
  EXPECT_EQ(ClientTable::takeRequest(slow, b.entry, 1000), 0u);
}

TEST_F(Fixture, Ipv6ClientsAreTheirPrefix) {
  limits.maxConnections = 1;
  limits.ipv6Prefix = 64;
  ASSERT_FALSE(admit("2001:db8:1:2::1").refused);
  EXPECT_TRUE(admit("2001:db8:1:2:ffff::9").refused);  // same /64
  EXPECT_FALSE(admit("2001:db8:1:3::1").refused);      // the next /64
  // An IPv4 client on a dual-stack socket is that IPv4 address, whole.
  ASSERT_FALSE(admit("192.0.2.1").refused);
  EXPECT_TRUE(admit("::ffff:192.0.2.1").refused);
  EXPECT_FALSE(admit("::ffff:192.0.2.2").refused);
  bool ipv4 = false;
  const sockaddr_storage s = ip("2001:db8:ab:cdef:1:2:3:4");
  const auto k = ClientTable::keyOf(reinterpret_cast<const sockaddr*>(&s), 52, &ipv4);
  const sockaddr_storage n = ip("2001:db8:ab:c000::");
  const auto kn = ClientTable::keyOf(reinterpret_cast<const sockaddr*>(&n), 128, &ipv4);
  EXPECT_EQ(k, kn);  // a prefix that is not a whole byte
}

TEST_F(Fixture, ExemptNetworksAreNeverLimited) {
  limits.maxConnections = 1;
  limits.exempt.push_back(*conf::parseIpNetwork("10.0.0.0/8"));
  for (int i = 0; i < 5; ++i) {
    auto a = admit("10.1.2.3");
    EXPECT_FALSE(a.refused);
    EXPECT_EQ(a.entry, nullptr);
  }
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(Fixture, OffLimitsTrackNothing) {
  auto a = admit("192.0.2.1");
  EXPECT_FALSE(a.refused);
  EXPECT_EQ(a.entry, nullptr);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(Fixture, IdleClientsAreForgottenButOpenOnesKept) {
  limits.maxConnections = 1;
  limits.connectionsPerSecond = 1;  // idle entries are worth keeping a second
  limits.tableSize = 4;
  auto held = admit("192.0.2.1");
  ASSERT_NE(held.entry, nullptr);
  char text[32];
  for (int i = 0; i < 1000; ++i) {
    snprintf(text, sizeof text, "198.51.%d.%d", i / 250, i % 250);
    auto a = admit(text, 10);
    ASSERT_FALSE(a.refused);
    table.closed(limits, a.entry, 10);
    EXPECT_LE(table.size(), 1 + limits.tableSize);
  }
  EXPECT_EQ(table.evictions(), 996u);
  // The open connection's client was never forgotten: still at its limit.
  EXPECT_TRUE(admit("192.0.2.1", 10).refused);
  // Once its buckets are full again (1 s at 1/s), an idle entry is the same
  // as a new one: it goes without counting as an eviction.
  table.closed(limits, held.entry, 10);
  const uint64_t evicted = table.evictions();
  for (uint64_t at = 2000; at <= 5000; at += 1000) {
    auto a = admit("192.0.2.77", at);
    ASSERT_FALSE(a.refused);
    table.closed(limits, a.entry, at);
  }
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.evictions(), evicted);
}

}  // namespace
}  // namespace tlsedge::proxy
