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

std::optional<time_t> parseRfc3339(std::string_view text) {
  const std::string s(text);
  struct tm tm {};
  const char* p = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (p == nullptr) p = ::strptime(s.c_str(), "%Y-%m-%dt%H:%M:%S", &tm);
  if (p == nullptr) return std::nullopt;
  if (*p == '.') {
    ++p;
    if (*p < '0' || *p > '9') return std::nullopt;
    while (*p >= '0' && *p <= '9') ++p;
  }
  time_t t = ::timegm(&tm);
  if ((*p == 'Z' || *p == 'z') && p[1] == '\0') return t;
  int hh = 0, mm = 0, n = 0;
  if ((*p == '+' || *p == '-') && std::sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) == 2 &&
      p[1 + n] == '\0') {
    const int offset = (hh * 60 + mm) * 60;
    return *p == '+' ? t - offset : t + offset;
  }
  return std::nullopt;
}

std::string rfc3339(time_t t) {
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

time_t pickInWindow(time_t start, time_t end, uint64_t random, time_t now) {
  if (end <= now) return now;
  if (end <= start) return std::max(start, now);
  const time_t picked = start + static_cast<time_t>(random % static_cast<uint64_t>(end - start));
  return std::max(picked, now);
}

}  // namespace tlsedge::acme
