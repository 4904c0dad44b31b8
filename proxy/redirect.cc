#include "proxy/redirect.h"

#include <algorithm>

#include "http/request_target.h"

namespace tlsedge::proxy {

std::string httpsRedirectLocation(std::string_view hostHeader, std::string_view target,
                                  uint16_t httpsPort) {
  const std::string_view host = http::authorityHost(hostHeader);
  if (host.empty()) return {};
  // The parser never lets these through; refuse anyway rather than emit a
  // header that could be split.
  if (std::any_of(target.begin(), target.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return {};
  }
  std::string storage;
  std::string_view path = http::originForm(target, storage);
  if (path.empty() || path.front() != '/') path = "/";  // "*", authority-form
  std::string location;
  location.reserve(8 + host.size() + 6 + path.size());
  location.append("https://").append(host);
  if (httpsPort != 443) location.append(":").append(std::to_string(httpsPort));
  location.append(path);
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
