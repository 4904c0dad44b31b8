// HTTP -> HTTPS redirect and HSTS header values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace tlsedge::proxy {

// The Location for redirecting a plain-HTTP request to HTTPS: scheme https,
// the request's host without its port, `httpsPort` appended unless 443, and
// the request-target kept exactly (path and query). An IPv6 literal host stays
// bracketed. `target` in absolute-form ("http://h/p") is reduced to its path.
// Returns an empty string if the host is unusable (empty or with characters
// that cannot appear in a host), so the caller answers 400 instead.
std::string httpsRedirectLocation(std::string_view hostHeader, std::string_view target,
                                  uint16_t httpsPort);

// "max-age=N[; includeSubDomains][; preload]"
std::string hstsHeaderValue(const conf::Hsts& hsts);

}  // namespace tlsedge::proxy
