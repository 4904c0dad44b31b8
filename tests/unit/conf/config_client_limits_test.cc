// limits.per_client: values read back, off by default, bad values reported
// where they are.
#include <gtest/gtest.h>

#include "conf/config.h"
#include "problems.h"

namespace tlsedge::conf {
namespace {
using testing::expectProblem;
using testing::kSite;
using testing::kTls;

Result<ConfigPtr> load(const std::string& yaml) {
  return loadString(std::string(kTls) + kSite + yaml, "t.yaml", "/base");
}

TEST(ConfigClientLimits, ReadBack) {
  auto c = load(R"(limits:
  per_client:
    max_connections: 64
    max_handshakes: 8
    connections_per_second: 20
    connection_burst: 40
    requests_per_second: 100
    request_burst: 300
    ipv6_prefix: 56
    exempt: [10.0.0.0/8, "2001:db8::/32"]
    table_size: 1000
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const ClientLimits& l = (*c)->limits.perClient;
  EXPECT_TRUE(l.enabled());
  EXPECT_EQ(l.maxConnections, 64u);
  EXPECT_EQ(l.maxHandshakes, 8u);
  EXPECT_EQ(l.connectionsPerSecond, 20u);
  EXPECT_EQ(l.connectionBurst, 40u);
  EXPECT_EQ(l.requestsPerSecond, 100u);
  EXPECT_EQ(l.requestBurst, 300u);
  EXPECT_EQ(l.ipv6Prefix, 56);
  ASSERT_EQ(l.exempt.size(), 2u);
  EXPECT_EQ(l.exempt[1].text, "2001:db8::/32");
  EXPECT_EQ(l.tableSize, 1000u);
}

TEST(ConfigClientLimits, OffByDefault) {
  auto c = load("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const ClientLimits& l = (*c)->limits.perClient;
  EXPECT_FALSE(l.enabled());
  EXPECT_EQ(l.ipv6Prefix, 64);
  EXPECT_EQ(l.tableSize, 16384u);
  // The allowlist alone limits nothing.
  auto exemptOnly = load("limits: { per_client: { exempt: [10.0.0.0/8] } }\n");
  ASSERT_TRUE(exemptOnly.ok()) << exemptOnly.error().message;
  EXPECT_FALSE((*exemptOnly)->limits.perClient.enabled());
}

TEST(ConfigClientLimits, BadValuesAreReportedWhereTheyAre) {
  const std::string base = std::string(kTls) + kSite;
  expectProblem(base + "limits: { per_client: { max_connections: -1 } }\n", "7:42",
                "limits.per_client.max_connections: must be 0..10000000, got -1");
  expectProblem(base + "limits: { per_client: { ipv6_prefix: 129 } }\n", "7:38",
                "limits.per_client.ipv6_prefix: must be 1..128, got 129");
  expectProblem(base + "limits: { per_client: { request_burst: 10 } }\n", "7:40",
                "limits.per_client.request_burst: needs requests_per_second");
  expectProblem(base + "limits: { per_client: { connection_burst: 10 } }\n", "7:43",
                "limits.per_client.connection_burst: needs connections_per_second");
  expectProblem(base + "limits: { per_client: { exempt: [10.0.0.1/8] } }\n", "7:34",
                "limits.per_client.exempt[0]: `10.0.0.1/8` has bits set past its /8 prefix");
  expectProblem(base + "limits: { per_client: { rps: 5 } }\n", "7:25",
                "limits.per_client.rps: unknown key `rps`");
}

}  // namespace
}  // namespace tlsedge::conf
