// ASCII case folding for protocol text (host names, header names, tokens):
// no locale, no libc call, inline (most comparisons end at the size check).
// Thread: any.
#pragma once

#include <string>
#include <string_view>

namespace tlsedge::ascii {

constexpr char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

inline void lowerInPlace(std::string& s) {
  for (char& c : s) c = lower(c);
}

inline std::string lowered(std::string_view s) {
  std::string out(s);
  lowerInPlace(out);
  return out;
}

}  // namespace tlsedge::ascii
