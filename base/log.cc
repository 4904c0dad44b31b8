#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

#include "base/json_string.h"
#include "base/time.h"

namespace tlsedge::log {
namespace {
std::atomic<int> gMinLevel{static_cast<int>(Level::kInfo)};
std::atomic<Format> gFormat{Format::kSyslog};

constexpr const char* kLevelNames[] = {"", "", "", "error", "warning", "notice", "info", "debug"};

}  // namespace

void setMinLevel(Level level) {
  gMinLevel.store(static_cast<int>(level), std::memory_order_relaxed);
}

void setFormat(Format format) { gFormat.store(format, std::memory_order_relaxed); }

bool parseLevel(std::string_view text, Level* level) {
  for (int l = static_cast<int>(Level::kError); l <= static_cast<int>(Level::kDebug); ++l) {
    if (text == kLevelNames[l]) {
      *level = static_cast<Level>(l);
      return true;
    }
  }
  return false;
}

bool enabled(Level level) {
  return static_cast<int>(level) <= gMinLevel.load(std::memory_order_relaxed);
}

std::string formatLine(Format format, Level level, std::string_view message, long long unixMs) {
  std::string line;
  if (format == Format::kJson) {
    line.reserve(message.size() + 64);
    line += "{\"time\":\"";
    utc::appendMs(line, unixMs);
    line += "\",\"level\":\"";
    line += kLevelNames[static_cast<int>(level)];
    line += "\",\"message\":";
    appendJsonString(line, message);
    line += '}';
    return line;
  }
  // Every line carries the priority: journald (SyslogLevelPrefix) reads
  // each line of stderr as its own entry, so a multi-line message (a
  // refused reload and its reasons) keeps its level on all of them.
  const char prefix[] = {'<', static_cast<char>('0' + static_cast<int>(level)), '>'};
  line.reserve(message.size() + sizeof prefix);
  for (;;) {
    const size_t end = message.find('\n');
    line.append(prefix, sizeof prefix);
    line += message.substr(0, end);
    if (end == std::string_view::npos) break;
    line += '\n';
    message.remove_prefix(end + 1);
  }
  return line;
}

void write(Level level, std::string_view message) {
  if (!enabled(level)) return;
  const long long nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  std::string line =
      formatLine(gFormat.load(std::memory_order_relaxed), level, message, nowMs) + '\n';
  // One write(2) per line keeps lines from different threads whole.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;  // nowhere to report a failing stderr
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace tlsedge::log
