#include "conf/scopes.h"

#include <algorithm>
#include <iterator>

namespace tlsedge::conf {
namespace {

constexpr const char* kScopeNames[] = {"read", "certificates", "sites", "acme"};

}  // namespace

Result<Scopes> parseScopes(const std::vector<std::string>& names) {
  Scopes scopes = 0;
  for (const std::string& name : names) {
    if (name == "all") {
      scopes |= kAllScopes;
      continue;
    }
    bool known = false;
    for (size_t i = 0; i < std::size(kScopeNames); ++i) {
      if (name == kScopeNames[i]) {
        scopes |= static_cast<Scopes>(1u << i);
        known = true;
      }
    }
    if (!known) {
      return makeError("unknown scope \"" + name +
                       "\" (scopes: read, certificates, sites, acme, or all)");
    }
  }
  if (scopes == 0)
    return makeError("no scope given (scopes: read, certificates, sites, acme, or all)");
  return scopes;
}

Result<Scopes> parseScopes(std::string_view text) {
  std::vector<std::string> names;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    std::string_view name = text.substr(at, comma - at);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (!name.empty()) names.emplace_back(name);
    at = comma + 1;
  }
  return parseScopes(names);
}

std::vector<std::string> scopeNames(Scopes scopes) {
  std::vector<std::string> names;
  for (size_t i = 0; i < std::size(kScopeNames); ++i) {
    if ((scopes & (1u << i)) != 0) names.emplace_back(kScopeNames[i]);
  }
  return names;
}

}  // namespace tlsedge::conf
