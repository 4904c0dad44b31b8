#include "proxy/upstream/balancer.h"

#include <gtest/gtest.h>

#include <vector>

namespace tlsedge::proxy {
namespace {

using conf::Balance;

std::vector<size_t> picks(std::vector<ServerSlot>& slots, Balance balance, size_t* cursor,
                          uint64_t now, int n) {
  std::vector<size_t> out;
  for (int i = 0; i < n; ++i) out.push_back(pickServer(slots, balance, cursor, now, {}));
  return out;
}

TEST(BalancerTest, RoundRobinCyclesThroughServers) {
  std::vector<ServerSlot> slots(3);
  size_t cursor = 0;
  EXPECT_EQ(picks(slots, Balance::kRoundRobin, &cursor, 0, 7),
            (std::vector<size_t>{0, 1, 2, 0, 1, 2, 0}));
}

TEST(BalancerTest, RoundRobinSkipsServersOutOfRotation) {
  std::vector<ServerSlot> slots(3);
  slots[1].health.ejectedUntil = 100;
  size_t cursor = 0;
  EXPECT_EQ(picks(slots, Balance::kRoundRobin, &cursor, 50, 4), (std::vector<size_t>{0, 2, 0, 2}));
  // Back once the ejection ran out.
  EXPECT_EQ(picks(slots, Balance::kRoundRobin, &cursor, 100, 3), (std::vector<size_t>{0, 1, 2}));
}

TEST(BalancerTest, EveryServerOutOfRotationStillPicksThemAll) {
  std::vector<ServerSlot> slots(2);
  slots[0].health.ejectedUntil = 1000;
  slots[1].health.ejectedUntil = 1000;
  size_t cursor = 0;
  TriedServers tried;
  size_t first = pickServer(slots, Balance::kRoundRobin, &cursor, 10, tried);
  ASSERT_NE(first, kNoServer);
  tried.add(first);
  size_t second = pickServer(slots, Balance::kRoundRobin, &cursor, 10, tried);
  ASSERT_NE(second, kNoServer);
  EXPECT_NE(first, second);
  tried.add(second);
  EXPECT_EQ(pickServer(slots, Balance::kRoundRobin, &cursor, 10, tried), kNoServer);
}

TEST(BalancerTest, UntriedHealthyServerBeatsEjectedOne) {
  std::vector<ServerSlot> slots(3);
  slots[0].health.ejectedUntil = 1000;
  size_t cursor = 0;
  TriedServers tried;
  tried.add(1);
  EXPECT_EQ(pickServer(slots, Balance::kRoundRobin, &cursor, 10, tried), 2u);
  tried.add(2);
  // Only the ejected one is left: tried anyway.
  EXPECT_EQ(pickServer(slots, Balance::kRoundRobin, &cursor, 10, tried), 0u);
}

TEST(BalancerTest, LeastConnectionsPicksFewestActive) {
  std::vector<ServerSlot> slots(3);
  slots[0].active = 2;
  slots[1].active = 1;
  slots[2].active = 3;
  size_t cursor = 0;
  EXPECT_EQ(pickServer(slots, Balance::kLeastConnections, &cursor, 0, {}), 1u);
  slots[1].active = 5;
  EXPECT_EQ(pickServer(slots, Balance::kLeastConnections, &cursor, 0, {}), 0u);
}

TEST(BalancerTest, LeastConnectionsBreaksTiesRoundRobin) {
  std::vector<ServerSlot> slots(3);
  size_t cursor = 0;
  EXPECT_EQ(picks(slots, Balance::kLeastConnections, &cursor, 0, 4),
            (std::vector<size_t>{0, 1, 2, 0}));
  slots[1].active = 1;  // 0 and 2 tie
  EXPECT_EQ(picks(slots, Balance::kLeastConnections, &cursor, 0, 3),
            (std::vector<size_t>{2, 0, 2}));
}

TEST(BalancerTest, LeastConnectionsSkipsEjectedAndTried) {
  std::vector<ServerSlot> slots(3);
  slots[0].health.ejectedUntil = 100;
  slots[2].active = 4;
  size_t cursor = 0;
  TriedServers tried;
  tried.add(1);
  EXPECT_EQ(pickServer(slots, Balance::kLeastConnections, &cursor, 0, tried), 2u);
}

TEST(ServerHealthTest, MaxFailsWithinFailTimeoutEjects) {
  ServerHealth h;
  EXPECT_FALSE(h.recordFailure(0, 3, 1000));
  EXPECT_FALSE(h.recordFailure(100, 3, 1000));
  EXPECT_TRUE(h.inRotation(200));
  EXPECT_TRUE(h.recordFailure(900, 3, 1000));
  EXPECT_FALSE(h.inRotation(900));
  EXPECT_FALSE(h.inRotation(1899));
  EXPECT_FALSE(h.noticeReturn(1899));
  EXPECT_TRUE(h.inRotation(1900));
  EXPECT_TRUE(h.noticeReturn(1900));
  EXPECT_FALSE(h.noticeReturn(1901));  // once
}

TEST(ServerHealthTest, FailuresOutsideTheWindowStartAfresh) {
  ServerHealth h;
  EXPECT_FALSE(h.recordFailure(0, 2, 1000));
  EXPECT_FALSE(h.recordFailure(1000, 2, 1000));  // the first one's window is over
  EXPECT_TRUE(h.recordFailure(1500, 2, 1000));
}

TEST(ServerHealthTest, MaxFailsOneEjectsAtOnceAndZeroNever) {
  ServerHealth once;
  EXPECT_TRUE(once.recordFailure(5, 1, 10));
  EXPECT_FALSE(once.inRotation(14));
  ServerHealth never;
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(never.recordFailure(i, 0, 10));
  EXPECT_TRUE(never.inRotation(100));
}

TEST(ServerHealthTest, FailureWhileOutExtendsQuietly) {
  ServerHealth h;
  EXPECT_TRUE(h.recordFailure(0, 1, 100));
  EXPECT_FALSE(h.recordFailure(50, 1, 100));
  EXPECT_FALSE(h.inRotation(120));
  EXPECT_TRUE(h.inRotation(150));
}

TEST(TriedServersTest, BeyondSixtyFour) {
  TriedServers t;
  t.add(3);
  t.add(70);
  t.add(70);
  EXPECT_TRUE(t.has(3));
  EXPECT_TRUE(t.has(70));
  EXPECT_FALSE(t.has(69));
  EXPECT_FALSE(t.has(200));
  EXPECT_EQ(t.count(), 2u);
}

}  // namespace
}  // namespace tlsedge::proxy
