// Revocation (RFC 8555 section 7.6) helpers: the DER of the certificate to
// revoke, and RFC 5280 CRLReason codes by number or name, for `tlsedge acme
// revoke SITE [--reason R]` and POST /v1/acme/SITE/revoke. The request
// itself is a step of the order state machine (client.h): revoke, then order
// the replacement at once.
//
// Thread: any (pure).
#pragma once

#include <string>

#include "base/result.h"

namespace tlsedge::acme {

// The first certificate of a PEM chain, as DER.
Result<std::string> firstCertificateDer(const std::string& chainPem);

// "0".."10" (not 7) or a name: unspecified, keyCompromise, affiliationChanged,
// superseded, cessationOfOperation (case-insensitive; the ones subscribers
// may use). Errors list the accepted names.
Result<int> parseRevocationReason(const std::string& text);

}  // namespace tlsedge::acme
