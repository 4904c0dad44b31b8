// Minimal JSON text for meta.json and the `cert` operations' results: a
// quoted string. Internal to certstore; no JSON library dependency.
//
// Thread: any (pure function).
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace tlsedge::certstore {

// `s` as a JSON string literal (quotes, backslashes and control characters escaped).
inline std::string jsonQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace tlsedge::certstore
