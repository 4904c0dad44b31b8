// Certificate signing requests with a fresh key: every name in
// subjectAltName and, unless one is given, an empty subject (the
// subjectAltName then critical), so that names longer than 64 characters
// (the CN limit) work. Used by the ACME client's finalize
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

// `subject`: "" (empty), or "/KEY=VALUE/..." as `openssl req -subj` takes
// it (C, ST, L, O, OU, CN, ...; a CA selling OV/EV certificates may want
// them), refused with a message naming the part that is wrong.
Result<Csr> makeCsr(const std::vector<std::string>& names, NewKeyType keyType,
                    const std::string& subject = {});

}  // namespace tlsedge::certstore
