// Trust anchors for TLS clients: PEM certificate bundles into an X509_STORE.
// Shared by the upstream TLS contexts (proxy/) and the HTTP client (acme/);
// parseCertificates also reads the HTTP client's own certificate chain.
//
// Thread: any (pure functions). Reading the files is the caller's (on the
// control loop): nothing here touches the disk.
#pragma once

#include <openssl/x509.h>

#include <string>
#include <vector>

#include "base/result.h"

namespace tlsedge::net {

// The bundle of system roots (Debian's ca-certificates).
inline constexpr const char* kSystemRootsFile = "/etc/ssl/certs/ca-certificates.crt";

// Every CERTIFICATE block of `pem`, in order. `source` (e.g. "FILE") starts
// messages: a block that does not parse (which one), or none at all.
Result<std::vector<bssl::UniquePtr<X509>>> parseCertificates(const std::string& pem,
                                                             const std::string& source);

// Adds every CERTIFICATE block of `pem` to `store`. `source` (e.g. "FILE" or
// "upstream x: tls.ca: FILE") starts messages. No certificate at all is an
// error too.
Status addCertificates(X509_STORE* store, const std::string& pem, const std::string& source);

}  // namespace tlsedge::net
