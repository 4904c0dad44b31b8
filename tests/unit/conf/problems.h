// Test helpers: load YAML and look at the problems reported, one per line.
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "conf/config.h"

namespace tlsedge::conf::testing {

// The problems loadString reports for `yaml` (source "t.yaml"); fails the
// test if it loads.
inline std::vector<std::string> problemsOf(const std::string& yaml) {
  auto result = loadString(yaml, "t.yaml", "/base");
  EXPECT_FALSE(result.ok()) << "loaded, but a problem was expected in:\n" << yaml;
  std::vector<std::string> lines;
  if (result.ok()) return lines;
  std::istringstream in(result.error().message);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Expects exactly one problem, at "t.yaml:LINE:COLUMN: KEY: ..." containing
// `text`.
inline void expectProblem(const std::string& yaml, const std::string& where,
                          const std::string& text) {
  const auto lines = problemsOf(yaml);
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0].rfind("t.yaml:" + where + ": ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(text), std::string::npos) << lines[0];
}

// A valid site list, for tests that break something else.
inline constexpr const char* kSite =
    "sites:\n"
    "  - name: s\n"
    "    hosts: [a.example]\n"
    "    routes: [{ path: /, respond: {} }]\n";

// A certificate shared by all sites of kSite.
inline constexpr const char* kTls =
    "tls: { default_certificate: c }\n"
    "certificates: { c: { cert: c.pem, key: k.pem } }\n";

}  // namespace tlsedge::conf::testing
