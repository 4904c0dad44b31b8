// ASCII case folding for protocol text (host names, header names, tokens):
// no locale, no libc call, inline (most comparisons end at the size check).
// Thread: any.
#pragma once

#include <string>
#include <string_view>

namespace tlsedge::ascii {

constexpr bool isUpper(char c) { return c >= 'A' && c <= 'Z'; }
constexpr bool isDigit(char c) { return c >= '0' && c <= '9'; }
constexpr bool isAlpha(char c) { return isUpper(c) || (c >= 'a' && c <= 'z'); }
constexpr bool isAlnum(char c) { return isAlpha(c) || isDigit(c); }
constexpr bool isHexDigit(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// The one case fold of the tree.
constexpr char lower(char c) { return isUpper(c) ? static_cast<char>(c - 'A' + 'a') : c; }

// Writes `s` lower-cased to `out` (at least s.size() chars): no allocation,
// for the handshake path's stack buffers.
inline std::string_view lowerInto(std::string_view s, char* out) {
  for (size_t i = 0; i < s.size(); ++i) out[i] = lower(s[i]);
  return {out, s.size()};
}

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
