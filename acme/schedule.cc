#include "acme/schedule.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tlsedge::acme {

uint64_t stableHash(std::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

time_t renewalTime(time_t notBefore, time_t notAfter, int64_t renewBeforeSeconds,
                   const std::string& site) {
  const int64_t lifetime = std::max<int64_t>(0, notAfter - notBefore);
  int64_t window = renewBeforeSeconds > 0 ? renewBeforeSeconds : lifetime / 3;
  // Never in the first third of the lifetime: a renew_before as long as
  // the certificates would otherwise re-order each one as it arrives.
  window = std::min(window, lifetime - lifetime / 3);
  const int64_t jitterSpan = window / 10;
  const int64_t jitter =
      jitterSpan > 0 ? static_cast<int64_t>(stableHash(site) % static_cast<uint64_t>(jitterSpan))
                     : 0;
  return static_cast<time_t>(std::max<int64_t>(notBefore, notAfter - window - jitter));
}

int64_t retryDelaySeconds(int failures, std::optional<int64_t> retryAfterSeconds,
                          bool rateLimited) {
  const int shift = std::clamp(failures - 1, 0, 6);
  int64_t delay = std::min(kMaxBackoffSeconds, kMinRetrySeconds << shift);
  if (rateLimited && !retryAfterSeconds) delay = std::max(delay, kRateLimitedSeconds);
  if (retryAfterSeconds)
    delay = std::max(delay, std::min(*retryAfterSeconds, kMaxRetryAfterSeconds));
  return std::max(delay, kMinRetrySeconds);
}

std::optional<int64_t> parseRetryAfter(std::string_view value, time_t now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 12) return kMaxRetryAfterSeconds * 365;
    return std::strtoll(std::string(value).c_str(), nullptr, 10);
  }
  struct tm tm {};
  const std::string text(value);
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return std::max<int64_t>(0, ::timegm(&tm) - now);
}

time_t pickInWindow(time_t start, time_t end, uint64_t random, time_t now) {
  if (end <= now) return now;
  if (end <= start) return std::max(start, now);
  const time_t picked = start + static_cast<time_t>(random % static_cast<uint64_t>(end - start));
  return std::max(picked, now);
}

}  // namespace tlsedge::acme
