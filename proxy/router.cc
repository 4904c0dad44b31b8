#include "proxy/router.h"

#include <algorithm>

#include "base/ascii.h"

namespace tlsedge::proxy {

namespace {

bool hasUpper(std::string_view s) { return std::any_of(s.begin(), s.end(), ascii::isUpper); }

// The host of a Host header value or SNI name, without port or trailing dot,
// as a view into `host` (not lower-cased). Empty if malformed.
std::string_view hostPart(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    // RFC 3986 3.2.2: an IPv6 literal is bracketed; a port may follow.
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return {};
    return host.substr(1, close - 1);
  }
  const size_t colon = host.find(':');
  // More than one colon without brackets: a bare IPv6 literal, no port.
  if (colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos) {
    host = host.substr(0, colon);
  }
  // A fully qualified "example.com." names the same host (RFC 1034 3.1).
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

// The path of a request-target: origin-form up to '?', or the path of an
// absolute-form target (RFC 9112 3.2.2), "/" if it has none. Anything else
// ("*", authority-form) is returned unchanged and matches no route.
std::string_view targetPath(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    const size_t scheme = target.find("://");
    if (scheme == std::string_view::npos) return target;
    const size_t start = target.find_first_of("/?#", scheme + 3);
    if (start == std::string_view::npos || target[start] != '/') return "/";
    target = target.substr(start);
  }
  return target.substr(0, target.find_first_of("?#"));
}

template <typename Map>
const conf::Site* lookup(const Map& exact, const Map& wildcard, std::string_view host) {
  if (host.empty()) return nullptr;
  if (auto it = exact.find(host); it != exact.end()) return it->second;
  // A wildcard covers exactly one non-empty label (RFC 6125 6.4.3 style), and
  // never an IP literal.
  if (host.find(':') != std::string_view::npos) return nullptr;
  const size_t dot = host.find('.');
  if (dot == std::string_view::npos || dot == 0) return nullptr;
  if (auto it = wildcard.find(host.substr(dot + 1)); it != wildcard.end()) return it->second;
  return nullptr;
}

}  // namespace

std::string normalizeHost(std::string_view host) {
  const std::string_view part = hostPart(host);
  return ascii::lowered(part);
}

Router::Router(const conf::Config& config) {
  for (const conf::Site& site : config.sites) {
    for (const std::string& host : site.hosts) {
      // The first site naming a host keeps it (config validation rejects duplicates).
      if (host.size() > 2 && host[0] == '*' && host[1] == '.') {
        wildcard_.emplace(normalizeHost(std::string_view(host).substr(2)), &site);
      } else {
        exact_.emplace(normalizeHost(host), &site);
      }
    }
    SiteRoutes& routes = routes_[&site];
    routes.byLengthDesc.reserve(site.routes.size());
    for (const conf::Route& route : site.routes) routes.byLengthDesc.push_back(&route);
    // Stable: equal prefixes keep YAML order, so the first one written wins.
    std::stable_sort(routes.byLengthDesc.begin(), routes.byLengthDesc.end(),
                     [](const conf::Route* a, const conf::Route* b) {
                       return a->pathPrefix.size() > b->pathPrefix.size();
                     });
  }
}

const conf::Site* Router::findSite(std::string_view host) const {
  const std::string_view part = hostPart(host);
  if (!hasUpper(part)) return lookup(exact_, wildcard_, part);
  return lookup(exact_, wildcard_, ascii::lowered(part));
}

const conf::Route* Router::findRoute(const conf::Site& site, std::string_view target) const {
  const std::string_view path = targetPath(target);
  // Plain byte-prefix match, as nginx's prefix locations: "/api" also matches
  // "/apiv2". The path is compared as received (no percent-decoding).
  if (auto it = routes_.find(&site); it != routes_.end()) {
    for (const conf::Route* route : it->second.byLengthDesc) {
      if (path.starts_with(route->pathPrefix)) return route;
    }
    return nullptr;
  }
  // A site from another Config generation: same rule, without the index.
  const conf::Route* best = nullptr;
  for (const conf::Route& route : site.routes) {
    if (path.starts_with(route.pathPrefix) &&
        (best == nullptr || route.pathPrefix.size() > best->pathPrefix.size())) {
      best = &route;
    }
  }
  return best;
}

}  // namespace tlsedge::proxy
