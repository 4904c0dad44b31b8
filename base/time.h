// UTC time as text: the one place the tree formats and parses RFC 3339
// (ACME, the store's meta.json, certificate dates, logs, the access log).
//
// Thread: any (gmtime_r / timegm; no locale).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace tlsedge::utc {

// "2026-11-23T07:20:30Z".
std::string format(time_t t);

// "2026-11-23T07:20:30.123Z" from milliseconds since the epoch.
std::string formatMs(int64_t unixMs);
void appendMs(std::string& out, int64_t unixMs);

// RFC 3339 date-time: "T" or "t", optional fraction (dropped), "Z"/"z" or
// "+hh:mm"/"-hh:mm". nullopt for anything else.
std::optional<time_t> parse(std::string_view text);

}  // namespace tlsedge::utc
