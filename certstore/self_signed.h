// Certificates made here rather than by a CA: self-signed ones (tests,
// TLS-ALPN-01 challenge certificates), and a local CA's root and the server
// certificates it issues (acme/local_issuer.h, the internal issuer).
//
// Thread: generateSelfSigned on the control loop (blocking file writes);
// the others any (pure).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace tlsedge::certstore {

// An extension added as given: `oid` in dotted form, `der` its extnValue
// contents (e.g. an encoded OCTET STRING).
struct RawExtension {
  std::string oid;
  bool critical = false;
  std::string der;
};

struct SelfSigned {
  bssl::UniquePtr<X509> certificate;
  bssl::UniquePtr<EVP_PKEY> key;  // ECDSA P-256, fresh
};

// A fresh ECDSA P-256 key and a self-signed certificate for `names` (as
// generateSelfSigned) plus `extra` extensions. Thread: any (pure).
Result<SelfSigned> makeSelfSigned(const std::vector<std::string>& names, int days,
                                  const std::vector<RawExtension>& extra = {});

// Generates an ECDSA P-256 key and a self-signed certificate whose
// subjectAltName lists `names` (DNS names; entries that parse as IPv4/IPv6
// literals become iPAddress entries), valid from now-1h for `days` days, and
// writes them with writeFileAtomic (key 0600).
// A fresh ECDSA P-256 key and a self-signed CA certificate: CN =
// `commonName`, basicConstraints CA:TRUE with pathLenConstraint 0 (critical),
// keyUsage keyCertSign and cRLSign (critical), subjectKeyIdentifier; valid
// from now-1h for `days` days.
Result<SelfSigned> makeCaCertificate(const std::string& commonName, int days);

// A server certificate for `subjectKey` issued by `caCert` (signed with
// `caKey`, ECDSA or RSA, SHA-256): empty subject, `names` in a critical
// subjectAltName only (as ACME CAs issue them), CA:FALSE, digitalSignature,
// serverAuth, subject and authority key identifiers; valid from now-1h to
// now + `lifetimeSeconds`.
Result<bssl::UniquePtr<X509>> issueCertificate(const std::vector<std::string>& names,
                                               EVP_PKEY* subjectKey, X509* caCert, EVP_PKEY* caKey,
                                               int64_t lifetimeSeconds);

Status generateSelfSigned(const std::string& certPath, const std::string& keyPath,
                          const std::vector<std::string>& names, int days);

}  // namespace tlsedge::certstore
