#include "base/time.h"

#include <cstdio>

namespace tlsedge::utc {
namespace {

// Writes "YYYY-MM-DDTHH:MM:SS" into buf (at least 20 bytes); returns its length.
size_t writeSeconds(char* buf, size_t size, time_t t) {
  tm utc{};
  gmtime_r(&t, &utc);
  const int n = std::snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d", utc.tm_year + 1900,
                              utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
  return n < 0 ? 0 : static_cast<size_t>(n);
}

// Reads exactly `digits` decimal digits at text[*at].
bool readNumber(std::string_view text, size_t* at, size_t digits, int* out) {
  if (*at + digits > text.size()) return false;
  int value = 0;
  for (size_t i = 0; i < digits; ++i) {
    const char c = text[*at + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *at += digits;
  *out = value;
  return true;
}

bool expect(std::string_view text, size_t* at, char a, char b = 0) {
  if (*at >= text.size() || (text[*at] != a && (b == 0 || text[*at] != b))) return false;
  ++*at;
  return true;
}

}  // namespace

std::string format(time_t t) {
  char buf[48];
  const size_t n = writeSeconds(buf, sizeof buf, t);
  return std::string(buf, n) + 'Z';
}

void appendMs(std::string& out, int64_t unixMs) {
  char buf[48];
  const size_t n = writeSeconds(buf, sizeof buf, static_cast<time_t>(unixMs / 1000));
  out.append(buf, n);
  std::snprintf(buf, sizeof buf, ".%03dZ", static_cast<int>(unixMs % 1000));
  out += buf;
}

std::string formatMs(int64_t unixMs) {
  std::string out;
  appendMs(out, unixMs);
  return out;
}

std::optional<time_t> parse(std::string_view text) {
  tm fields{};
  size_t at = 0;
  if (!readNumber(text, &at, 4, &fields.tm_year) || !expect(text, &at, '-') ||
      !readNumber(text, &at, 2, &fields.tm_mon) || !expect(text, &at, '-') ||
      !readNumber(text, &at, 2, &fields.tm_mday) || !expect(text, &at, 'T', 't') ||
      !readNumber(text, &at, 2, &fields.tm_hour) || !expect(text, &at, ':') ||
      !readNumber(text, &at, 2, &fields.tm_min) || !expect(text, &at, ':') ||
      !readNumber(text, &at, 2, &fields.tm_sec)) {
    return std::nullopt;
  }
  if (fields.tm_mon < 1 || fields.tm_mon > 12 || fields.tm_mday < 1 || fields.tm_mday > 31 ||
      fields.tm_hour > 23 || fields.tm_min > 59 || fields.tm_sec > 60) {
    return std::nullopt;
  }
  if (at < text.size() && text[at] == '.') {
    ++at;
    const size_t digits = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    if (at == digits) return std::nullopt;
  }
  fields.tm_year -= 1900;
  fields.tm_mon -= 1;
  const time_t t = timegm(&fields);
  if (at + 1 == text.size() && (text[at] == 'Z' || text[at] == 'z')) return t;
  if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const bool ahead = text[at] == '+';
    ++at;
    int hours = 0;
    int minutes = 0;
    if (readNumber(text, &at, 2, &hours) && expect(text, &at, ':') &&
        readNumber(text, &at, 2, &minutes) && at == text.size() && hours < 24 && minutes < 60) {
      const time_t offset = (hours * 60 + minutes) * 60;
      return ahead ? t - offset : t + offset;
    }
  }
  return std::nullopt;
}

}  // namespace tlsedge::utc
