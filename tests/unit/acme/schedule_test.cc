// The renewal schedule and retry policy (acme/schedule.h): a third of the
// lifetime, acme.renew_before, jitter bounds and stability, backoff with
// its one-minute floor, Retry-After (seconds and HTTP-date), rateLimited,
// RFC 3339 times and ARI window picks.
#include "acme/schedule.h"

#include <gtest/gtest.h>

#include <set>

namespace tlsedge::acme {
namespace {

constexpr time_t kDay = 86400;
constexpr time_t kStart = 1767225600;  // 2026-01-01T00:00:00Z

TEST(RenewalTime, AThirdOfTheLifetimeMinusAtMostATenthOfThatWindow) {
  const time_t notAfter = kStart + 90 * kDay;
  for (const char* site : {"a", "shop", "www", "api", "static-assets"}) {
    const time_t t = renewalTime(kStart, notAfter, 0, site);
    EXPECT_LE(t, notAfter - 30 * kDay) << site;
    EXPECT_GT(t, notAfter - 30 * kDay - 3 * kDay) << site;
  }
}

TEST(RenewalTime, RenewBeforeReplacesTheThird) {
  const time_t notAfter = kStart + 90 * kDay;
  const time_t t = renewalTime(kStart, notAfter, 10 * kDay, "shop");
  EXPECT_LE(t, notAfter - 10 * kDay);
  EXPECT_GT(t, notAfter - 11 * kDay);
  // As long as the lifetime: not before a third of it has passed (else
  // each new certificate would be due at once).
  const time_t early = renewalTime(kStart, kStart + kDay, 30 * kDay, "shop");
  EXPECT_LE(early, kStart + kDay / 3);
  EXPECT_GT(early, kStart + kDay / 3 - kDay / 15);
}

TEST(RenewalTime, JitterIsStablePerSiteAndSpreadsSites) {
  const time_t notAfter = kStart + 90 * kDay;
  EXPECT_EQ(renewalTime(kStart, notAfter, 0, "shop"), renewalTime(kStart, notAfter, 0, "shop"));
  std::set<time_t> times;
  for (int i = 0; i < 100; ++i) {
    times.insert(renewalTime(kStart, notAfter, 0, "site-" + std::to_string(i)));
  }
  EXPECT_GT(times.size(), 90u);  // a fleet does not renew in the same second
  EXPECT_GT(*times.rbegin() - *times.begin(), 2 * kDay);
}

TEST(RenewalTime, ShortLifetimes) {
  // 30 s certificates (tests): 10 s before the end; a window under 10 s has
  // no jitter.
  EXPECT_EQ(renewalTime(kStart, kStart + 30, 0, "shop"), kStart + 20);
  EXPECT_EQ(renewalTime(kStart, kStart, 0, "shop"), kStart);
}

TEST(RetryDelay, DoublesFromAMinuteToAnHour) {
  EXPECT_EQ(retryDelaySeconds(1, std::nullopt, false), 60);
  EXPECT_EQ(retryDelaySeconds(2, std::nullopt, false), 120);
  EXPECT_EQ(retryDelaySeconds(3, std::nullopt, false), 240);
  EXPECT_EQ(retryDelaySeconds(6, std::nullopt, false), 1920);
  EXPECT_EQ(retryDelaySeconds(7, std::nullopt, false), 3600);
  EXPECT_EQ(retryDelaySeconds(50, std::nullopt, false), 3600);
  EXPECT_EQ(retryDelaySeconds(0, std::nullopt, false), 60);
}

TEST(RetryDelay, RetryAfterWinsWhenLongerButNeverUnderAMinute) {
  EXPECT_EQ(retryDelaySeconds(1, 5, false), 60);
  EXPECT_EQ(retryDelaySeconds(1, 0, true), 60);
  EXPECT_EQ(retryDelaySeconds(1, 600, false), 600);
  EXPECT_EQ(retryDelaySeconds(7, 600, false), 3600);
  EXPECT_EQ(retryDelaySeconds(1, 10 * kDay, false), kMaxRetryAfterSeconds);
}

TEST(RetryDelay, RateLimitedWithoutRetryAfterWaitsAnHour) {
  EXPECT_EQ(retryDelaySeconds(1, std::nullopt, true), 3600);
  EXPECT_EQ(retryDelaySeconds(1, 120, true), 120);  // the CA said when
}

TEST(RetryAfter, SecondsAndHttpDates) {
  EXPECT_EQ(parseRetryAfter("120", kStart), 120);
  EXPECT_EQ(parseRetryAfter(" 0 ", kStart), 0);
  EXPECT_EQ(parseRetryAfter("Thu, 01 Jan 2026 00:10:00 GMT", kStart), 600);
  EXPECT_EQ(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", kStart), 0);  // past
  EXPECT_FALSE(parseRetryAfter("soon", kStart));
  EXPECT_FALSE(parseRetryAfter("", kStart));
  EXPECT_FALSE(parseRetryAfter("-5", kStart));
}

TEST(PickInWindow, InsideTheWindowOrNowOnceItPassed) {
  for (uint64_t r : {0ull, 1ull, 12345ull, ~0ull}) {
    const time_t t = pickInWindow(kStart, kStart + kDay, r, kStart - kDay);
    EXPECT_GE(t, kStart);
    EXPECT_LT(t, kStart + kDay);
  }
  EXPECT_EQ(pickInWindow(kStart, kStart + kDay, 0, kStart + 2 * kDay), kStart + 2 * kDay);
  // Partly past: never before now.
  EXPECT_GE(pickInWindow(kStart, kStart + kDay, 0, kStart + 100), kStart + 100);
}

}  // namespace
}  // namespace tlsedge::acme
