// Certificate signing requests with a fresh key: every name in
// subjectAltName (critical) and an empty subject, so that names longer than
// 64 characters (the CN limit) work. Used by the ACME client's finalize
// (RFC 8555 section 7.4) and by `tlsedge cert request` (CertificateStore::
// request) for CAs the operator deals with by hand.
//
// Thread: any (pure function; RSA generation takes tens of milliseconds for
// 2048 bits, one to several seconds for 4096).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "certstore/key_material.h"

namespace tlsedge::certstore {

struct Csr {
  std::string der;     // the request, DER (ACME finalize sends base64url(der))
  std::string keyPem;  // its new private key, PKCS#8 PEM (never logged)
};

Result<Csr> makeCsr(const std::vector<std::string>& names, NewKeyType keyType);

}  // namespace tlsedge::certstore
