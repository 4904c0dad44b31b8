#include "proxy/redirect.h"

#include <algorithm>

namespace tlsedge::proxy {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool isAlnum(char c) { return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// The longest DNS name is 253 characters (RFC 1035 2.3.4), 254 with the root dot.
constexpr size_t kMaxHostLength = 254;

// An optional ":port" after the host: digits only, may be empty (RFC 3986 3.2.3).
bool validPortSuffix(std::string_view rest) {
  if (rest.empty()) return true;
  if (rest.front() != ':' || rest.size() > 6) return false;
  return std::all_of(rest.begin() + 1, rest.end(), isDigit);
}

// The host of a Host header, bracketed if IPv6, without its port; empty if the
// value cannot be a host. Only what can name this edge is accepted: DNS names
// (RFC 3986 unreserved characters), IPv4 and bracketed IPv6 literals. Spaces,
// '/', '@', CR/LF, percent-encoding and the like would let the client inject
// into the Location header or point the redirect elsewhere.
std::string_view redirectHost(std::string_view hostHeader) {
  if (hostHeader.empty()) return {};
  if (hostHeader.front() == '[') {
    const size_t close = hostHeader.find(']');
    if (close == std::string_view::npos || close == 1) return {};
    const std::string_view literal = hostHeader.substr(1, close - 1);
    const bool ok = std::all_of(literal.begin(), literal.end(),
                                [](char c) { return isHex(c) || c == ':' || c == '.'; });
    if (!ok || !validPortSuffix(hostHeader.substr(close + 1))) return {};
    return hostHeader.substr(0, close + 1);
  }
  const size_t colon = hostHeader.find(':');
  const std::string_view name = hostHeader.substr(0, colon);
  if (name.empty() || name.size() > kMaxHostLength) return {};
  const bool ok = std::all_of(name.begin(), name.end(), [](char c) {
    return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
  });
  if (!ok) return {};
  if (colon != std::string_view::npos && !validPortSuffix(hostHeader.substr(colon))) return {};
  return name;
}

// The path and query of a request-target. An absolute-form target (RFC 9112
// 3.2.2) is reduced to its path and query; anything else not starting with
// '/' ("*", authority-form) becomes "/".
std::string pathAndQuery(std::string_view target) {
  if (!target.empty() && target.front() == '/') return std::string(target);
  const size_t scheme = target.find("://");
  if (scheme == std::string_view::npos) return "/";
  const size_t start = target.find_first_of("/?#", scheme + 3);
  if (start == std::string_view::npos || target[start] == '#') return "/";
  if (target[start] == '?') return "/" + std::string(target.substr(start));
  return std::string(target.substr(start));
}

}  // namespace

std::string httpsRedirectLocation(std::string_view hostHeader, std::string_view target,
                                  uint16_t httpsPort) {
  const std::string_view host = redirectHost(hostHeader);
  if (host.empty()) return {};
  // The parser never lets these through; refuse anyway rather than emit a
  // header that could be split.
  if (std::any_of(target.begin(), target.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return {};
  }
  std::string location;
  location.reserve(8 + host.size() + 6 + target.size());
  location.append("https://").append(host);
  if (httpsPort != 443) location.append(":").append(std::to_string(httpsPort));
  location.append(pathAndQuery(target));
  return location;
}

std::string hstsHeaderValue(const conf::Hsts& hsts) {
  // RFC 6797 6.1: directive names are case-insensitive; these spellings are
  // the ones browsers' preload lists check for.
  std::string value = "max-age=" + std::to_string(hsts.maxAge);
  if (hsts.includeSubdomains) value += "; includeSubDomains";
  if (hsts.preload) value += "; preload";
  return value;
}

}  // namespace tlsedge::proxy
