#include "base/time.h"

#include <gtest/gtest.h>

namespace tlsedge::utc {
namespace {

constexpr time_t kStart = 1767225600;  // 2026-01-01T00:00:00Z

TEST(UtcParse, ZuluFractionsAndOffsets) {
  EXPECT_EQ(parse("2026-01-01T00:00:00Z"), kStart);
  EXPECT_EQ(parse("2026-01-01t00:00:00z"), kStart);
  EXPECT_EQ(parse("2026-01-01T00:00:00.123456Z"), kStart);
  EXPECT_EQ(parse("2026-01-01T02:00:00+02:00"), kStart);
  EXPECT_EQ(parse("2025-12-31T23:30:00-00:30"), kStart);
}

TEST(UtcParse, RefusesWhatIsNotRfc3339) {
  EXPECT_FALSE(parse(""));
  EXPECT_FALSE(parse("2026-01-01"));
  EXPECT_FALSE(parse("2026-01-01T00:00:00"));
  EXPECT_FALSE(parse("2026-01-01T00:00:00Zjunk"));
  EXPECT_FALSE(parse("2026-01-01T00:00:00.Z"));
  EXPECT_FALSE(parse("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(parse("2026-01-01T24:00:00Z"));
  EXPECT_FALSE(parse("2026-01-01T00:00:00+2:00"));
  EXPECT_FALSE(parse("26-01-01T00:00:00Z"));
}

TEST(UtcFormat, SecondsAndMilliseconds) {
  EXPECT_EQ(format(kStart), "2026-01-01T00:00:00Z");
  EXPECT_EQ(formatMs(int64_t{kStart} * 1000 + 7), "2026-01-01T00:00:00.007Z");
  std::string out = "at ";
  appendMs(out, int64_t{kStart} * 1000 + 999);
  EXPECT_EQ(out, "at 2026-01-01T00:00:00.999Z");
  EXPECT_EQ(parse(format(kStart + 86399)), kStart + 86399);
}

}  // namespace
}  // namespace tlsedge::utc
