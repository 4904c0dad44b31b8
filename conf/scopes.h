// What a credential of the management API may do (`admin.clients` in the
// config, API tokens in admin/tokens.h; enforced by admin/access.h).
//
// Thread: any.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tlsedge::conf {

// What a credential may do; a request needs one (admin/access.h).
enum Scope : uint8_t {
  kScopeRead = 1,          // every GET
  kScopeCertificates = 2,  // add, replace, remove certificates and requests
  kScopeSites = 4,         // create, change, remove sites
  kScopeAcme = 8,          // renew, revoke
};
using Scopes = uint8_t;
inline constexpr Scopes kAllScopes = kScopeRead | kScopeCertificates | kScopeSites | kScopeAcme;

// "read,certificates" (or "all") -> scopes; an Error naming the unknown one.
Result<Scopes> parseScopes(std::string_view text);
Result<Scopes> parseScopes(const std::vector<std::string>& names);
std::vector<std::string> scopeNames(Scopes scopes);  // in the order above

}  // namespace tlsedge::conf
