// Diagnostics: the problems found while loading one configuration source.
//
// Internal to conf/. Loading never stops at the first problem: every check
// reports here and carries on, so that an operator fixes a file in one pass.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tlsedge::conf {

// A place in the source text, 1-based (as editors show it).
struct Position {
  int line = 1;
  int column = 1;
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string sourceName);

  // Records "SOURCE:LINE:COLUMN: KEY: message"; an empty key is left out
  // (for problems that belong to no key, such as YAML syntax errors).
  void report(Position pos, std::string_view key, std::string_view message);

  bool empty() const { return problems_.empty(); }
  size_t count() const { return problems_.size(); }

  // Every problem, ordered by position (then by report order), one per line
  // (control characters in keys and messages escaped: "\n", "\x01"),
  // without a trailing newline.
  std::string text() const;

 private:
  struct Problem {
    Position pos;
    std::string line;
  };

  std::string sourceName_;
  std::vector<Problem> problems_;
};

}  // namespace tlsedge::conf
