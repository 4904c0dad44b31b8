#include "conf/diagnostics.h"

#include <algorithm>
#include <utility>

namespace tlsedge::conf {

Diagnostics::Diagnostics(std::string sourceName) : sourceName_(std::move(sourceName)) {}

void Diagnostics::report(Position pos, std::string_view key, std::string_view message) {
  std::string line =
      sourceName_ + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  line += ": ";
  if (!key.empty()) {
    line += key;
    line += ": ";
  }
  line += message;
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
