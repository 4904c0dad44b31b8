// When to renew and when to retry: the manager's arithmetic, kept pure so
// that unit tests can pin it (tests/unit/acme/schedule_test.cc).
//
// Renewal: a certificate is due when `renewBefore` (acme.renew_before) of
// its lifetime remains (but not in the first third of the lifetime), else
// when a third of it remains; minus a jitter of up to a tenth of that
// window, derived from the site's name (stable across restarts, spread
// across a fleet's sites). ARI (RFC 9773) replaces this
// with a random time inside the CA's suggested window.
//
// Failures: 1 min doubling to 1 h, never under a minute; a CA's Retry-After
// beyond that wins (up to a day), and a `rateLimited` problem without one
// waits at least an hour.
//
// Thread: any (pure functions).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace tlsedge::acme {

constexpr int64_t kMinRetrySeconds = 60;
constexpr int64_t kMaxBackoffSeconds = 3600;
constexpr int64_t kMaxRetryAfterSeconds = 24 * 3600;
constexpr int64_t kRateLimitedSeconds = 3600;

// A stable 64-bit hash of `text` (FNV-1a), for per-site jitter.
uint64_t stableHash(std::string_view text);

// The wall time a certificate valid [notBefore, notAfter] is renewed at.
// `renewBeforeSeconds` 0: a third of the lifetime.
time_t renewalTime(time_t notBefore, time_t notAfter, int64_t renewBeforeSeconds,
                   const std::string& site);

// Seconds until the next attempt after `failures` consecutive failures (>= 1).
// `retryAfterSeconds`: the CA's Retry-After on the failing answer, if any.
int64_t retryDelaySeconds(int failures, std::optional<int64_t> retryAfterSeconds, bool rateLimited);

// A Retry-After value (delay-seconds or an HTTP-date) as seconds from `now`
// (>= 0); nullopt when unreadable.
std::optional<int64_t> parseRetryAfter(std::string_view value, time_t now);

// A time in the ARI window [start, end) for `random` uniform in [0, 2^64):
// start + random % (end - start); `now` if the window has passed.
time_t pickInWindow(time_t start, time_t end, uint64_t random, time_t now);

}  // namespace tlsedge::acme
