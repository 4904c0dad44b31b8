#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace tlsedge::log {
namespace {
std::atomic<int> gMinLevel{static_cast<int>(Level::kInfo)};
}

void setMinLevel(Level level) {
  gMinLevel.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool enabled(Level level) {
  return static_cast<int>(level) <= gMinLevel.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view message) {
  if (!enabled(level)) return;
  std::string line;
  line.reserve(message.size() + 5);
  line += '<';
  line += static_cast<char>('0' + static_cast<int>(level));
  line += '>';
  line += message;
  line += '\n';
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
