// Certificate signing requests for ACME finalize (RFC 8555 section 7.4): a
// fresh key per certificate (ECDSA P-256 by default; P-384, RSA 2048, 3072
// or 4096 as `acme.key_type` says), every name in subjectAltName and an
// empty subject, so that names longer than 64 characters (the CN limit) work.
//
// Thread: any (pure function; RSA generation takes tens of milliseconds for
// 2048 bits, one to several seconds for 4096).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "certstore/key_material.h"
#include "conf/config.h"

namespace tlsedge::acme {

struct Csr {
  std::string der;     // the request, DER (finalize sends base64url(der))
  std::string keyPem;  // its new private key, PKCS#8 PEM (never logged)
};

// `acme.key_type` as the key generator's type.
certstore::NewKeyType csrKeyType(conf::AcmeKeyType type);

Result<Csr> makeCsr(const std::vector<std::string>& names, certstore::NewKeyType keyType);

}  // namespace tlsedge::acme
