#include "http/request_target.h"

#include <algorithm>

#include "base/ascii.h"

namespace tlsedge::http {
namespace {

using ascii::isAlnum;
using ascii::isDigit;
constexpr auto isHex = ascii::isHexDigit;

// The longest DNS name is 253 characters (RFC 1035 2.3.4), 254 with the root dot.
constexpr size_t kMaxHostLength = 254;

// An optional ":port" after the host: digits only, may be empty (RFC 3986 3.2.3).
bool validPortSuffix(std::string_view rest) {
  if (rest.empty()) return true;
  if (rest.front() != ':' || rest.size() > 6) return false;
  return std::all_of(rest.begin() + 1, rest.end(), isDigit);
}

}  // namespace

std::string_view authorityHost(std::string_view authority) {
  if (authority.empty()) return {};
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return {};
    const std::string_view literal = authority.substr(1, close - 1);
    const bool ok = std::all_of(literal.begin(), literal.end(),
                                [](char c) { return isHex(c) || c == ':' || c == '.'; });
    if (!ok || !validPortSuffix(authority.substr(close + 1))) return {};
    return authority.substr(0, close + 1);
  }
  const size_t colon = authority.find(':');
  const std::string_view name = authority.substr(0, colon);
  if (name.empty() || name.size() > kMaxHostLength) return {};
  const bool ok = std::all_of(name.begin(), name.end(), [](char c) {
    return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
  });
  if (!ok) return {};
  if (colon != std::string_view::npos && !validPortSuffix(authority.substr(colon))) return {};
  return name;
}

std::string_view originForm(std::string_view target, std::string& storage,
                            std::string_view* authority) {
  if (target.empty() || target.front() == '/') return target;
  const size_t scheme = target.find("://");
  if (scheme == std::string_view::npos) return target;
  const size_t start = target.find_first_of("/?#", scheme + 3);
  if (authority != nullptr) *authority = target.substr(scheme + 3, start - (scheme + 3));
  if (start == std::string_view::npos || target[start] == '#') return "/";
  std::string_view rest = target.substr(start);
  rest = rest.substr(0, rest.find('#'));  // RFC 9110 4.2.5: never sent, never forwarded
  if (rest.front() == '/') return rest;
  storage.assign("/").append(rest);  // "http://h?q": the path is empty, "/" it is
  return storage;
}

std::string_view resolveRequestTarget(const http::MessageHead& head, RequestTarget& out) {
  const std::string* host = nullptr;
  for (const http::Header& h : head.headers) {
    if (!http::equalsIgnoreCase(h.name, "host")) continue;
    // Two Host fields: which one routes and which one the origin believes
    // would be a guess (RFC 9112 3.2).
    if (host != nullptr) return "more than one Host field";
    host = &h.value;
  }
  const std::string_view target = head.target;
  std::string_view authority;
  if (!target.empty() && target.front() == '/') {
    out.target = target;
  } else if (target == "*") {
    if (head.method != "OPTIONS") return "the target \"*\" is for OPTIONS only";
    out.target = target;
  } else {
    const size_t scheme = target.find("://");
    if (scheme == std::string_view::npos) {
      return "the request target is neither a path nor an absolute http(s) URI";
    }
    const std::string_view name = target.substr(0, scheme);
    if (!http::equalsIgnoreCase(name, "http") && !http::equalsIgnoreCase(name, "https")) {
      return "the request target's scheme is not http or https";
    }
    out.target = originForm(target, out.storage, &authority);
    if (authority.find('@') != std::string_view::npos) {
      return "userinfo in the request target (RFC 9110 4.2.4)";
    }
    // RFC 9110 4.2.1: an http URI with an empty host is invalid.
    if (authority.empty()) return "the request target has no host";
    // RFC 9112 3.2.2: the target's authority wins over Host.
    if (authorityHost(authority).empty()) return "invalid host in the request target";
    out.authority = authority;
    return {};
  }
  if (host == nullptr || host->empty()) return "missing Host header";
  if (authorityHost(*host).empty()) return "invalid Host header";
  out.authority = *host;
  return {};
}

}  // namespace tlsedge::http
