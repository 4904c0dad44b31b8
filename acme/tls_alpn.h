// TLS-ALPN-01 (RFC 8737): the self-signed challenge certificate a handshake
// offering ALPN `acme-tls/1` for a name with a pending challenge is served.
//
// Thread: made on the control loop (the ACME client, when it answers the
// challenge; key generation and signing, never on a worker), then published
// read-only to workers through the ChallengeStore.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "certstore/credentials.h"

namespace tlsedge::acme {

// The ALPN protocol id of RFC 8737 section 6.2.
inline constexpr std::string_view kAcmeTlsAlpn = "acme-tls/1";
// id-pe-acmeIdentifier (RFC 8737 section 6.1).
inline constexpr const char* kAcmeIdentifierOid = "1.3.6.1.5.5.7.1.31";

// A fresh P-256 key and a self-signed certificate whose subjectAltName is
// `host` alone, with the critical id-pe-acmeIdentifier extension holding
// SHA-256(keyAuthorization) as a DER OCTET STRING. Valid 7 days.
Result<certstore::CredentialsPtr> makeTlsAlpnCertificate(const std::string& host,
                                                         const std::string& keyAuthorization);

// SHA-256 of the key authorization, raw (32 bytes): the TLS-ALPN-01
// extension's content and, base64url-encoded, the DNS-01 TXT value.
std::string keyAuthorizationDigest(const std::string& keyAuthorization);

}  // namespace tlsedge::acme
