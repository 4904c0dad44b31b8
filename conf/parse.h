// The section parsers: a YAML document -> Config fields, every problem to
// Diagnostics.
//
// Internal to conf/. parseConfig() reads `certificates` and `upstreams`
// before `tls` and `sites`, so that references can be checked while reading
// whatever order the file lists them in.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "conf/config.h"
#include "conf/diagnostics.h"
#include "conf/yaml_reader.h"

namespace tlsedge::conf {

struct ParseContext {
  Diagnostics& diag;
  std::string baseDir;  // absolute; relative paths resolve against it
  // Names declared under `certificates` / `upstreams`, including entries that
  // failed validation: a broken entry is reported once, not again at every
  // reference to it.
  std::set<std::string, std::less<>> certificateNames;
  std::set<std::string, std::less<>> upstreamNames;
  bool defaultCertificateSet = false;  // tls.default_certificate given
};

// The whole document (parse_config.cc).
void parseConfig(ParseContext& ctx, const Field& root, Config& config);

// The `sites` list (parse_sites.cc).
void parseSites(ParseContext& ctx, const Field& sites, std::vector<Site>& out);

// "(defined: a, b)" or "(none are defined)", for unknown-reference messages.
std::string definedNames(const std::set<std::string, std::less<>>& names);

}  // namespace tlsedge::conf
