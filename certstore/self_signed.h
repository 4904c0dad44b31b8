// A self-signed certificate for development and the demo configuration.
// (The ACME issue adds an internal CA issuer; this is deliberately minimal.)
//
// Thread: control loop (blocking file writes).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace tlsedge::certstore {

// Generates an ECDSA P-256 key and a self-signed certificate whose
// subjectAltName lists `names` (DNS names; entries that parse as IPv4/IPv6
// literals become iPAddress entries), valid from now-1h for `days` days, and
// writes them with writeFileAtomic (key 0600).
Status generateSelfSigned(const std::string& certPath, const std::string& keyPath,
                          const std::vector<std::string>& names, int days);

}  // namespace tlsedge::certstore
