// Logging to stderr, one line per event, with a syslog priority prefix
// ("<3>" error ... "<7>" debug) so journald keeps levels.
//
// Thread-safe: each line is written with a single write(2). Never pass private
// key material or ACME tokens to these functions.
#pragma once

#include <string_view>

namespace tlsedge::log {

enum class Level { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

void setMinLevel(Level level);
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
