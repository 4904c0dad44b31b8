#include "conf/diagnostics.h"

#include <algorithm>
#include <utility>

namespace tlsedge::conf {
namespace {

// Control characters of a key or a quoted value as escapes, so that each
// problem stays one line ("\n", "\r", "\t", else "\xNN").
void appendEscaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7F) {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
}

}  // namespace

Diagnostics::Diagnostics(std::string sourceName) : sourceName_(std::move(sourceName)) {}

void Diagnostics::report(Position pos, std::string_view key, std::string_view message) {
  std::string line =
      sourceName_ + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  line += ": ";
  if (!key.empty()) {
    appendEscaped(line, key);
    line += ": ";
  }
  appendEscaped(line, message);
  problems_.push_back(Problem{pos, std::move(line)});
}

std::string Diagnostics::text() const {
  // Checks run section by section (certificates before sites, say), not in
  // document order; sorting gives the operator the file top to bottom.
  std::vector<const Problem*> sorted;
  sorted.reserve(problems_.size());
  for (const Problem& p : problems_) sorted.push_back(&p);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Problem* a, const Problem* b) {
    if (a->pos.line != b->pos.line) return a->pos.line < b->pos.line;
    return a->pos.column < b->pos.column;
  });
  std::string out;
  for (const Problem* p : sorted) {
    if (!out.empty()) out += '\n';
    out += p->line;
  }
  return out;
}

}  // namespace tlsedge::conf
