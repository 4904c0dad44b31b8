// Router: which site and route a request belongs to.
//
// Built once per Config on the control loop; immutable and shared read-only
// by the workers. Lookups do not allocate except to lower-case a mixed-case
// host.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conf/config.h"

namespace tlsedge::proxy {

class Router {
 public:
  // `config` must outlive the router (both live in the same generation).
  explicit Router(const conf::Config& config);

  // The site serving `host` (a Host header value or SNI: a ":port" suffix and
  // a trailing dot are ignored; case-insensitive; "[v6]:port" handled). Exact
  // names first, then one-label wildcards. nullptr if none.
  const conf::Site* findSite(std::string_view host) const;

  // The route of `site` with the longest prefix matching the path of
  // `target` (query excluded). nullptr if none matches.
  const conf::Route* findRoute(const conf::Site& site, std::string_view target) const;

 private:
  struct SiteRoutes {
    std::vector<const conf::Route*> byLengthDesc;
  };
  // Transparent hashing: find() with a string_view, no temporary std::string.
  struct HostHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using HostMap = std::unordered_map<std::string, const conf::Site*, HostHash, std::equal_to<>>;
  HostMap exact_;
  HostMap wildcard_;  // suffix after "*."
  std::unordered_map<const conf::Site*, SiteRoutes> routes_;
};

// Lower-cases a host and strips a port and a trailing dot:
// "Example.COM.:8080" -> "example.com", "[::1]:443" -> "::1".
std::string normalizeHost(std::string_view host);

}  // namespace tlsedge::proxy
