// Logging to stderr, one line per event, with a syslog priority prefix
// ("<3>" error ... "<7>" debug) so journald keeps levels; or, with
// setFormat(Format::kJson) (`--log-format json`), one JSON object per line
// for other collectors:
//   {"time":"2026-11-23T07:20:30.123Z","level":"info","message":"ready"}
// (time in UTC with milliseconds; level one of error, warning, notice, info,
// debug; the message escaped by appendJsonString, so any bytes in it give a
// valid line).
//
// Thread-safe: each line is written with a single write(2). Never pass private
// key material or ACME tokens to these functions.
#pragma once

#include <string>
#include <string_view>

namespace tlsedge::log {

enum class Level { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

enum class Format { kSyslog, kJson };

void setMinLevel(Level level);
// Set once at start, before other threads log.
void setFormat(Format format);
// "error" ... "debug"; false (and `level` unchanged) for anything else.
bool parseLevel(std::string_view text, Level* level);
// The line write() produces for `message` (without the trailing newline);
// `unixMs` is the time for the JSON format.
std::string formatLine(Format format, Level level, std::string_view message, long long unixMs);
bool enabled(Level level);
void write(Level level, std::string_view message);

inline void error(std::string_view m) { write(Level::kError, m); }
inline void warning(std::string_view m) { write(Level::kWarning, m); }
inline void notice(std::string_view m) { write(Level::kNotice, m); }
inline void info(std::string_view m) { write(Level::kInfo, m); }
inline void debug(std::string_view m) {
  if (enabled(Level::kDebug)) write(Level::kDebug, m);
}

}  // namespace tlsedge::log
